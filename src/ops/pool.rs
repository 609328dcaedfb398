//! Max, average and adaptive average and max pooling (PyTorch semantics, including ceil_mode).

use crate::backend::{AvgPoolOpts, Backend};
use crate::ops::conv::Pair;
use crate::ops::empty::{empty_pool_result, empty_window_result};
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend, on_backend_pair, Storage, Tensor};
use crate::{ensure, Error, Result};

/// Options of [`max_pool2d`]; `stride` defaults to the kernel size, as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dOptions {
    /// Window size, `(height, width)`.
    pub kernel: (usize, usize),
    /// Step of the window; `None`: the kernel size.
    pub stride: Option<(usize, usize)>,
    /// Implicit padding (negative infinity) on both sides, `(height, width)`; at most half the
    /// kernel.
    pub padding: (usize, usize),
    /// Spacing between window elements, `(height, width)`.
    pub dilation: (usize, usize),
    /// Round the output size up instead of down, as PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
}

impl MaxPool2dOptions {
    /// A `kernel` window, stride the kernel size, no padding, dilation 1, floor mode.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        MaxPool2dOptions {
            kernel: kernel.into().0,
            stride: None,
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }
    setters! {
        stride(s: impl Into<Pair>) = Some(s.into().0);
        padding(p: impl Into<Pair>) = p.into().0;
        dilation(d: impl Into<Pair>) = d.into().0;
        ceil_mode(c: bool) = c;
    }
}

/// Options of [`avg_pool2d`]; `stride` defaults to the kernel size, `count_include_pad` to true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dOptions {
    /// Window size, `(height, width)`.
    pub kernel: (usize, usize),
    /// Step of the window; `None`: the kernel size.
    pub stride: Option<(usize, usize)>,
    /// Zero padding on both sides, `(height, width)`; at most half the kernel.
    pub padding: (usize, usize),
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Count padded elements in the divisor.
    pub count_include_pad: bool,
    /// Divide by this instead of the window's element count.
    pub divisor_override: Option<usize>,
}

impl AvgPool2dOptions {
    /// A `kernel` window, stride the kernel size, no padding, floor mode, padding counted.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        AvgPool2dOptions {
            kernel: kernel.into().0,
            stride: None,
            padding: (0, 0),
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
    setters! {
        stride(s: impl Into<Pair>) = Some(s.into().0);
        padding(p: impl Into<Pair>) = p.into().0;
        ceil_mode(c: bool) = c;
        count_include_pad(c: bool) = c;
        divisor_override(d: usize) = Some(d);
    }
}

fn input_dims(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
    x.dims4().map_err(|_| Error::Invalid {
        op,
        msg: format!("input must be (n, c, h, w), got {}", x.shape()),
    })
}

fn max_geom(x: &Tensor, o: &MaxPool2dOptions) -> Result<WindowGeom> {
    const OP: &str = "max_pool2d";
    let dims = input_dims(OP, x)?;
    let g = WindowGeom::pool(
        OP,
        dims,
        o.kernel,
        o.stride.unwrap_or(o.kernel),
        o.padding,
        o.dilation,
        o.ceil_mode,
    )?;
    ensure!(
        g.h * g.w <= 1 << 24,
        OP,
        "planes of {} elements are too large for f32 indices",
        g.h * g.w
    );
    Ok(g)
}

/// `F.max_pool2d`: `(n, c, h, w) -> (n, c, oh, ow)`; padding counts as -inf.
pub fn max_pool2d(x: &Tensor, opts: &MaxPool2dOptions) -> Result<Tensor> {
    Ok(max_pool2d_with_indices(x, opts)?.0)
}

/// `F.max_pool2d(..., return_indices=True)`: the maxima and, per output, the flat `h*w` index of
/// its maximum within the input plane (as f32 values, exact below 2^24).
pub fn max_pool2d_with_indices(x: &Tensor, opts: &MaxPool2dOptions) -> Result<(Tensor, Tensor)> {
    let g = max_geom(x, opts)?;
    let out_shape = [g.n, g.c, g.oh, g.ow];
    if let Some(y) = empty_pool_result("max_pool2d", x, out_shape)? {
        return Ok((y, Tensor::zeros(out_shape, &x.device())?));
    }
    let (out, idx) = on_backend_pair!(x.storage(), s, be => be.max_pool2d(s, &g));
    let shape = Shape::from([g.n, g.c, g.oh, g.ow]);
    let idx = Tensor::from_storage(idx, shape.clone());
    let y = Tensor::from_storage(out, shape);
    let ic = idx.clone();
    let y = y.attach(&[x], move |gr| {
        let st = on_backend2_idx(gr, &ic, &g)?;
        Ok(vec![Some(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))])
    });
    Ok((y, idx))
}

fn on_backend2_idx(grad: &Tensor, idx: &Tensor, g: &WindowGeom) -> Result<Storage> {
    Ok(
        crate::tensor::on_backend2!("max_pool2d", grad.storage(), idx.storage(), a, b, be => be.max_pool2d_backward(a, b, g)),
    )
}

/// `F.avg_pool2d`: `(n, c, h, w) -> (n, c, oh, ow)`.
pub fn avg_pool2d(x: &Tensor, opts: &AvgPool2dOptions) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let dims = input_dims(OP, x)?;
    if let Some(d) = opts.divisor_override {
        ensure!(d > 0, OP, "divisor_override must be positive, got 0");
    }
    let g = WindowGeom::pool(
        OP,
        dims,
        opts.kernel,
        opts.stride.unwrap_or(opts.kernel),
        opts.padding,
        (1, 1),
        opts.ceil_mode,
    )?;
    let o = AvgPoolOpts {
        count_include_pad: opts.count_include_pad,
        divisor_override: opts.divisor_override,
    };
    if let Some(y) = empty_pool_result(OP, x, [g.n, g.c, g.oh, g.ow])? {
        return Ok(y);
    }
    let st = on_backend!(x.storage(), s, be => be.avg_pool2d(s, &g, o));
    let y = Tensor::from_storage(st, Shape::from([g.n, g.c, g.oh, g.ow]));
    Ok(y.attach(&[x], move |gr| {
        let st = on_backend!(gr.storage(), s, be => be.avg_pool2d_backward(s, &g, o));
        Ok(vec![Some(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))])
    }))
}

/// `(n, c, h, w)`.
type Dims4 = (usize, usize, usize, usize);

/// An adaptive pool's input dims and output size, checked.
fn adaptive_args(op: &'static str, x: &Tensor, Pair(out): Pair) -> Result<(Dims4, (usize, usize))> {
    let dims = input_dims(op, x)?;
    ensure!(out.0 > 0 && out.1 > 0, op, "output size must be positive, got {out:?}");
    crate::shape::numel(op, &[dims.0, dims.1, out.0, out.1])?;
    Ok((dims, out))
}

/// `F.adaptive_avg_pool2d`: `(n, c, h, w) -> (n, c, oh, ow)` with windows
/// `[floor(i*h/oh), ceil((i+1)*h/oh))`; `(1, 1)` is global average pooling.
pub fn adaptive_avg_pool2d(x: &Tensor, out: impl Into<Pair>) -> Result<Tensor> {
    const OP: &str = "adaptive_avg_pool2d";
    let (dims, out) = adaptive_args(OP, x, out.into())?;
    if let Some(y) = empty_window_result(OP, x, &[], [dims.0, dims.1, out.0, out.1])? {
        return Ok(y);
    }
    let st = on_backend!(x.storage(), s, be => be.adaptive_avg_pool2d(s, dims, out));
    let y = Tensor::from_storage(st, Shape::from([dims.0, dims.1, out.0, out.1]));
    Ok(y.attach(&[x], move |gr| {
        let st = on_backend!(gr.storage(), s, be => be.adaptive_avg_pool2d_backward(s, dims, out));
        Ok(vec![Some(Tensor::from_storage(st, Shape::from([dims.0, dims.1, dims.2, dims.3])))])
    }))
}

/// `F.adaptive_max_pool2d`: `(n, c, h, w) -> (n, c, oh, ow)` maxima over the windows
/// `[floor(i*h/oh), ceil((i+1)*h/oh))`.
pub fn adaptive_max_pool2d(x: &Tensor, out: impl Into<Pair>) -> Result<Tensor> {
    Ok(adaptive_max_pool2d_with_indices(x, out)?.0)
}

/// `F.adaptive_max_pool2d(..., return_indices=True)`: the maxima and the flat `h*w` index of each
/// within its input plane (as f32 values, exact below 2^24).
pub fn adaptive_max_pool2d_with_indices(
    x: &Tensor, out: impl Into<Pair>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "adaptive_max_pool2d";
    let (dims, out) = adaptive_args(OP, x, out.into())?;
    ensure!(
        dims.2 * dims.3 <= 1 << 24,
        OP,
        "planes of {} elements are too large for f32 indices",
        dims.2 * dims.3
    );
    let out_shape = [dims.0, dims.1, out.0, out.1];
    if let Some(y) = empty_pool_result(OP, x, out_shape)? {
        return Ok((y, Tensor::zeros(out_shape, &x.device())?));
    }
    let (y, idx) = on_backend_pair!(x.storage(), s, be => be.adaptive_max_pool2d(s, dims, out));
    let shape = Shape::from([dims.0, dims.1, out.0, out.1]);
    let idx = Tensor::from_storage(idx, shape.clone());
    let ic = idx.clone();
    let y = Tensor::from_storage(y, shape).attach(&[x], move |gr| {
        let st = crate::tensor::on_backend2!(OP, gr.storage(), ic.storage(), a, b, be => be.adaptive_max_pool2d_backward(a, b, dims, out));
        Ok(vec![Some(Tensor::from_storage(
            st,
            Shape::from([dims.0, dims.1, dims.2, dims.3]),
        ))])
    });
    Ok((y, idx))
}
