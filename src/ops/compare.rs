//! Comparisons and the arg-reduction `argmax`. They record no gradient: their outputs are
//! indicators and indices, held in f32 as every tensor is (exact below 2^24).

use crate::backend::BinaryOp;
use crate::shape::Shape;
use crate::{ensure, Result, Tensor};

/// Longest axis whose indices f32 holds exactly.
const EXACT_INDICES: usize = 1 << 24;

impl Tensor {
    /// `1.0` where `self == rhs` (broadcast), else `0.0`, as PyTorch's `eq` cast to float:
    /// NaN equals nothing, `-0.0` equals `0.0`.
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_raw(rhs, BinaryOp::Eq, "eq")
    }

    /// Index of the first maximum along `axis`, as f32, as PyTorch's `argmax(dim, keepdim)`:
    /// a NaN counts as the maximum, so the first NaN wins where there is one. Runs on the
    /// tensor's device (no read-back): the maximum, the elements equal to it, and the largest
    /// of `len - index` over those.
    pub fn argmax(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        const OP: &str = "argmax";
        self.check_axis(OP, axis)?;
        let dims = self.dims().to_vec();
        let len = dims[axis];
        ensure!(len > 0, OP, "axis {axis} of shape {} is empty: there is no maximum", self.shape());
        ensure!(
            len < EXACT_INDICES,
            OP,
            "axis {axis} has {len} elements; f32 holds indices exactly only below {EXACT_INDICES}"
        );
        let dev = self.device();
        let peak = self.max_axis(axis, true)?;
        // 1 where an element is its line's maximum (or both are NaN)
        let hit = self.binary_raw(&peak, BinaryOp::MaxHit, OP)?;
        let mut ramp_dims = vec![1; dims.len()];
        ramp_dims[axis] = len;
        let ramp = (0..len).map(|k| (len - k) as f32).collect();
        let ramp = Tensor::from_vec(ramp, Shape::from(ramp_dims), &dev)?;
        // (len - index) on the hits, 0 elsewhere: the largest is the first hit's
        let first = hit.binary_raw(&ramp, BinaryOp::Mul, OP)?.max_axis(axis, keepdim)?;
        Tensor::from_vec(vec![len as f32], Shape::from(Vec::new()), &dev)?.binary_raw(
            &first,
            BinaryOp::Sub,
            OP,
        )
    }
}
