//! The shape ops: reshape, permute, transpose, broadcast and flip (strided copies).

use crate::backend::{Backend, StridedSpec};
use crate::shape::{broadcast_shapes, broadcast_strides, Shape};
use crate::tensor::{on_backend, Tensor};
use crate::{bail, ensure, Result};

impl Tensor {
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
        let strides = broadcast_strides(self.shape(), &shape).iter().map(|&s| s as isize).collect();
        let y = self.strided_raw(StridedSpec { out: shape.dims().to_vec(), strides, offset: 0 })?;
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
        ensure!(perm.len() == r, "permute", "permutation {perm:?} does not match rank {r}");
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
            ensure!(!axes[..i].contains(&a), "flip", "axis {a} appears more than once in {axes:?}");
            offset += (self.dims()[a] - 1) * st[a];
            strides[a] = -strides[a];
        }
        let y = self.strided_raw(StridedSpec { out: self.dims().to_vec(), strides, offset })?;
        let axes = axes.to_vec();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.flip(&axes)?)])))
    }
}
