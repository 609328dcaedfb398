//! The volume ops on CPU tensors, by the CPU's own kernels (`cpu::volume_rows`,
//! `cpu::volume_conv`, `cpu::volume_pool`) instead of 2-d ops composed over padded, unfolded
//! and permuted copies (the convolutions' forward reads one channels-last copy of its input).
//! Each returns `None` for tensors on another device and for empty inputs or outputs, which the
//! composition serves; the callers have validated the arguments the composition would.

use crate::backend::{BinaryOp, ConvSpec};
use crate::cpu::volume_conv::{self, Conv3dSpec};
use crate::cpu::volume_pool::{self, Pool3dGeom};
use crate::cpu::volume_rows;
use crate::ops::conv::attach_conv;
use crate::ops::volume::{dims5, max_passes};
use crate::shape::WindowGeom;
use crate::tensor::{same_backend, Storage};
use crate::{
    ensure, Conv3dOptions, ConvTranspose3dOptions, Error, MaxPool2dOptions, MaxPool3dOptions,
    Result, Shape, Tensor,
};

/// conv3d: `(pad, od)` are the zero planes before the input along depth and the output depth,
/// `hw_pad` the `(h, w)` padding `[top, bottom, left, right]`.
pub(crate) fn conv3d(
    x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, o: &Conv3dOptions,
    (pad, od): (usize, usize), hw_pad: [usize; 4],
) -> Result<Option<Tensor>> {
    const OP: &str = "conv3d";
    let (Storage::Cpu(xs), Storage::Cpu(ws)) = (x.storage(), weight.storage()) else {
        return Ok(None);
    };
    let (n, c, d, h, w) = dims5(OP, x, "input")?;
    let (oc, _, kd, kh, kw) = dims5(OP, weight, "weight")?;
    if let Some(b) = bias {
        ensure!(b.dims() == [oc], OP, "bias {} must be ({oc})", b.shape());
    }
    let (stride, dil) = ((o.stride.1, o.stride.2), (o.dilation.1, o.dilation.2));
    let g = WindowGeom::conv(OP, (1, c, h, w), (kh, kw), stride, hw_pad, dil)?;
    let out = [n, oc, od, g.oh, g.ow];
    if crate::shape::numel(OP, &out)? == 0 || x.elem_count() == 0 {
        return Ok(None);
    }
    let bs = bias.map(|b| same_backend(OP, xs, b)).transpose()?;
    let depth = (kd, o.stride.0, o.dilation.0, pad);
    let s = Conv3dSpec::new(ConvSpec { g, groups: o.groups, d: oc }, n, d, depth, od);
    let y = volume_rows::conv3d(xs, ws, bs.map(|b| &b[..]), &s)?;
    let y = Tensor::from_storage(Storage::Cpu(y), Shape::from(out));
    attach_host(
        OP,
        (y, x, weight, bias),
        move |go, ws| volume_conv::conv3d_backward_input(go, ws, &s),
        move |go, xs| volume_conv::conv3d_backward_weight(xs, go, &s),
    )
}

/// conv_transpose3d as the adjoint of the convolution from its output (depth `od`) back to its
/// input, as conv_transpose2d is: its forward is that convolution's input gradient, its
/// gradients that convolution's forward and weight gradient.
pub(crate) fn conv_transpose3d(
    x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, o: &ConvTranspose3dOptions, od: usize,
) -> Result<Option<Tensor>> {
    const OP: &str = "conv_transpose3d";
    let (Storage::Cpu(xs), Storage::Cpu(ws)) = (x.storage(), weight.storage()) else {
        return Ok(None);
    };
    let (n, c_in, d, h, w) = dims5(OP, x, "input")?;
    let (_, cg_out, kd, kh, kw) = dims5(OP, weight, "weight")?;
    let (s, p, op, dl, groups) = (o.stride, o.padding, o.output_padding, o.dilation, o.groups);
    ensure!(c_in % groups == 0, OP, "{c_in} input channels do not make {groups} groups");
    let c_out = cg_out * groups;
    if let Some(b) = bias {
        ensure!(b.dims() == [c_out], OP, "bias {} must be ({c_out})", b.shape());
    }
    // the convolution from the output back to the input: its windows are the input's positions
    let g = WindowGeom::conv_transpose(
        OP,
        (1, h, w),
        c_out,
        (kh, kw),
        (s.1, s.2),
        (p.1, p.2),
        (dl.1, dl.2),
        (op.1, op.2),
    )?;
    let out = [n, c_out, od, g.h, g.w];
    if crate::shape::numel(OP, &out)? == 0 || x.elem_count() == 0 {
        return Ok(None);
    }
    let bs = bias.map(|b| same_backend(OP, xs, b)).transpose()?;
    let spec = Conv3dSpec::new(ConvSpec { g, groups, d: c_in }, n, od, (kd, s.0, dl.0, p.0), d);
    let y = volume_conv::conv3d_backward_input(xs, ws, &spec)?;
    let mut y = Tensor::from_storage(Storage::Cpu(y), Shape::from(out));
    if let Some(b) = bs {
        // no autograd record: the backward below covers the bias
        let b = Tensor::from_storage(Storage::Cpu(b.clone()), Shape::from([1, c_out, 1, 1, 1]));
        y = y.binary_raw(&b, BinaryOp::Add, OP)?;
    }
    attach_host(
        OP,
        (y, x, weight, bias),
        // the input's gradient: the convolution of the output gradient
        move |go, ws| volume_rows::conv3d(go, ws, None, &spec),
        // the weight's: the convolution's weight gradient, input and output gradient exchanged
        move |go, xs| volume_conv::conv3d_backward_weight(go, xs, &spec),
    )
}

/// max_pool3d in one pass over each volume: the maxima, PyTorch's flat indices, and the
/// backward as one scatter. Also `None` for volumes past f32's exact indices.
pub(crate) fn max_pool3d(x: &Tensor, o: &MaxPool3dOptions) -> Result<Option<(Tensor, Tensor)>> {
    const OP: &str = "max_pool3d";
    let Storage::Cpu(xs) = x.storage() else {
        return Ok(None);
    };
    let (n, c, d, h, w) = dims5(OP, x, "input")?;
    if n * c * d * h * w == 0 || d * h * w > 1 << 24 {
        return Ok(None);
    }
    let (hw, depth) = max_passes(o);
    let geom = |dims, p: &MaxPool2dOptions| {
        let stride = p.stride.unwrap_or(p.kernel);
        WindowGeom::pool(OP, dims, p.kernel, stride, p.padding, p.dilation, p.ceil_mode)
    };
    let plane = geom((n, c * d, h, w), &hw)?;
    let depth = geom((n, c, d, plane.oh * plane.ow), &depth)?;
    let p = Pool3dGeom { plane, depth };
    let (y, idx) = volume_pool::max_pool3d(xs, &p)?;
    let shape = Shape::from([n, c, depth.oh, plane.oh, plane.ow]);
    let idx = Tensor::from_storage(Storage::Cpu(idx), shape.clone());
    let ic = idx.clone();
    let y = Tensor::from_storage(Storage::Cpu(y), shape).attach(&[x], move |g| {
        let (gs, is) = cpu_pair(OP, g, &ic)?;
        let dx = volume_pool::max_pool3d_backward(gs, is, &p)?;
        Ok(vec![Some(Tensor::from_storage(Storage::Cpu(dx), Shape::from([n, c, d, h, w])))])
    });
    Ok(Some((y, idx)))
}

/// A gradient computed from two host buffers.
type HostGrad = dyn Fn(&[f32], &[f32]) -> Result<Vec<f32>> + Send + Sync;

/// Records the backward of a CPU convolution's output `y` (bias included): `grad_input(gout,
/// weight)` and `grad_weight(gout, x)` on the host buffers, shaped as the input and the weight.
fn attach_host(
    op: &'static str, (y, x, weight, bias): (Tensor, &Tensor, &Tensor, Option<&Tensor>),
    grad_input: impl Fn(&[f32], &[f32]) -> Result<Vec<f32>> + Send + Sync + 'static,
    grad_weight: impl Fn(&[f32], &[f32]) -> Result<Vec<f32>> + Send + Sync + 'static,
) -> Result<Option<Tensor>> {
    let (xdims, wdims) = (x.dims().to_vec(), weight.dims().to_vec());
    let shaped = move |grad: &HostGrad, a: &Tensor, b: &Tensor, dims: &[usize]| {
        let (av, bv) = cpu_pair(op, a, b)?;
        Ok(Tensor::from_storage(Storage::Cpu(grad(av, bv)?), Shape::from(dims.to_vec())))
    };
    attach_conv(
        y,
        x,
        weight,
        bias,
        None,
        move |gout, w| shaped(&grad_input, gout, w, &xdims),
        move |gout, x| shaped(&grad_weight, gout, x, &wdims),
    )
    .map(Some)
}

/// Two tensors' host buffers, or a device mismatch naming `op`.
fn cpu_pair<'a>(op: &'static str, a: &'a Tensor, b: &'a Tensor) -> Result<(&'a [f32], &'a [f32])> {
    match (a.storage(), b.storage()) {
        (Storage::Cpu(x), Storage::Cpu(y)) => Ok((x, y)),
        _ => Err(Error::DeviceMismatch { op, lhs: a.device().name(), rhs: b.device().name() }),
    }
}
