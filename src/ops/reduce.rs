//! Sums, means and maxima along axes, and `sum_to` (the adjoint of broadcasting).

use crate::backend::{Backend, ReduceOp};
use crate::shape::Shape;
use crate::tensor::{on_backend, Tensor};
use crate::{ensure, Result};

impl Tensor {
    /// Sum of the middle axis of `(outer, len, inner)`, no autograd record.
    pub(crate) fn sum_axis_raw(
        &self, outer: usize, len: usize, inner: usize, shape: Shape,
    ) -> Result<Tensor> {
        self.reduce_raw(outer, len, inner, shape, ReduceOp::Sum)
    }

    pub(crate) fn reduce_raw(
        &self, outer: usize, len: usize, inner: usize, shape: Shape, op: ReduceOp,
    ) -> Result<Tensor> {
        let st = on_backend!(self.storage(), x, be => be.reduce_axis(x, outer, len, inner, op));
        Ok(Tensor::from_storage(st, shape))
    }

    /// Maximum along `axis` (no gradient: use it for constants such as a softmax shift).
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.check_axis("max", axis)?;
        let dims = self.dims();
        ensure!(
            dims[axis] > 0,
            "max",
            "axis {axis} of shape {} is empty: there is no maximum, as in PyTorch",
            self.shape()
        );
        let mut out = dims.to_vec();
        if keepdim {
            out[axis] = 1;
        } else {
            out.remove(axis);
        }
        self.reduce_raw(
            dims[..axis].iter().product(),
            dims[axis],
            dims[axis + 1..].iter().product(),
            Shape::from(out),
            ReduceOp::Max,
        )
    }

    pub(crate) fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        ensure!(axis < self.rank(), op, "axis {axis} is out of range for shape {}", self.shape());
        Ok(())
    }

    /// Sum along `axis`; `keepdim` keeps it with size 1.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.check_axis("sum", axis)?;
        let dims = self.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut kept = dims.to_vec();
        kept[axis] = 1;
        let out_shape = if keepdim {
            Shape::from(kept.clone())
        } else {
            let mut d = dims.to_vec();
            d.remove(axis);
            Shape::from(d)
        };
        let y = self.sum_axis_raw(outer, dims[axis], inner, out_shape)?;
        let in_shape = self.shape().clone();
        Ok(y.attach(&[self], move |g| {
            Ok(vec![Some(g.reshape(kept.clone())?.broadcast_to(in_shape.clone())?)])
        }))
    }

    /// Sum of all elements (a 0-d tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        let n = self.elem_count();
        let y = self.sum_axis_raw(1, n, 1, Shape::from(vec![]))?;
        let in_shape = self.shape().clone();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.broadcast_to(in_shape.clone())?)])))
    }

    /// Mean along `axis`.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.check_axis("mean", axis)?;
        let len = self.dims()[axis] as f32;
        self.sum_axis(axis, keepdim)?.mul_scalar(1.0 / len)
    }

    /// Mean of all elements (a 0-d tensor).
    pub fn mean_all(&self) -> Result<Tensor> {
        let n = self.elem_count() as f32;
        self.sum_all()?.mul_scalar(1.0 / n)
    }

    /// Sums a broadcast gradient back down to `shape` (the adjoint of `broadcast_to`).
    pub(crate) fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self.rank() - shape.rank();
        let mut t = self.clone();
        // Leading axes the target lacks, then axes where it has size 1.
        for _ in 0..lead {
            let d = t.dims().to_vec();
            t = t.sum_axis_raw(1, d[0], d[1..].iter().product(), Shape::from(d[1..].to_vec()))?;
        }
        for (axis, &want) in shape.dims().iter().enumerate() {
            let d = t.dims().to_vec();
            if want == 1 && d[axis] != 1 {
                let mut kept = d.clone();
                kept[axis] = 1;
                t = t.sum_axis_raw(
                    d[..axis].iter().product(),
                    d[axis],
                    d[axis + 1..].iter().product(),
                    Shape::from(kept),
                )?;
            }
        }
        ensure!(t.shape() == shape, "sum_to", "cannot reduce {} to {shape}", self.shape());
        Ok(t)
    }
}
