//! The Python `Tensor`: a float32 tensor on a device, with PyTorch's autograd surface (leaves,
//! `.grad`, `.data`, `backward`) and in-place updates. Arithmetic is in math.rs, indexing in
//! index.rs.

use crate::device::{resolve, Device, DeviceArg};
use crate::{lock, py_err};
use convshade::Tensor as Inner;
use numpy::prelude::*;
use numpy::{PyArray, PyArrayDyn, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::{Arc, Mutex, Weak};

/// Where a leaf's accumulated gradient lives: shared by the Python objects of one leaf. The
/// gradient is itself a tensor object, so `p.grad.zero_()` changes it in place.
pub(crate) type GradCell = Arc<Mutex<Option<Tensor>>>;

/// Every leaf that requires a gradient and whose Python object is alive, with its gradient's
/// cell: `backward` adds each one's gradient into its cell, as PyTorch fills `.grad`.
static LEAVES: Mutex<Vec<Leaf>> = Mutex::new(Vec::new());

/// A registered leaf: its tensor, and its gradient's cell while its Python object lives.
type Leaf = (Inner, Weak<Mutex<Option<Tensor>>>);

/// A tensor's value, shared with the `.data` of it.
pub(crate) struct State {
    pub(crate) t: Inner,
    /// A leaf that requires a gradient.
    pub(crate) leaf: bool,
    /// Made by `nn.Parameter`: printed as PyTorch prints a parameter.
    param: bool,
}

/// A float32 tensor on a device.
#[pyclass(name = "Tensor", module = "convshade", from_py_object)]
#[derive(Clone)]
pub(crate) struct Tensor {
    state: Arc<Mutex<State>>,
    grad: GradCell,
    /// This object is another's `.data`: it reads the values without history, and writes into
    /// them keeping the other a leaf.
    alias: bool,
}

impl Tensor {
    pub(crate) fn new(t: Inner) -> Tensor {
        Tensor {
            state: Arc::new(Mutex::new(State { t, leaf: false, param: false })),
            grad: GradCell::default(),
            alias: false,
        }
    }

    pub(crate) fn wrap(t: convshade::Result<Inner>) -> PyResult<Tensor> {
        t.map(Tensor::new).map_err(py_err)
    }

    /// The engine tensor this object holds now.
    pub(crate) fn t(&self) -> Inner {
        let s = lock(&self.state);
        match self.alias {
            true => s.t.detach(),
            false => s.t.clone(),
        }
    }

    /// Makes `t` the value, a leaf that requires a gradient, keeping the gradient's cell.
    fn set_leaf(&self, s: &mut State, t: Inner) {
        s.t = t.detach().requires_grad_();
        s.leaf = true;
        let mut leaves = lock(&LEAVES);
        leaves
            .retain(|(_, c)| c.strong_count() > 0 && !Weak::ptr_eq(c, &Arc::downgrade(&self.grad)));
        leaves.push((s.t.clone(), Arc::downgrade(&self.grad)));
    }

    /// An in-place update to `new`, as PyTorch allows it: through `.data` or without recording
    /// (keeping a leaf a leaf), or on a tensor that is not a leaf (recorded).
    pub(crate) fn replace(&self, new: Inner) -> PyResult<()> {
        let mut s = lock(&self.state);
        if s.leaf {
            if !self.alias && convshade::is_grad_enabled() {
                return Err(PyRuntimeError::new_err(
                    "a leaf Variable that requires grad is being used in an in-place operation.",
                ));
            }
            self.set_leaf(&mut s, new);
        } else {
            s.t = match self.alias || !convshade::is_grad_enabled() {
                true => new.detach(),
                false => new,
            };
        }
        Ok(())
    }

    pub(crate) fn values(&self, py: Python<'_>) -> PyResult<Vec<f32>> {
        let t = self.t();
        py.detach(move || t.to_vec()).map_err(py_err)
    }
}

#[pymethods]
impl Tensor {
    /// A tensor of a float32 NumPy array's values (copied) on `device`.
    #[staticmethod]
    #[pyo3(signature = (array, device = None))]
    fn from_numpy(
        array: PyReadonlyArrayDyn<'_, f32>, device: Option<DeviceArg>,
    ) -> PyResult<Tensor> {
        let dev = resolve(device)?;
        Tensor::wrap(Inner::from_ndarray(&array.as_array(), &dev))
    }

    /// The values as a new float32 NumPy array of the same shape.
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let v = self.values(py)?;
        PyArray::from_vec(py, v).reshape(self.t().dims().to_vec())
    }

    /// The values as nested lists (a number for a 0-d tensor).
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.numpy(py)?.call_method0("tolist")
    }

    /// The sizes of the axes.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let size = py.import("convshade._results")?.getattr("Size")?;
        size.call1((PyTuple::new(py, self.t().dims())?,))
    }

    /// The sizes of the axes, or of axis `dim`.
    #[pyo3(signature = (dim = None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            None => self.shape(py),
            Some(d) => {
                let t = self.t();
                let a = crate::math::axis(d, t.rank())?;
                Ok(t.dims()[a].into_pyobject(py)?.into_any())
            }
        }
    }

    /// The number of axes.
    fn dim(&self) -> usize {
        self.t().rank()
    }

    #[getter]
    fn ndim(&self) -> usize {
        self.t().rank()
    }

    /// The number of elements.
    fn numel(&self) -> usize {
        self.t().elem_count()
    }

    fn __len__(&self) -> PyResult<usize> {
        match self.t().dims().first() {
            Some(&n) => Ok(n),
            None => Err(PyTypeError::new_err("len() of a 0-d tensor")),
        }
    }

    #[getter]
    fn device(&self) -> Device {
        Device { engine: self.t().device() }
    }

    /// Always `convshade.float32`: the one dtype.
    #[getter]
    fn dtype(&self) -> &'static str {
        "float32"
    }

    /// This tensor on `device` (the same object when it is already there).
    fn to(slf: PyRef<'_, Self>, device: DeviceArg) -> PyResult<Tensor> {
        let dev = device.resolve()?;
        let t = slf.t();
        if t.device() == dev {
            return Ok(Clone::clone(&*slf));
        }
        let py = slf.py();
        Tensor::wrap(py.detach(move || t.to_device(&dev)))
    }

    /// The value of a one-element tensor.
    fn item(&self, py: Python<'_>) -> PyResult<f64> {
        let t = self.t();
        if t.elem_count() != 1 {
            let msg =
                format!("a Tensor with {} elements cannot be converted to Scalar", t.elem_count());
            return Err(PyRuntimeError::new_err(msg));
        }
        py.detach(move || t.to_vec()).map(|v| f64::from(v[0])).map_err(py_err)
    }

    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        self.item(py)
    }

    fn __int__(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(self.item(py)? as i64)
    }

    fn __index__(&self, py: Python<'_>) -> PyResult<i64> {
        self.__int__(py)
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.item(py)? != 0.0)
    }

    fn __hash__(slf: PyRef<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }

    /// Makes this tensor a leaf that gradients flow to (or stops that); returns it.
    #[pyo3(signature = (requires_grad = true))]
    fn requires_grad_(slf: PyRef<'_, Self>, requires_grad: bool) -> PyRef<'_, Self> {
        {
            let mut s = lock(&slf.state);
            if requires_grad && !s.leaf {
                let t = s.t.clone();
                slf.set_leaf(&mut s, t);
            } else if !requires_grad && s.leaf {
                s.t = s.t.detach();
                s.leaf = false;
            }
        }
        slf
    }

    /// Whether gradients flow to or through this tensor.
    #[getter]
    fn requires_grad(&self) -> bool {
        !self.alias && lock(&self.state).t.requires_grad()
    }

    #[setter(requires_grad)]
    fn set_requires_grad(slf: PyRef<'_, Self>, value: bool) {
        Tensor::requires_grad_(slf, value);
    }

    /// True for tensors made by the user rather than by an op that records.
    #[getter]
    fn is_leaf(&self) -> bool {
        let s = lock(&self.state);
        s.leaf || !s.t.requires_grad()
    }

    /// The same values without history.
    fn detach(&self) -> Tensor {
        Tensor::new(self.t().detach())
    }

    /// The values without history; in-place changes to it change this tensor (`w.data[:] -=
    /// lr * w.grad`), and assigning replaces them, keeping the tensor a leaf.
    #[getter]
    fn get_data(&self) -> Tensor {
        Tensor { state: self.state.clone(), grad: self.grad.clone(), alias: true }
    }

    #[setter]
    fn set_data(&self, value: Tensor) {
        // read first: `value` may be this tensor's own `.data`
        let v = value.t().detach();
        let mut s = lock(&self.state);
        match s.leaf {
            true => self.set_leaf(&mut s, v),
            false => s.t = v,
        }
    }

    /// The gradient `backward` accumulated into this leaf, or None.
    #[getter]
    fn get_grad(&self) -> Option<Tensor> {
        match self.alias {
            true => None,
            false => lock(&self.grad).clone(),
        }
    }

    #[setter]
    fn set_grad(&self, value: Option<Tensor>) {
        *lock(&self.grad) = value;
    }

    /// Adds the gradients of this tensor (a scalar, or seeded with `gradient`) into the `.grad`
    /// of every leaf it depends on.
    #[pyo3(signature = (gradient = None))]
    fn backward(&self, py: Python<'_>, gradient: Option<Tensor>) -> PyResult<()> {
        let t = self.t();
        if !t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "element 0 of tensors does not require grad and does not have a grad_fn",
            ));
        }
        if gradient.is_none() && t.elem_count() != 1 {
            return Err(PyRuntimeError::new_err(
                "grad can be implicitly created only for scalar outputs",
            ));
        }
        let seed = gradient.map(|g| g.t());
        let leaves: Vec<(Inner, GradCell)> = lock(&LEAVES)
            .iter()
            .filter_map(|(t, cell)| Some((t.clone(), cell.upgrade()?)))
            .collect();
        py.detach(move || -> convshade::Result<()> {
            let grads = match seed {
                None => t.backward()?,
                Some(g) => t.backward_with(&g)?,
            };
            for (leaf, cell) in leaves {
                if let Some(g) = grads.get(&leaf) {
                    let mut slot = lock(&cell);
                    match &*slot {
                        // accumulated in place, as PyTorch: objects holding `.grad` see it
                        Some(old) => {
                            let sum = old.t().detach().add(g)?;
                            lock(&old.state).t = sum;
                        }
                        None => *slot = Some(Tensor::new(g.clone())),
                    }
                }
            }
            Ok(())
        })
        .map_err(py_err)
    }

    /// A PyTorch name the tensor lacks: `NotImplementedError` (an `AttributeError` too).
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let f = py.import("convshade._results")?.getattr("not_covered")?;
        Err(PyErr::from_value(f.call1(("Tensor", name))?))
    }

    /// Marks this tensor as made by `nn.Parameter` (for its printed form).
    fn _as_parameter(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        lock(&slf.state).param = true;
        slf
    }

    /// Sets every element to 0, in place; returns this tensor.
    fn zero_(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        Tensor::fill_(slf, 0.0)
    }

    /// Sets every element to `value`, in place; returns this tensor.
    fn fill_(slf: PyRef<'_, Self>, value: f64) -> PyResult<PyRef<'_, Self>> {
        let t = slf.t();
        let filled = Inner::full(t.dims().to_vec(), value as f32, &t.device()).map_err(py_err)?;
        slf.replace(filled)?;
        Ok(slf)
    }

    /// Copies `src`'s values (broadcast to this shape) into this tensor, in place.
    fn copy_(slf: PyRef<'_, Self>, src: Tensor) -> PyResult<PyRef<'_, Self>> {
        let t = slf.t();
        let v = src.t().to_device(&t.device()).and_then(|v| v.broadcast_to(t.dims().to_vec()));
        slf.replace(v.map_err(py_err)?)?;
        Ok(slf)
    }

    /// PyTorch's printed form, `tensor([[19., 25.], ...])`: NumPy's layout of the values.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let values = self.numpy(py)?;
        let body = py.import("convshade._results")?.getattr("values_repr")?.call1((values,))?;
        let param = lock(&self.state).param && !self.alias;
        let head = if param { "Parameter containing:\n" } else { "" };
        let mut out = format!("{head}tensor({}", body.extract::<String>()?);
        let t = self.t();
        if t.device().is_gpu() {
            out.push_str(", device='gpu'");
        }
        if lock(&self.state).leaf && !self.alias {
            out.push_str(", requires_grad=True");
        } else if t.requires_grad() && !self.alias {
            out.push_str(", grad_fn=<Backward>");
        }
        out.push(')');
        Ok(out)
    }

    /// A one-element tensor formats as its value (`f"{loss:.3f}"`); any other as its printed form.
    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        let shown = match self.t().elem_count() {
            1 => self.item(py)?.into_pyobject(py)?.into_any(),
            _ => self.__repr__(py)?.into_pyobject(py)?.into_any(),
        };
        py.import("builtins")?.call_method1("format", (shown, spec))?.extract()
    }

    /// This tensor (float32 is the one dtype; integer types are float32 here too).
    #[pyo3(name = "type", signature = (dtype = None))]
    fn type_<'py>(
        slf: PyRef<'py, Self>, dtype: Option<Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        if let Some(d) = dtype {
            let name = d.str()?.to_string();
            let known = ["float32", "float", "torch.float32", "convshade.float32"];
            if !known.contains(&name.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "type: dtype {name} is not supported; float32 is the one dtype"
                )));
            }
        }
        Ok(slf)
    }

    fn float(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// This tensor: class indices and counts are float32 holding whole numbers here.
    fn long(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// As `long`.
    fn int(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Copied with history (gradients flow back to this tensor).
    fn clone(&self) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(t.reshape(t.dims().to_vec()))
    }

    fn contiguous(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
}
