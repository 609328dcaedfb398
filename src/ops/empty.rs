//! PyTorch's rule for empty tensors in the window ops (convolutions, pools, upsampling,
//! padding): an empty batch or channel axis gives an empty output of the op's shape, with zero
//! gradients; an empty spatial axis is refused, as PyTorch refuses it, and so is an empty
//! channel axis in the pools (but the adaptive average) and upsampling.

use crate::shape::Shape;
use crate::{bail, Result, Tensor};

/// `Some(empty output)` when the `(n, c, h, w)` input `x` or the output `out` has no elements,
/// `None` when the op has work to do. The gradients of `x` and `others` are zeros.
pub(crate) fn empty_window_result(
    op: &'static str, x: &Tensor, others: &[&Tensor], out: impl Into<Shape>,
) -> Result<Option<Tensor>> {
    let out = out.into();
    if x.elem_count() != 0 && out.elem_count() != 0 {
        return Ok(None);
    }
    let d = x.dims();
    if d.len() == 4 && (d[2] == 0 || d[3] == 0) {
        bail!(op, "input {} has an empty spatial dimension", x.shape());
    }
    filled_with_zero_grads(x, others, out, 0.0).map(Some)
}

/// `value` in the shape `out`, whose gradients with respect to `x` and `others` are zeros.
pub(crate) fn filled_with_zero_grads(
    x: &Tensor, others: &[&Tensor], out: Shape, value: f32,
) -> Result<Tensor> {
    let dev = x.device();
    let y = Tensor::full(out, value, &dev)?;
    let mut inputs = vec![x];
    inputs.extend_from_slice(others);
    let shapes: Vec<Shape> = inputs.iter().map(|t| t.shape().clone()).collect();
    Ok(y.attach(&inputs, move |_| {
        shapes.iter().map(|s| Tensor::zeros(s.clone(), &dev).map(Some)).collect()
    }))
}

/// [`empty_window_result`] for the pools (but the adaptive average) and upsampling, where
/// PyTorch refuses an empty channel axis too: only the batch of their input may be empty.
pub(crate) fn empty_pool_result(
    op: &'static str, x: &Tensor, out: impl Into<Shape>,
) -> Result<Option<Tensor>> {
    let d = x.dims();
    if d.len() == 4 && d[1] == 0 {
        bail!(op, "input {} has no channels: only the batch may be empty", x.shape());
    }
    empty_window_result(op, x, &[], out)
}
