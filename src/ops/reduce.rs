//! Sums and means, and the shape ops (reshape, permute, broadcast, flip).

use crate::backend::{Backend, ReduceOp, StridedSpec};
use crate::shape::{broadcast_shapes, broadcast_strides, Shape};
use crate::tensor::{on_backend, Tensor};
use crate::{bail, ensure, Result};

impl Tensor {
    /// Sum of the middle axis of `(outer, len, inner)`, no autograd record.
    pub(crate) fn sum_axis_raw(
        &self,
        outer: usize,
        len: usize,
        inner: usize,
        shape: Shape,
    ) -> Result<Tensor> {
        self.reduce_raw(outer, len, inner, shape, ReduceOp::Sum)
    }

    pub(crate) fn reduce_raw(
        &self,
        outer: usize,
        len: usize,
        inner: usize,
        shape: Shape,
        op: ReduceOp,
    ) -> Result<Tensor> {
        let st = on_backend!(self.storage(), x, be => be.reduce_axis(x, outer, len, inner, op));
        Ok(Tensor::from_storage(st, shape))
    }

    /// Maximum along `axis` (no gradient: use it for constants such as a softmax shift).
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.check_axis("max", axis)?;
        let dims = self.dims();
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

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        ensure!(
            axis < self.rank(),
            op,
            "axis {axis} is out of range for shape {}",
            self.shape()
        );
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
            Ok(vec![Some(
                g.reshape(kept.clone())?.broadcast_to(in_shape.clone())?,
            )])
        }))
    }

    /// Sum of all elements (a 0-d tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        let n = self.elem_count();
        let y = self.sum_axis_raw(1, n, 1, Shape::from(vec![]))?;
        let in_shape = self.shape().clone();
        Ok(y.attach(&[self], move |g| {
            Ok(vec![Some(g.broadcast_to(in_shape.clone())?)])
        }))
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
            t = t.sum_axis_raw(
                1,
                d[0],
                d[1..].iter().product(),
                Shape::from(d[1..].to_vec()),
            )?;
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
        ensure!(
            t.shape() == shape,
            "sum_to",
            "cannot reduce {} to {shape}",
            self.shape()
        );
        Ok(t)
    }

    /// A copy of a strided view of this tensor, no autograd record.
    pub(crate) fn strided_raw(&self, spec: StridedSpec) -> Result<Tensor> {
        let shape = Shape::from(spec.out.clone());
        let st = on_backend!(self.storage(), x, be => be.copy_strided(x, &spec));
        Ok(Tensor::from_storage(st, shape))
    }

    /// Repeats size-1 (or missing leading) axes to reach `shape`, as NumPy broadcasting does.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        shape.validate("broadcast_to")?;
        let out = broadcast_shapes("broadcast_to", self.shape(), &shape)?;
        ensure!(
            out == shape,
            "broadcast_to",
            "shape {} cannot be broadcast to {shape}",
            self.shape()
        );
        if self.shape() == &shape {
            return Ok(self.clone());
        }
        let strides = broadcast_strides(self.shape(), &shape)
            .iter()
            .map(|&s| s as isize)
            .collect();
        let y = self.strided_raw(StridedSpec {
            out: shape.dims().to_vec(),
            strides,
            offset: 0,
        })?;
        let src = self.shape().clone();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.sum_to(&src)?)])))
    }

    /// The same data with another shape of the same element count (no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        ensure!(
            shape.elem_count() == self.elem_count(),
            "reshape",
            "cannot reshape {} ({} elements) to {shape} ({} elements)",
            self.shape(),
            self.elem_count(),
            shape.elem_count()
        );
        shape.validate("reshape")?;
        let y = self.share_storage(shape, None);
        let src = self.shape().clone();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.reshape(src.clone())?)])))
    }

    /// Flattens every axis from `start` on into one.
    pub fn flatten_from(&self, start: usize) -> Result<Tensor> {
        self.check_axis("flatten", start)?;
        let mut d = self.dims()[..start].to_vec();
        d.push(self.dims()[start..].iter().product());
        self.reshape(d)
    }

    /// Reorders axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        ensure!(
            perm.len() == r,
            "permute",
            "permutation {perm:?} does not match rank {r}"
        );
        for &p in perm {
            if p >= r || seen[p] {
                bail!("permute", "{perm:?} is not a permutation of 0..{r}");
            }
            seen[p] = true;
        }
        let st = self.shape().strides();
        let y = self.strided_raw(StridedSpec {
            out: perm.iter().map(|&p| self.dims()[p]).collect(),
            strides: perm.iter().map(|&p| st[p] as isize).collect(),
            offset: 0,
        })?;
        let mut inverse = vec![0; r];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.permute(&inverse)?)])))
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Reverses the order of elements along each of `axes`.
    pub fn flip(&self, axes: &[usize]) -> Result<Tensor> {
        let st = self.shape().strides();
        let mut strides: Vec<isize> = st.iter().map(|&s| s as isize).collect();
        let mut offset = 0;
        for (i, &a) in axes.iter().enumerate() {
            self.check_axis("flip", a)?;
            ensure!(
                !axes[..i].contains(&a),
                "flip",
                "axis {a} appears more than once in {axes:?}"
            );
            offset += (self.dims()[a] - 1) * st[a];
            strides[a] = -strides[a];
        }
        let y = self.strided_raw(StridedSpec {
            out: self.dims().to_vec(),
            strides,
            offset,
        })?;
        let axes = axes.to_vec();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.flip(&axes)?)])))
    }
}
