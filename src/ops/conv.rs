//! 2-D convolution as im2row + GEMM, its backward as GEMM + row2im, and the tutorial helpers
//! (corr2d, true convolution).

use crate::backend::Backend;
use crate::backend::ConvSpec;
use crate::ops::pad::{pad_for_conv, PaddingMode};
use crate::ops::unfold::{col2im_raw, im2col_raw};
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend2, same_backend, Tensor};
use crate::{bail, ensure, Error, Result};

/// Zero padding of a convolution, as PyTorch's `padding=` accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// `[top, bottom, left, right]`.
    Explicit([usize; 4]),
    /// Output size equals input size (stride 1 only); extra padding goes bottom/right.
    Same,
    /// No padding.
    Valid,
}

impl From<usize> for Padding {
    fn from(p: usize) -> Self {
        Padding::Explicit([p, p, p, p])
    }
}

impl From<(usize, usize)> for Padding {
    /// `(height, width)` padding on both sides.
    fn from((ph, pw): (usize, usize)) -> Self {
        Padding::Explicit([ph, ph, pw, pw])
    }
}

/// Options of [`conv2d`], with PyTorch's defaults (stride 1, no padding, dilation 1, 1 group,
/// zero padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step of the window, `(height, width)`.
    pub stride: (usize, usize),
    /// Padding of the input: explicit, `Same` or `Valid`; filled as `padding_mode` says.
    pub padding: Padding,
    /// Spacing between kernel elements, `(height, width)`.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels must both be divisible by it.
    pub groups: usize,
    /// What the padding holds: zeros, or the input reflected, replicated or wrapped around.
    pub padding_mode: PaddingMode,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
            groups: 1,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

impl Conv2dOptions {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        stride(s: impl Into<Pair>) = s.into().0;
        padding(p: impl Into<Padding>) = p.into();
        dilation(d: impl Into<Pair>) = d.into().0;
        groups(g: usize) = g;
        padding_mode(m: PaddingMode) = m;
    }
}

/// A size given once for both axes or as `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair(pub (usize, usize));

impl From<usize> for Pair {
    fn from(v: usize) -> Self {
        Pair((v, v))
    }
}
impl From<(usize, usize)> for Pair {
    fn from(v: (usize, usize)) -> Self {
        Pair(v)
    }
}

/// `[top, bottom, left, right]` for the given padding mode.
pub(crate) fn resolve_padding(
    op: &'static str, p: Padding, kernel: (usize, usize), stride: (usize, usize),
    dilation: (usize, usize),
) -> Result<[usize; 4]> {
    Ok(match p {
        Padding::Explicit(v) => v,
        Padding::Valid => [0; 4],
        Padding::Same => {
            ensure!(
                stride == (1, 1),
                op,
                "padding \"same\" is not supported for strided convolutions (stride {stride:?})"
            );
            let th = dilation.0 * kernel.0.saturating_sub(1);
            let tw = dilation.1 * kernel.1.saturating_sub(1);
            [th / 2, th - th / 2, tw / 2, tw - tw / 2]
        }
    })
}

/// Swaps the two axes of a 2-d tensor (a copy), no autograd record.
fn transpose_raw(t: &Tensor) -> Result<Tensor> {
    let (r, c) = t.shape().dims2()?;
    t.strided_raw(crate::backend::StridedSpec {
        out: vec![c, r],
        strides: vec![1, c as isize],
        offset: 0,
    })
}

/// Validates kernel/stride/padding/dilation for `(n, c, h, w)` and returns the geometry (the
/// per-axis checks live in `shape::conv_out_len`).
pub(crate) fn geometry(
    op: &'static str, dims: (usize, usize, usize, usize), kernel: (usize, usize),
    opts: &Conv2dOptions,
) -> Result<WindowGeom> {
    let pads = resolve_padding(op, opts.padding, kernel, opts.stride, opts.dilation)?;
    WindowGeom::conv(op, dims, kernel, opts.stride, pads, opts.dilation)
}

/// im2row's and row2im's window options: a convolution's, without groups.
fn unfold_options(
    stride: impl Into<Pair>, padding: impl Into<Padding>, dilation: impl Into<Pair>,
) -> Conv2dOptions {
    Conv2dOptions::new().stride(stride).padding(padding).dilation(dilation)
}

/// `x (n, c, h, w) -> rows (n*oh*ow, c*kh*kw)`: every receptive field as a row, columns in
/// (c, kh, kw) order, zeros for padding. Differentiable (its adjoint is [`row2im`]).
pub fn im2row(
    x: &Tensor, kernel: impl Into<Pair>, stride: impl Into<Pair>, padding: impl Into<Padding>,
    dilation: impl Into<Pair>,
) -> Result<Tensor> {
    let dims = x.shape().dims4_for("im2row")?;
    let opts = unfold_options(stride, padding, dilation);
    let g = geometry("im2row", dims, kernel.into().0, &opts)?;
    let y = transpose_raw(&im2col_raw(x, &g)?)?;
    Ok(y.attach(&[x], move |gr| Ok(vec![Some(col2im_raw(&transpose_raw(gr)?, &g)?)])))
}

/// The adjoint of [`im2row`]: `rows (n*oh*ow, c*kh*kw) -> (n, c, h, w)` where every input
/// element sums the row entries taken from it. Not the inverse: overlapping windows add up.
pub fn row2im(
    rows: &Tensor, input_shape: (usize, usize, usize, usize), kernel: impl Into<Pair>,
    stride: impl Into<Pair>, padding: impl Into<Padding>, dilation: impl Into<Pair>,
) -> Result<Tensor> {
    let opts = unfold_options(stride, padding, dilation);
    let g = geometry("row2im", input_shape, kernel.into().0, &opts)?;
    ensure!(
        rows.dims() == [g.row_count(), g.row_len()],
        "row2im",
        "rows must have shape [{}, {}] for input {input_shape:?}, got {}",
        g.row_count(),
        g.row_len(),
        rows.shape()
    );
    let y = col2im_raw(&transpose_raw(rows)?, &g)?;
    Ok(y.attach(&[rows], move |gr| Ok(vec![Some(transpose_raw(&im2col_raw(gr, &g)?)?)])))
}

/// `F.conv2d`: `input (n, c, h, w)`, `weight (d, c/groups, kh, kw)`, `bias (d)` ->
/// `(n, d, oh, ow)`. Cross-correlation, as in every deep learning library.
pub fn conv2d(
    input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions,
) -> Result<Tensor> {
    conv2d_act(input, weight, bias, opts, false)
}

/// `F.relu(F.conv2d(...))` as one op: the GPU applies the ReLU in the convolution's epilogue,
/// so the pre-activation is never written. Same results and gradients as the two ops
/// (`nn::Sequential` fuses a `Conv2d` followed by a `ReLU` into it).
pub fn conv2d_relu(
    input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions,
) -> Result<Tensor> {
    conv2d_act(input, weight, bias, opts, true)
}

fn conv2d_act(
    input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions, relu: bool,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let args = (input, weight, bias);
    let (dims, (d, kh, kw)) = check_conv_args(OP, args, opts.groups, WeightLayout::Conv)?;
    if opts.padding_mode != PaddingMode::Zeros {
        // as PyTorch: pad by the mode, then convolve without padding
        let pads = resolve_padding(OP, opts.padding, (kh, kw), opts.stride, opts.dilation)?;
        if pads != [0; 4] {
            let padded = pad_for_conv(input, pads, opts.padding_mode)?;
            let o = Conv2dOptions {
                padding: Padding::Valid,
                padding_mode: PaddingMode::Zeros,
                ..*opts
            };
            return conv2d_act(&padded, weight, bias, &o, relu);
        }
    }
    let g = geometry(OP, dims, (kh, kw), opts)?;
    crate::shape::numel(OP, &[g.n, d, g.oh, g.ow])?;
    if let Some(y) = empty_conv_result(OP, input, weight, bias, [g.n, d, g.oh, g.ow])? {
        return Ok(y);
    }
    let groups = opts.groups;
    if groups == g.c && groups > 1 {
        // one input channel per group: direct kernels, no im2col
        let y = depthwise(input, weight, bias, g, d / g.c)?;
        return if relu { y.relu() } else { Ok(y) };
    }
    let spec = ConvSpec { g, groups, d };
    let y = conv_forward_raw(input, weight, bias, &spec, relu)?;
    // the ReLU's gradient mask is its output: y > 0 exactly where its input was
    let mask = relu.then(|| y.detach());
    attach_conv(
        y,
        input,
        weight,
        bias,
        mask,
        move |gout, w| {
            let st = on_backend2!(OP, gout.storage(), w.storage(), go, ws, be => be.conv2d_backward_input(go, ws, &spec));
            Ok(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))
        },
        move |gout, x| {
            let st = on_backend2!(OP, x.storage(), gout.storage(), xs, go, be => be.conv2d_backward_weight(xs, go, &spec));
            Ok(Tensor::from_storage(st, Shape::from([d, g.c / groups, g.kh, g.kw])))
        },
    )
}

/// An empty batch (or no filters) gives an empty output with zero gradients; a convolution over
/// no input channels is refused.
pub(crate) fn empty_conv_result(
    op: &'static str, input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, out: [usize; 4],
) -> Result<Option<Tensor>> {
    ensure!(input.dims().get(1) != Some(&0), op, "input {} has no channels", input.shape());
    let mut others = vec![weight];
    others.extend(bias);
    crate::ops::empty::empty_window_result(op, input, &others, out)
}

/// The backend's conv2d primitive, the bias included: `(n, d, oh, ow)`, no autograd record.
pub(crate) fn conv_forward_raw(
    x: &Tensor, w: &Tensor, bias: Option<&Tensor>, s: &ConvSpec, relu: bool,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let shape = Shape::from([s.g.n, s.d, s.g.oh, s.g.ow]);
    let st = on_backend2!(OP, x.storage(), w.storage(), xs, ws, be => {
        let b = bias.map(|b| same_backend(OP, xs, b)).transpose()?;
        be.conv2d(xs, ws, b, s, relu)
    });
    Ok(Tensor::from_storage(st, shape))
}

/// `(n, c, h, w)`.
type Dims4 = (usize, usize, usize, usize);

/// How a convolution's weight is laid out: conv2d's `(out_channels, in_channels/groups, kh,
/// kw)`, or conv_transpose2d's `(in_channels, out_channels/groups, kh, kw)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightLayout {
    Conv,
    Transposed,
}

/// Checks devices and shapes of a convolution's arguments, conv2d's or conv_transpose2d's;
/// returns the input's dims and `(out_channels, kh, kw)`.
pub(crate) fn check_conv_args(
    op: &'static str, (input, weight, bias): (&Tensor, &Tensor, Option<&Tensor>), groups: usize,
    layout: WeightLayout,
) -> Result<(Dims4, (usize, usize, usize))> {
    input.check_same_device(op, weight)?;
    if let Some(b) = bias {
        input.check_same_device(op, b)?;
    }
    let (n, c, h, w) = input.dims4().map_err(|_| Error::Invalid {
        op,
        msg: format!("input must be (n, c, h, w), got {}", input.shape()),
    })?;
    let what = match layout {
        WeightLayout::Conv => "(out_channels, in_channels/groups, kh, kw)",
        WeightLayout::Transposed => "(in_channels, out_channels/groups, kh, kw)",
    };
    let (w0, w1, kh, kw) = weight.dims4().map_err(|_| Error::Invalid {
        op,
        msg: format!("weight must be {what}, got {}", weight.shape()),
    })?;
    ensure!(groups > 0, op, "groups must be positive, got 0");
    let (c_in, d) = match layout {
        WeightLayout::Conv => (w1 * groups, w0),
        WeightLayout::Transposed => (w0, w1 * groups),
    };
    ensure!(
        c % groups == 0 && d % groups == 0,
        op,
        "in_channels {c} and out_channels {d} must both be divisible by groups {groups}"
    );
    ensure!(
        c_in == c,
        op,
        "weight {} {what} expects {c_in} input channels (groups = {groups}) but input has {c}",
        weight.shape()
    );
    if let Some(b) = bias {
        ensure!(b.dims() == [d], op, "bias must have shape [{d}], got {}", b.shape());
    }
    Ok(((n, c, h, w), (d, kh, kw)))
}

/// Records the backward of a convolution's output `y` (bias included, and a fused ReLU whose
/// output is `relu_out`): `grad_input(gout, w)` and `grad_weight(gout, x)` run only for inputs
/// that need a gradient, on the output gradient through the ReLU; the bias gradient is the same
/// for every path.
pub(crate) fn attach_conv(
    y: Tensor, input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, relu_out: Option<Tensor>,
    grad_input: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
    grad_weight: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    let (x, w) = (input.clone(), weight.clone());
    let has_bias = bias.is_some();
    let inputs: Vec<&Tensor> = [Some(input), Some(weight), bias].into_iter().flatten().collect();
    Ok(y.attach(&inputs, move |gout| {
        // gout: (n, d, oh, ow), then through the ReLU
        let masked;
        let gout = match &relu_out {
            Some(r) => {
                masked =
                    r.binary_raw(gout, crate::backend::BinaryOp::ReluBackward, "conv2d_relu")?;
                &masked
            }
            None => gout,
        };
        let gx = x.requires_grad().then(|| grad_input(gout, &w)).transpose()?;
        let gw = w.requires_grad().then(|| grad_weight(gout, &x)).transpose()?;
        let mut grads = vec![gx, gw];
        if has_bias {
            grads.push(Some(bias_grad(gout)?));
        }
        Ok(grads)
    }))
}

/// `y (n, d, oh, ow) + bias (d)`, with no autograd record: conv2d's backward covers the bias.
pub(crate) fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => {
            let d = y.dims()[1];
            y.binary_raw(
                &b.reshape([1, d, 1, 1])?.detach(),
                crate::backend::BinaryOp::Add,
                "conv2d",
            )
        }
        None => Ok(y),
    }
}

/// The bias gradient: `gout (n, d, ...)` summed over every axis but `d` -> `(d)`.
fn bias_grad(gout: &Tensor) -> Result<Tensor> {
    let (n, d) = (gout.dims()[0], gout.dims()[1]);
    let positions = gout.dims()[2..].iter().product();
    let per_image = gout.sum_axis_raw(n * d, positions, 1, Shape::from([n, d]))?;
    per_image.sum_axis_raw(1, n, d, Shape::from([d]))
}

/// `conv2d` with groups = channels (`mult` filters each): forward and both gradients by the
/// backends' direct depthwise kernels.
fn depthwise(
    input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, g: WindowGeom, mult: usize,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let d = g.c * mult;
    let st = on_backend2!(OP, input.storage(), weight.storage(), x, w, be => be.depthwise_conv2d(x, w, &g, mult));
    let y = add_bias(Tensor::from_storage(st, Shape::from([g.n, d, g.oh, g.ow])), bias)?;
    attach_conv(
        y,
        input,
        weight,
        bias,
        None,
        move |gout, w| {
            let st = on_backend2!(OP, gout.storage(), w.storage(), go, ws, be => be.depthwise_conv2d_backward_input(go, ws, &g, mult));
            Ok(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))
        },
        move |gout, x| {
            let st = on_backend2!(OP, x.storage(), gout.storage(), xs, go, be => be.depthwise_conv2d_backward_weight(xs, go, &g, mult));
            Ok(Tensor::from_storage(st, Shape::from([d, 1, g.kh, g.kw])))
        },
    )
}

/// 2-D cross-correlation of a 2-d input `(h, w)` with a 2-d kernel `(kh, kw)`, as the tutorials'
/// `corr2d`: `out[i, j] = sum_{a, b} x[i + a, j + b] * k[a, b]`. Differentiable in both.
pub fn corr2d(x: &Tensor, k: &Tensor) -> Result<Tensor> {
    let (h, w) = x.shape().dims2().map_err(|_| Error::Invalid {
        op: "corr2d",
        msg: format!("input must be 2-d, got {}", x.shape()),
    })?;
    let (kh, kw) = k.shape().dims2().map_err(|_| Error::Invalid {
        op: "corr2d",
        msg: format!("kernel must be 2-d, got {}", k.shape()),
    })?;
    if kh > h || kw > w {
        bail!("corr2d", "kernel {} is larger than the input {}", k.shape(), x.shape());
    }
    let y = conv2d(
        &x.reshape([1, 1, h, w])?,
        &k.reshape([1, 1, kh, kw])?,
        None,
        &Conv2dOptions::default(),
    )?;
    y.reshape([h - kh + 1, w - kw + 1])
}

/// True 2-D convolution (the kernel flipped in both axes, then cross-correlation):
/// `out[i, j] = sum_{a, b} x[i + a, j + b] * k[kh - 1 - a, kw - 1 - b]`.
pub fn convolve2d(x: &Tensor, k: &Tensor) -> Result<Tensor> {
    ensure!(k.rank() == 2, "convolve2d", "kernel must be 2-d, got {}", k.shape());
    corr2d(x, &k.flip(&[0, 1])?)
}
