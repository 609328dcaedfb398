//! Indexing as PyTorch's basic indexing: integers, slices (positive steps), `None` and `...`,
//! read (`x[1:3, ::2]`) and assigned (`x[:, 2:6] = 0`), with gradients through both.

use crate::math::Operand;
use crate::py_err;
use crate::tensor::Tensor;
use convshade::{AxisSlice, Tensor as Inner};
use pyo3::exceptions::{PyIndexError, PyNotImplementedError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PySlice, PyTuple};

/// What an index selects: per input axis a slice, and the shape of the result.
struct Selection {
    axes: Vec<AxisSlice>,
    out: Vec<usize>,
}

fn select(dims: &[usize], key: &Bound<'_, PyAny>) -> PyResult<Selection> {
    let py = key.py();
    let items: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
        Ok(t) => t.iter().collect(),
        Err(_) => vec![key.clone()],
    };
    let ellipses = items.iter().filter(|i| i.is(py.Ellipsis())).count();
    if ellipses > 1 {
        return Err(PyIndexError::new_err("an index can only have a single ellipsis ('...')"));
    }
    let consuming = items.iter().filter(|i| !i.is_none() && !i.is(py.Ellipsis())).count();
    if consuming > dims.len() {
        return Err(PyIndexError::new_err(format!(
            "too many indices for tensor of dimension {}",
            dims.len()
        )));
    }
    let mut sel = Selection { axes: Vec::new(), out: Vec::new() };
    for item in &items {
        let a = sel.axes.len();
        if item.is_none() {
            sel.out.push(1);
        } else if item.is(py.Ellipsis()) {
            for &n in &dims[a..a + dims.len() - consuming] {
                sel.axes.push(AxisSlice::full(n));
                sel.out.push(n);
            }
        } else if let Ok(s) = item.cast::<PySlice>() {
            let ix = s.indices(dims[a] as isize)?;
            if ix.step <= 0 {
                return Err(PyValueError::new_err("step must be greater than zero"));
            }
            let s = AxisSlice::new(ix.start as usize, ix.stop.max(0) as usize, ix.step as usize);
            sel.out.push(s.len);
            sel.axes.push(s);
        } else if item.is_instance_of::<Tensor>() || item.hasattr("__len__")? {
            return Err(PyNotImplementedError::new_err(
                "indexing with tensors, lists or masks (advanced indexing) is not supported; \
                 use integers, slices, None and ...",
            ));
        } else {
            let i: isize = item.extract()?;
            let n = dims[a] as isize;
            if i < -n || i >= n {
                let msg = format!("index {i} is out of bounds for dimension {a} with size {n}");
                return Err(PyIndexError::new_err(msg));
            }
            sel.axes.push(AxisSlice::range(
                i.rem_euclid(n.max(1)) as usize,
                (i.rem_euclid(n.max(1)) + 1) as usize,
            ));
        }
    }
    for &n in &dims[sel.axes.len()..] {
        sel.axes.push(AxisSlice::full(n));
        sel.out.push(n);
    }
    Ok(sel)
}

#[pymethods]
impl Tensor {
    fn __getitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<Tensor> {
        let t = self.t();
        let sel = select(t.dims(), key)?;
        Tensor::wrap(t.slice(&sel.axes).and_then(|y| y.reshape(sel.out)))
    }

    /// `x[key] = value`: `value` (a tensor or a number) broadcast to the selection, in place.
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: Operand) -> PyResult<()> {
        let t = self.t();
        let sel = select(t.dims(), key)?;
        let region: Vec<usize> = sel.axes.iter().map(|s| s.len).collect();
        let v = match value {
            Operand::Tensor(v) => v.t(),
            Operand::Scalar(s) => {
                Inner::full(Vec::<usize>::new(), s as f32, &t.device()).map_err(py_err)?
            }
        };
        let new = v
            .broadcast_to(sel.out)
            .and_then(|v| v.reshape(region))
            .and_then(|v| t.slice_assign(&sel.axes, &v))
            .map_err(py_err)?;
        self.replace(new)
    }
}
