//! `F.conv_transpose2d`: the adjoint of a convolution, run by the backends' conv2d primitives
//! (its forward is a convolution's input gradient; its gradients are a convolution forward and
//! a weight gradient), so both devices use their implicit GEMMs.

use crate::backend::{Backend, ConvSpec};
use crate::ops::conv::{add_bias, attach_conv, conv_forward_raw, Pair};
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend2, Tensor};
use crate::{ensure, Error, Result};

/// Options of [`conv_transpose2d`], as PyTorch's (padding on both sides of each axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    /// Extra rows and columns at the bottom and right: below the stride or the dilation.
    pub output_padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        ConvTranspose2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl ConvTranspose2dOptions {
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        stride(s: impl Into<Pair>) = s.into().0;
        padding(p: impl Into<Pair>) = p.into().0;
        output_padding(p: impl Into<Pair>) = p.into().0;
        dilation(d: impl Into<Pair>) = d.into().0;
        groups(g: usize) = g;
    }
}

/// `input (n, c_in, h, w)`, `weight (c_in, c_out/groups, kh, kw)`, `bias (c_out)` ->
/// `(n, c_out, (h-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1, ...)`.
pub fn conv_transpose2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: &ConvTranspose2dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    input.check_same_device(OP, weight)?;
    if let Some(b) = bias {
        input.check_same_device(OP, b)?;
    }
    let bad = |msg: String| Error::Invalid { op: OP, msg };
    let (n, c_in, h, w) = input
        .dims4()
        .map_err(|_| bad(format!("input must be (n, c, h, w), got {}", input.shape())))?;
    let (wc, cg_out, kh, kw) = weight.dims4().map_err(|_| {
        bad(format!(
            "weight must be (in_channels, out_channels/groups, kh, kw), got {}",
            weight.shape()
        ))
    })?;
    let o = opts;
    ensure!(o.groups > 0, OP, "groups must be positive, got 0");
    ensure!(
        wc == c_in && c_in % o.groups == 0,
        OP,
        "weight {} needs {wc} input channels divisible by groups {}, input has {c_in}",
        weight.shape(),
        o.groups
    );
    ensure!(
        o.stride.0 > 0 && o.stride.1 > 0 && o.dilation.0 > 0 && o.dilation.1 > 0,
        OP,
        "stride {:?} and dilation {:?} must be positive",
        o.stride,
        o.dilation
    );
    for (op, s, d) in [
        (o.output_padding.0, o.stride.0, o.dilation.0),
        (o.output_padding.1, o.stride.1, o.dilation.1),
    ] {
        ensure!(
            op < s.max(d),
            OP,
            "output_padding {:?} must be smaller than the stride {:?} or the dilation {:?}",
            o.output_padding,
            o.stride,
            o.dilation
        );
    }
    let c_out = cg_out * o.groups;
    if let Some(b) = bias {
        ensure!(
            b.dims() == [c_out],
            OP,
            "bias must have shape [{c_out}], got {}",
            b.shape()
        );
    }
    let out_len = |i: usize, s: usize, p: usize, d: usize, k: usize, op: usize| {
        ((i as i128 - 1) * s as i128 - 2 * p as i128
            + (d * (k.max(1) - 1)) as i128
            + op as i128
            + 1)
        .try_into()
        .ok()
        .filter(|&v: &usize| v > 0)
    };
    let (oh, ow) = match (
        out_len(
            h,
            o.stride.0,
            o.padding.0,
            o.dilation.0,
            kh,
            o.output_padding.0,
        ),
        out_len(
            w,
            o.stride.1,
            o.padding.1,
            o.dilation.1,
            kw,
            o.output_padding.1,
        ),
    ) {
        (Some(a), Some(b)) if h > 0 && w > 0 => (a, b),
        _ => {
            return Err(bad(format!(
                "input {h}x{w} with kernel {kh}x{kw}, {o:?} gives no output"
            )))
        }
    };
    // the convolution from the output back to the input: its windows are the input's positions
    let mut g = WindowGeom::conv(
        OP,
        (n, c_out, oh, ow),
        (kh, kw),
        o.stride,
        [o.padding.0, o.padding.0, o.padding.1, o.padding.1],
        o.dilation,
    )?;
    (g.oh, g.ow) = (h, w);
    let spec = ConvSpec {
        g,
        groups: o.groups,
        d: c_in,
    };
    crate::shape::numel(OP, &[n, c_out, oh, ow])?;
    if let Some(y) = super::conv::empty_conv_result(OP, input, weight, bias, [n, c_out, oh, ow])? {
        return Ok(y);
    }
    let st = on_backend2!(OP, input.storage(), weight.storage(), xs, ws, be => be.conv2d_backward_input(xs, ws, &spec));
    let y = add_bias(
        Tensor::from_storage(st, Shape::from([n, c_out, oh, ow])),
        bias,
    )?;
    attach_conv(
        y,
        input,
        weight,
        bias,
        None,
        // the input's gradient: the convolution of the output gradient
        move |gout, w| conv_forward_raw(gout, w, None, &spec, false),
        // the weight's: a convolution's weight gradient with the roles of input and output
        // gradient exchanged
        move |gout, x| {
            let st = on_backend2!(OP, gout.storage(), x.storage(), gs, xs, be => be.conv2d_backward_weight(gs, xs, &spec));
            Ok(Tensor::from_storage(
                st,
                Shape::from([c_in, cg_out, kh, kw]),
            ))
        },
    )
}
