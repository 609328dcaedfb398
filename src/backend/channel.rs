//! Per-channel primitives of batch normalization over `(n, c, hw)`, by default composed of the
//! broadcast binary ops and axis reductions (the CPU backend fuses them into single passes).

use super::{Backend, BinaryOp, BroadcastSpec, ReduceOp, UnaryOp};
use crate::Result;

/// Reading a `(c)` vector along the channel axis of `(n, c, hw)`, and `(n, c, hw)` itself.
pub(crate) fn per_channel((n, c, hw): (usize, usize, usize)) -> BroadcastSpec {
    BroadcastSpec { out: vec![n, c, hw], a_strides: vec![c * hw, hw, 1], b_strides: vec![0, 1, 0] }
}

fn plain((n, c, hw): (usize, usize, usize)) -> BroadcastSpec {
    BroadcastSpec {
        out: vec![n, c, hw],
        a_strides: vec![c * hw, hw, 1],
        b_strides: vec![c * hw, hw, 1],
    }
}

/// `(n, c, hw) -> (c)` sums over n and hw: hw first, then n.
pub(crate) fn channel_sum<B: Backend + ?Sized>(
    be: &B, x: &B::Storage, (n, c, hw): (usize, usize, usize),
) -> Result<B::Storage> {
    let per_image = be.reduce_axis(x, n * c, hw, 1, ReduceOp::Sum)?; // (n, c)
    be.reduce_axis(&per_image, 1, n, c, ReduceOp::Sum)
}

/// `sum (x - mean[ch]) * w` per channel, `w` being `g` or else `x - mean[ch]`.
pub(crate) fn channel_dot<B: Backend + ?Sized>(
    be: &B, x: &B::Storage, mean: &B::Storage, g: Option<&B::Storage>, dims: (usize, usize, usize),
) -> Result<B::Storage> {
    let d = be.binary(x, mean, BinaryOp::Sub, &per_channel(dims))?;
    let p = be.binary(&d, g.unwrap_or(&d), BinaryOp::Mul, &plain(dims))?;
    channel_sum(be, &p, dims)
}

/// `a[ch] * u + b[ch] * v + k[ch]` (without `(v, b)`: `a[ch] * u + k[ch]`).
pub(crate) fn channel_combine<B: Backend + ?Sized>(
    be: &B, u: &B::Storage, a: &B::Storage, vb: Option<(&B::Storage, &B::Storage)>, k: &B::Storage,
    dims: (usize, usize, usize),
) -> Result<B::Storage> {
    let mut y = be.binary(u, a, BinaryOp::Mul, &per_channel(dims))?;
    if let Some((v, b)) = vb {
        let bv = be.binary(v, b, BinaryOp::Mul, &per_channel(dims))?;
        y = be.binary(&y, &bv, BinaryOp::Add, &plain(dims))?;
    }
    be.binary(&y, k, BinaryOp::Add, &per_channel(dims))
}

/// `a[ch] * u + k[ch]`, then `+ residual` and a ReLU where asked, each a pass of its own.
pub(crate) fn channel_affine<B: Backend + ?Sized>(
    be: &B, u: &B::Storage, a: &B::Storage, k: &B::Storage, residual: Option<&B::Storage>,
    relu: bool, dims: (usize, usize, usize),
) -> Result<B::Storage> {
    let mut y = be.channel_combine(u, a, None, k, dims)?;
    if let Some(r) = residual {
        y = be.binary(&y, r, BinaryOp::Add, &plain(dims))?;
    }
    if relu {
        y = be.unary(&y, dims.0 * dims.1 * dims.2, UnaryOp::Relu)?;
    }
    Ok(y)
}
