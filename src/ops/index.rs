//! Indexing: slices with steps (read and assigned), narrow, select, unsqueeze, squeeze, cat and
//! stack. A slice reads a strided view; assigning writes one (`Backend::slice_assign`), which is
//! also the slice's gradient.

use crate::backend::{Backend, SliceSpec};
use crate::tensor::{on_backend2, Tensor};
use crate::{bail, ensure, Result, Shape};

/// One axis of a slice: `len` indices from `start` in steps of `step`, as PyTorch's
/// `start:stop:step` (see [`AxisSlice::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisSlice {
    /// The first index.
    pub start: usize,
    /// How many indices.
    pub len: usize,
    /// The distance between them, at least 1.
    pub step: usize,
}

impl AxisSlice {
    /// `start..stop` in steps of `step` (`stop` exclusive; empty when `stop <= start`).
    pub fn new(start: usize, stop: usize, step: usize) -> AxisSlice {
        let len = match step {
            0 => 0,
            s => stop.saturating_sub(start).div_ceil(s),
        };
        AxisSlice { start, len, step }
    }

    /// `start..stop`.
    pub fn range(start: usize, stop: usize) -> AxisSlice {
        AxisSlice::new(start, stop, 1)
    }

    /// Every index of an axis of size `n`.
    pub fn full(n: usize) -> AxisSlice {
        AxisSlice { start: 0, len: n, step: 1 }
    }

    fn is_full(&self, n: usize) -> bool {
        self.start == 0 && self.step == 1 && self.len == n
    }
}

impl Tensor {
    /// The region `axes` selects (one per leading axis, the rest whole), checked, with every run
    /// of whole axes merged into the axis before it where that keeps it one strided region.
    fn slice_spec(&self, op: &'static str, axes: &[AxisSlice]) -> Result<SliceSpec> {
        ensure!(
            axes.len() <= self.rank(),
            op,
            "{} axes sliced of a tensor of shape {}",
            axes.len(),
            self.shape()
        );
        let mut spec = SliceSpec { dims: vec![], start: vec![], step: vec![], len: vec![] };
        for (a, &n) in self.dims().iter().enumerate() {
            let s = axes.get(a).copied().unwrap_or(AxisSlice::full(n));
            ensure!(s.step >= 1, op, "axis {a}: the step must be at least 1, got {}", s.step);
            let end = s.start + s.len.saturating_sub(1) * s.step;
            ensure!(
                s.start <= n && (s.len == 0 || end < n),
                op,
                "axis {a}: {} indices from {} in steps of {} are out of range for size {n}",
                s.len,
                s.start,
                s.step
            );
            let last = spec.dims.len().wrapping_sub(1);
            if a > 0 && s.is_full(n) && spec.step[last] == 1 {
                // row-major order is kept: the region's (i, j) is the merged axis' i * n + j
                spec.dims[last] *= n;
                spec.start[last] *= n;
                spec.len[last] *= n;
                continue;
            }
            spec.dims.push(n);
            spec.start.push(s.start.min(n));
            spec.step.push(s.step);
            spec.len.push(s.len);
        }
        Ok(spec)
    }

    fn region_shape(&self, axes: &[AxisSlice]) -> Shape {
        let d = self.dims();
        Shape::from((0..d.len()).map(|a| axes.get(a).map_or(d[a], |s| s.len)).collect::<Vec<_>>())
    }

    /// The elements `axes` select (one per leading axis; the rest whole), as PyTorch's
    /// `x[a:b:s, c:d]`. A copy.
    pub fn slice(&self, axes: &[AxisSlice]) -> Result<Tensor> {
        let spec = self.slice_spec("slice", axes)?;
        if spec.region() == spec.total() {
            return self.reshape(self.region_shape(axes)); // all of it: no copy
        }
        let y = self.strided_raw(spec.strided())?.reshape_raw(self.region_shape(axes));
        let src = self.shape().clone();
        Ok(y.attach(&[self], move |g| {
            Ok(vec![Some(Tensor::zeros(src.clone(), &g.device())?.assign_raw(g, &spec)?)])
        }))
    }

    /// This tensor with the elements `axes` select replaced by `value` (broadcast to their
    /// shape), as PyTorch's `x[a:b, ::s] = value`. Gradients flow to both: to this tensor
    /// outside the region, to `value` from inside it.
    pub fn slice_assign(&self, axes: &[AxisSlice], value: &Tensor) -> Result<Tensor> {
        let spec = self.slice_spec("slice_assign", axes)?;
        let region = self.region_shape(axes);
        let value = value.broadcast_to(region.clone())?;
        if spec.region() == 0 {
            return Ok(self.clone());
        }
        let y = self.assign_raw(&value, &spec)?;
        Ok(y.attach(&[self, &value], move |g| {
            let empty = Tensor::zeros(spec.len.clone(), &g.device())?;
            let outside = g.assign_raw(&empty, &spec)?;
            let inside = g.strided_raw(spec.strided())?.reshape_raw(region.clone());
            Ok(vec![Some(outside), Some(inside)])
        }))
    }

    /// `base` with the region replaced by `value` (of the region's element count), no record.
    fn assign_raw(&self, value: &Tensor, spec: &SliceSpec) -> Result<Tensor> {
        if spec.region() == 0 {
            return Ok(self.detach());
        }
        let st = on_backend2!("slice_assign", self.storage(), value.storage(), b, v, be =>
            be.slice_assign(b, v, spec));
        Ok(Tensor::from_storage(st, self.shape().clone()))
    }

    pub(crate) fn reshape_raw(self, shape: Shape) -> Tensor {
        match self.shape() == &shape {
            true => self,
            false => self.share_storage(shape, None),
        }
    }

    /// `len` indices of axis `axis` from `start`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        self.check_axis("narrow", axis)?;
        let mut axes: Vec<AxisSlice> =
            self.dims()[..axis].iter().map(|&n| AxisSlice::full(n)).collect();
        axes.push(AxisSlice { start, len, step: 1 });
        self.slice(&axes)
    }

    /// Index `index` of axis `axis`, that axis removed (PyTorch's `x[:, i]`).
    pub fn select(&self, axis: usize, index: usize) -> Result<Tensor> {
        self.check_axis("select", axis)?;
        let n = self.dims()[axis];
        ensure!(index < n, "select", "index {index} is out of range for axis {axis} of size {n}");
        let mut dims = self.dims().to_vec();
        dims.remove(axis);
        self.narrow(axis, index, 1)?.reshape(dims)
    }

    /// A new axis of size 1 at `axis` (`0..=rank`).
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        ensure!(
            axis <= self.rank(),
            "unsqueeze",
            "axis {axis} is out of range for shape {}",
            self.shape()
        );
        let mut dims = self.dims().to_vec();
        dims.insert(axis, 1);
        self.reshape(dims)
    }

    /// Removes axis `axis` if its size is 1 (else the same tensor, as PyTorch).
    pub fn squeeze(&self, axis: usize) -> Result<Tensor> {
        self.check_axis("squeeze", axis)?;
        if self.dims()[axis] != 1 {
            return Ok(self.clone());
        }
        let mut dims = self.dims().to_vec();
        dims.remove(axis);
        self.reshape(dims)
    }
}

/// The tensors joined along axis `axis`; every other axis must match.
pub fn cat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
    let Some(first) = tensors.first() else { bail!("cat", "no tensors to join") };
    first.check_axis("cat", axis)?;
    let mut dims = first.dims().to_vec();
    dims[axis] = 0;
    for t in tensors {
        let same = t.rank() == dims.len()
            && t.dims().iter().zip(first.dims()).enumerate().all(|(a, (x, y))| a == axis || x == y);
        ensure!(
            same,
            "cat",
            "shape {} does not join shape {} along axis {axis}",
            t.shape(),
            first.shape()
        );
        dims[axis] += t.dims()[axis];
    }
    if axis == 0 {
        return cat_rows(tensors, dims);
    }
    // each part written into the joined tensor: a copy of it per part
    let mut out = Tensor::zeros(dims.clone(), &first.device())?;
    let mut at = 0;
    for t in tensors {
        let mut axes: Vec<AxisSlice> = dims[..axis].iter().map(|&n| AxisSlice::full(n)).collect();
        axes.push(AxisSlice::range(at, at + t.dims()[axis]));
        out = out.slice_assign(&axes, t)?;
        at += t.dims()[axis];
    }
    Ok(out)
}

/// [`cat`] along the first axis: the parts' elements one after another (buffer copies on the
/// GPU, one pass in all); the gradient is the upstream gradient's rows, part by part.
fn cat_rows(tensors: &[&Tensor], dims: Vec<usize>) -> Result<Tensor> {
    let y = concat_flat(tensors).map_err(|e| match e {
        crate::Error::DeviceMismatch { lhs, rhs, .. } => {
            crate::Error::DeviceMismatch { op: "cat", lhs, rhs }
        }
        e => e,
    })?;
    let y = y.reshape_raw(Shape::from(dims));
    let rows: Vec<usize> = tensors.iter().map(|t| t.dims()[0]).collect();
    Ok(y.attach(tensors, move |g| {
        let mut at = 0;
        let mut parts = Vec::with_capacity(rows.len());
        for &n in &rows {
            parts.push(Some(g.narrow(0, at, n)?));
            at += n;
        }
        Ok(parts)
    }))
}

/// The tensors, all of one shape, stacked along a new axis `axis`.
pub fn stack(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
    let Some(first) = tensors.first() else { bail!("stack", "no tensors to stack") };
    for t in tensors {
        ensure!(
            t.shape() == first.shape(),
            "stack",
            "shape {} differs from {}",
            t.shape(),
            first.shape()
        );
    }
    ensure!(
        axis <= first.rank(),
        "stack",
        "axis {axis} is out of range for shape {}",
        first.shape()
    );
    let parts = tensors.iter().map(|t| t.unsqueeze(axis)).collect::<Result<Vec<_>>>()?;
    cat(&parts.iter().collect::<Vec<_>>(), axis)
}

/// The tensors' elements one after another, as one flat tensor: on the GPU by buffer copies (no
/// kernel), for gathering gradients into one buffer before one readback and for `cat` along
/// the first axis. No record.
pub(crate) fn concat_flat(tensors: &[&Tensor]) -> Result<Tensor> {
    use crate::tensor::Storage;
    let Some(first) = tensors.first() else { bail!("concat_flat", "no tensors to join") };
    let total: usize = tensors.iter().map(|t| t.elem_count()).sum();
    let storage = match first.storage() {
        Storage::Cpu(_) => {
            let mut out = Vec::with_capacity(total);
            for t in tensors {
                match t.storage() {
                    Storage::Cpu(v) => out.extend_from_slice(v),
                    Storage::Gpu(_) => return Err(mismatch(first, t)),
                }
            }
            Storage::Cpu(out)
        }
        Storage::Gpu(_) if total == 0 => return Tensor::zeros([0], &first.device()),
        Storage::Gpu(b) => {
            let ctx = b.ctx();
            let out = ctx.alloc_any(total, "concat_flat")?;
            let mut at = 0;
            for t in tensors {
                match t.storage() {
                    Storage::Gpu(p) if std::sync::Arc::ptr_eq(p.ctx(), ctx) => {
                        if t.elem_count() > 0 {
                            ctx.copy_range((p, 0), (&out, at), t.elem_count())?;
                        }
                        at += t.elem_count();
                    }
                    _ => return Err(mismatch(first, t)),
                }
            }
            Storage::Gpu(out)
        }
    };
    Ok(Tensor::from_storage(storage, Shape::from(vec![total])))
}

fn mismatch(a: &Tensor, b: &Tensor) -> crate::Error {
    crate::Error::DeviceMismatch {
        op: "concat_flat",
        lhs: a.device().name(),
        rhs: b.device().name(),
    }
}
