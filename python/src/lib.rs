//! convshade from Python: the extension module `convshade._convshade`, which the `convshade`
//! package (python/py/convshade) gives PyTorch's names. Engine errors become Python exceptions
//! carrying the engine's message; the GIL is released while the engine waits for a device.

use convshade::{Device, Error, Tensor as Inner};
use numpy::prelude::*;
use numpy::{PyArray, PyArrayDyn, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Arc, Mutex, Weak};

pyo3::create_exception!(convshade, EngineError, PyRuntimeError, "An error the engine reported.");

/// An engine error as a Python exception: bad arguments are `ValueError`, the rest
/// `EngineError`, each with the engine's message (which names the op).
fn py_err(e: Error) -> PyErr {
    match e {
        Error::Invalid { .. } | Error::DeviceMismatch { .. } => {
            PyValueError::new_err(e.to_string())
        }
        e => EngineError::new_err(e.to_string()),
    }
}

fn device(name: &str) -> PyResult<Device> {
    Device::from_name(name).map_err(py_err)
}

/// Where a leaf's accumulated gradient lives: shared by the Python objects of one leaf.
type GradCell = Arc<Mutex<Option<Inner>>>;

/// A registered leaf: its tensor, and its gradient's cell while its Python object lives.
type Leaf = (Inner, Weak<Mutex<Option<Inner>>>);

/// Every leaf that requires a gradient and whose Python object is alive: `backward` adds each
/// one's gradient into its cell, as PyTorch fills `.grad`.
static LEAVES: Mutex<Vec<Leaf>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A float32 tensor on a device.
#[pyclass(name = "Tensor", module = "convshade._convshade", from_py_object)]
#[derive(Clone)]
struct Tensor {
    t: Inner,
    /// A leaf that requires a gradient (`requires_grad_`), and its gradient's cell.
    leaf: bool,
    grad: GradCell,
}

/// The other operand of an arithmetic operator: a tensor or a Python number.
#[derive(FromPyObject)]
enum Operand {
    Tensor(Tensor),
    Scalar(f64),
}

impl Tensor {
    fn new(t: Inner) -> Tensor {
        Tensor { t, leaf: false, grad: GradCell::default() }
    }

    fn wrap(t: convshade::Result<Inner>) -> PyResult<Tensor> {
        t.map(Tensor::new).map_err(py_err)
    }

    /// Makes `t` this object's value as a leaf that requires a gradient, keeping its gradient.
    fn set_leaf(&mut self, t: Inner) {
        self.t = t.requires_grad_();
        self.leaf = true;
        let mut leaves = lock(&LEAVES);
        leaves.retain(|(_, cell)| cell.strong_count() > 0);
        leaves.push((self.t.clone(), Arc::downgrade(&self.grad)));
    }

    /// `op(self, other)` for a tensor, `scalar(self, s)` for a number.
    fn binary(
        &self, other: Operand, op: fn(&Inner, &Inner) -> convshade::Result<Inner>,
        scalar: fn(&Inner, f32) -> convshade::Result<Inner>,
    ) -> PyResult<Tensor> {
        Tensor::wrap(match other {
            Operand::Tensor(o) => op(&self.t, &o.t),
            Operand::Scalar(s) => scalar(&self.t, s as f32),
        })
    }

    /// `s op self` for a number on the left, as an elementwise op on a filled tensor.
    fn reflected(
        &self, s: f64, op: fn(&Inner, &Inner) -> convshade::Result<Inner>,
    ) -> PyResult<Tensor> {
        let left = Inner::full(self.t.dims().to_vec(), s as f32, &self.t.device());
        Tensor::wrap(left.and_then(|l| op(&l, &self.t)))
    }

    fn values(&self, py: Python<'_>) -> PyResult<Vec<f32>> {
        let t = self.t.clone();
        py.detach(move || t.to_vec()).map_err(py_err)
    }
}

#[pymethods]
impl Tensor {
    /// A tensor of a float32 NumPy array's values (copied) on device `device` (`cpu`, `gpu`,
    /// `auto`).
    #[staticmethod]
    #[pyo3(signature = (array, device = "auto"))]
    fn from_numpy(array: PyReadonlyArrayDyn<'_, f32>, device: &str) -> PyResult<Tensor> {
        let dev = self::device(device)?;
        Tensor::wrap(Inner::from_ndarray(&array.as_array(), &dev))
    }

    /// The values as a new float32 NumPy array of the same shape.
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let v = self.values(py)?;
        PyArray::from_vec(py, v).reshape(self.t.dims().to_vec())
    }

    /// The sizes of the axes.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.t.dims().to_vec()
    }

    /// `cpu`, or `gpu (adapter, backend)`.
    #[getter]
    fn device(&self) -> String {
        self.t.device().name()
    }

    /// The value of a one-element tensor.
    fn item(&self, py: Python<'_>) -> PyResult<f64> {
        let t = self.t.clone();
        py.detach(move || t.to_scalar()).map(f64::from).map_err(py_err)
    }

    fn __add__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::add, Inner::add_scalar)
    }
    // Python calls the reflected forms only for a number on the left
    fn __radd__(&self, s: f64) -> PyResult<Tensor> {
        Tensor::wrap(self.t.add_scalar(s as f32))
    }
    fn __sub__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::sub, Inner::sub_scalar)
    }
    fn __rsub__(&self, s: f64) -> PyResult<Tensor> {
        self.reflected(s, Inner::sub)
    }
    fn __mul__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::mul, Inner::mul_scalar)
    }
    fn __rmul__(&self, s: f64) -> PyResult<Tensor> {
        Tensor::wrap(self.t.mul_scalar(s as f32))
    }
    fn __truediv__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::div, Inner::div_scalar)
    }
    fn __rtruediv__(&self, s: f64) -> PyResult<Tensor> {
        self.reflected(s, Inner::div)
    }
    fn __matmul__(&self, o: Tensor) -> PyResult<Tensor> {
        Tensor::wrap(self.t.matmul(&o.t))
    }
    fn __neg__(&self) -> PyResult<Tensor> {
        Tensor::wrap(self.t.neg())
    }

    /// The sum over every element, or over axis `dim`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn sum(&self, dim: Option<usize>, keepdim: bool) -> PyResult<Tensor> {
        Tensor::wrap(match dim {
            None => self.t.sum_all(),
            Some(d) => self.t.sum_axis(d, keepdim),
        })
    }

    /// The mean over every element, or over axis `dim`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn mean(&self, dim: Option<usize>, keepdim: bool) -> PyResult<Tensor> {
        Tensor::wrap(match dim {
            None => self.t.mean_all(),
            Some(d) => self.t.mean_axis(d, keepdim),
        })
    }

    fn relu(&self) -> PyResult<Tensor> {
        Tensor::wrap(self.t.relu())
    }

    /// The same values in another shape; one axis may be -1, inferred from the others.
    fn reshape(&self, shape: Vec<i64>) -> PyResult<Tensor> {
        let known: i64 = shape.iter().filter(|&&d| d != -1).product();
        let count = self.t.elem_count() as i64;
        let mut dims = Vec::with_capacity(shape.len());
        for &d in &shape {
            dims.push(match d {
                -1 if known > 0 && count % known == 0 => (count / known) as usize,
                d if d >= 0 => d as usize,
                _ => {
                    let msg = format!("reshape: shape {shape:?} is invalid for {count} elements");
                    return Err(PyValueError::new_err(msg));
                }
            });
        }
        Tensor::wrap(self.t.reshape(dims))
    }

    /// Makes this tensor a leaf that gradients flow to; returns it.
    fn requires_grad_(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        if !slf.leaf {
            let t = slf.t.clone();
            slf.set_leaf(t);
        }
        slf
    }

    #[getter]
    fn requires_grad(&self) -> bool {
        self.leaf
    }

    /// The same values without autograd history.
    fn detach(&self) -> Tensor {
        Tensor::new(self.t.detach())
    }

    /// The values without history (as `detach`); assigning replaces them, keeping the tensor a
    /// leaf with its gradient (`w.data = w.data - lr * w.grad`).
    #[getter]
    fn get_data(&self) -> Tensor {
        self.detach()
    }

    #[setter]
    fn set_data(&mut self, value: Tensor) {
        match self.leaf {
            true => self.set_leaf(value.t.detach()),
            false => self.t = value.t.detach(),
        }
    }

    /// The gradient `backward` accumulated into this leaf, or None.
    #[getter]
    fn get_grad(&self) -> Option<Tensor> {
        lock(&self.grad).clone().map(Tensor::new)
    }

    #[setter]
    fn set_grad(&mut self, value: Option<Tensor>) {
        *lock(&self.grad) = value.map(|v| v.t);
    }

    /// Adds the gradients of this tensor (a scalar, or seeded with `gradient`) into the `.grad`
    /// of every leaf it depends on.
    #[pyo3(signature = (gradient = None))]
    fn backward(&self, py: Python<'_>, gradient: Option<Tensor>) -> PyResult<()> {
        let t = self.t.clone();
        let grads = py
            .detach(move || match gradient {
                None => t.backward(),
                Some(g) => t.backward_with(&g.t),
            })
            .map_err(py_err)?;
        let leaves: Vec<(Inner, GradCell)> = lock(&LEAVES)
            .iter()
            .filter_map(|(t, cell)| Some((t.clone(), cell.upgrade()?)))
            .collect();
        for (leaf, cell) in leaves {
            if let Some(g) = grads.get(&leaf) {
                let mut slot = lock(&cell);
                *slot = Some(match slot.take() {
                    Some(old) => old.add(g).map_err(py_err)?,
                    None => g.clone(),
                });
            }
        }
        Ok(())
    }

    /// PyTorch's printed form, `tensor([[19., 25.], ...])`: NumPy's layout of the values.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("separator", ", ")?;
        kwargs.set_item("prefix", "tensor(")?;
        let body =
            py.import("numpy")?.call_method("array2string", (self.numpy(py)?,), Some(&kwargs))?;
        Ok(format!("tensor({})", body.extract::<String>()?))
    }

    /// A one-element tensor formats as its value (`f"{loss:.3f}"`); any other as its printed form.
    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        let shown = match self.t.elem_count() {
            1 => self.item(py)?.into_pyobject(py)?.into_any(),
            _ => self.__repr__(py)?.into_pyobject(py)?.into_any(),
        };
        py.import("builtins")?.call_method1("format", (shown, spec))?.extract()
    }
}

/// A convolution's padding: `(height, width)`, or `"same"` / `"valid"`.
#[derive(FromPyObject)]
enum PaddingArg {
    Pair((usize, usize)),
    Name(String),
}

/// PyTorch's `F.conv2d` (its Python wrapper turns single ints into pairs).
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, stride = (1, 1), padding = PaddingArg::Pair((0, 0)), dilation = (1, 1), groups = 1))]
fn conv2d(
    input: PyRef<'_, Tensor>, weight: Tensor, bias: Option<Tensor>, stride: (usize, usize),
    padding: PaddingArg, dilation: (usize, usize), groups: usize,
) -> PyResult<Tensor> {
    let (py, x) = (input.py(), input.t.clone());
    let padding = match padding {
        PaddingArg::Pair(p) => convshade::Padding::from(p),
        PaddingArg::Name(n) if n == "same" => convshade::Padding::Same,
        PaddingArg::Name(n) if n == "valid" => convshade::Padding::Valid,
        PaddingArg::Name(n) => {
            let msg = format!("conv2d: padding {n:?}; expected \"same\", \"valid\" or sizes");
            return Err(PyValueError::new_err(msg));
        }
    };
    let opts = convshade::Conv2dOptions::new()
        .stride(stride)
        .padding(padding)
        .dilation(dilation)
        .groups(groups);
    let bias = bias.map(|b| b.t);
    Tensor::wrap(py.detach(move || convshade::conv2d(&x, &weight.t, bias.as_ref(), &opts)))
}

#[pymodule(name = "_convshade")]
mod extension {
    #[pymodule_export]
    use super::{conv2d, EngineError, Tensor};
}
