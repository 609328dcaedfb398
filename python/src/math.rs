//! Arithmetic, reductions, elementwise functions and shape ops on `Tensor`, with PyTorch's
//! names: numbers on either side, broadcasting, negative axes.

use crate::tensor::Tensor;
use convshade::Tensor as Inner;
use pyo3::exceptions::{PyIndexError, PyNotImplementedError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::PyTuple;

type R = convshade::Result<Inner>;

/// The other operand of an arithmetic operator: a tensor or a Python number.
#[derive(FromPyObject)]
pub(crate) enum Operand {
    Tensor(Tensor),
    Scalar(f64),
}

/// A negative axis counts from the end, as in PyTorch.
pub(crate) fn axis(d: isize, rank: usize) -> PyResult<usize> {
    let r = rank.max(1) as isize;
    match d {
        d if (0..r).contains(&d) => Ok(d as usize),
        d if (-r..0).contains(&d) => Ok((d + r) as usize),
        d => Err(PyIndexError::new_err(format!(
            "Dimension out of range (expected to be in range of [{}, {}], but got {d})",
            -r,
            r - 1
        ))),
    }
}

/// Shape arguments as `f(2, 3)` or `f((2, 3))`.
pub(crate) fn shape_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    if args.len() == 1 {
        if let Ok(v) = args.get_item(0)?.extract::<Vec<i64>>() {
            return Ok(v);
        }
    }
    args.extract()
}

/// `shape` with one -1 inferred from `count` elements.
fn infer(op: &str, shape: &[i64], count: usize) -> PyResult<Vec<usize>> {
    let known: i64 = shape.iter().filter(|&&d| d != -1).product();
    let holes = shape.iter().filter(|&&d| d == -1).count();
    let bad = || {
        PyValueError::new_err(format!("{op}: shape {shape:?} is invalid for input of size {count}"))
    };
    if holes > 1 || shape.iter().any(|&d| d < -1) {
        return Err(bad());
    }
    shape
        .iter()
        .map(|&d| match d {
            -1 if known > 0 && count as i64 % known == 0 => Ok(count / known as usize),
            -1 => Err(bad()),
            d => Ok(d as usize),
        })
        .collect()
}

/// Runs `f` with the GIL released when the op is large enough for that to pay (a release and
/// reacquire cost about a microsecond, a small op less).
pub(crate) fn released<T: Send>(elements: usize, f: impl FnOnce() -> T + Send) -> T {
    const LARGE: usize = 1 << 15;
    match elements >= LARGE {
        true => Python::attach(|py| py.detach(f)),
        false => f(),
    }
}

impl Tensor {
    fn binary(
        &self, other: Operand, op: fn(&Inner, &Inner) -> R, scalar: fn(&Inner, f32) -> R,
    ) -> PyResult<Tensor> {
        let t = self.t();
        let n = t.elem_count();
        Tensor::wrap(match other {
            Operand::Tensor(o) => {
                let o = o.t();
                released(n.max(o.elem_count()), || op(&t, &o))
            }
            Operand::Scalar(s) => released(n, || scalar(&t, s as f32)),
        })
    }

    /// `s op self` for a number on the left.
    fn reflected(&self, s: f64, op: fn(&Inner, &Inner) -> R) -> PyResult<Tensor> {
        let t = self.t();
        let left = Inner::full(Vec::<usize>::new(), s as f32, &t.device());
        Tensor::wrap(left.and_then(|l| op(&l, &t)))
    }

    fn map(&self, f: fn(&Inner) -> R) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(released(t.elem_count(), || f(&t)))
    }
}

fn pow(a: &Inner, b: &Inner) -> R {
    // a ** b = exp(b * log a), for tensors on both sides
    a.log()?.mul(b)?.exp()
}

fn abs(a: &Inner) -> R {
    // |x| with gradient sign(x), 0 at 0 as in PyTorch
    a.relu()?.add(&a.neg()?.relu()?)
}

#[pymethods]
impl Tensor {
    fn __add__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::add, Inner::add_scalar)
    }
    // Python calls the reflected forms only for a number on the left
    fn __radd__(&self, s: f64) -> PyResult<Tensor> {
        Tensor::wrap(self.t().add_scalar(s as f32))
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
        Tensor::wrap(self.t().mul_scalar(s as f32))
    }
    fn __truediv__(&self, o: Operand) -> PyResult<Tensor> {
        self.binary(o, Inner::div, Inner::div_scalar)
    }
    fn __rtruediv__(&self, s: f64) -> PyResult<Tensor> {
        self.reflected(s, Inner::div)
    }
    fn __pow__(&self, o: Operand, _modulo: Option<Py<PyAny>>) -> PyResult<Tensor> {
        self.binary(o, pow, Inner::powf)
    }
    fn __rpow__(&self, s: f64, _modulo: Option<Py<PyAny>>) -> PyResult<Tensor> {
        Tensor::wrap(self.t().mul_scalar((s as f32).ln()).and_then(|t| t.exp()))
    }
    fn __matmul__(&self, o: Tensor) -> PyResult<Tensor> {
        let (a, b) = (self.t(), o.t());
        Tensor::wrap(released(a.elem_count().max(b.elem_count()), || a.matmul(&b)))
    }
    fn __neg__(&self) -> PyResult<Tensor> {
        self.map(Inner::neg)
    }
    fn __pos__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __abs__(&self) -> PyResult<Tensor> {
        self.map(abs)
    }
    fn __iadd__(&self, o: Operand) -> PyResult<()> {
        let new = self.__add__(o)?.t();
        self.replace(new)
    }
    fn __isub__(&self, o: Operand) -> PyResult<()> {
        let new = self.__sub__(o)?.t();
        self.replace(new)
    }
    fn __imul__(&self, o: Operand) -> PyResult<()> {
        let new = self.__mul__(o)?.t();
        self.replace(new)
    }
    fn __itruediv__(&self, o: Operand) -> PyResult<()> {
        let new = self.__truediv__(o)?.t();
        self.replace(new)
    }

    /// `==` and `!=` give 1.0 where they hold and 0.0 elsewhere (float32 is the one dtype).
    fn __richcmp__(&self, o: Operand, op: CompareOp) -> PyResult<Tensor> {
        let eq = self.binary(o, Inner::eq, |t, s| {
            t.eq(&Inner::full(Vec::<usize>::new(), s, &t.device())?)
        })?;
        match op {
            CompareOp::Eq => Ok(eq),
            CompareOp::Ne => Tensor::wrap(eq.t().neg().and_then(|t| t.add_scalar(1.0))),
            _ => Err(PyNotImplementedError::new_err(
                "comparisons other than == and != are not supported",
            )),
        }
    }

    /// The sum over every element, or over axis `dim`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn sum(&self, dim: Option<isize>, keepdim: bool) -> PyResult<Tensor> {
        let t = self.t();
        let a = dim.map(|d| axis(d, t.rank())).transpose()?;
        Tensor::wrap(released(t.elem_count(), || match a {
            None => t.sum_all(),
            Some(a) => t.sum_axis(a, keepdim),
        }))
    }

    /// The mean over every element, or over axis `dim`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn mean(&self, dim: Option<isize>, keepdim: bool) -> PyResult<Tensor> {
        let t = self.t();
        let a = dim.map(|d| axis(d, t.rank())).transpose()?;
        Tensor::wrap(released(t.elem_count(), || match a {
            None => t.mean_all(),
            Some(a) => t.mean_axis(a, keepdim),
        }))
    }

    /// The largest element, or along `dim` the pair `(values, indices)`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn max<'py>(
        &self, py: Python<'py>, dim: Option<isize>, keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self.t();
        match dim {
            None => {
                let flat = t.reshape([t.elem_count()]).and_then(|f| f.max_axis(0, false));
                Ok(Tensor::wrap(flat)?.into_pyobject(py)?.into_any())
            }
            Some(d) => {
                let a = axis(d, t.rank())?;
                let values = Tensor::wrap(t.max_axis(a, keepdim))?;
                let indices = Tensor::wrap(t.argmax(a, keepdim))?;
                let pair = py.import("convshade._results")?.getattr("max")?;
                pair.call1((values, indices))
            }
        }
    }

    /// The smallest element, or along `dim` the pair `(values, indices)`.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn min<'py>(
        &self, py: Python<'py>, dim: Option<isize>, keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let neg = Tensor::wrap(self.t().neg())?;
        let m = neg.max(py, dim, keepdim)?;
        match dim {
            None => Ok(m.cast_into::<Tensor>()?.borrow().__neg__()?.into_pyobject(py)?.into_any()),
            Some(_) => {
                let values: Tensor = m.getattr("values")?.extract()?;
                let pair = py.import("convshade._results")?.getattr("min")?;
                pair.call1((values.__neg__()?, m.getattr("indices")?))
            }
        }
    }

    /// The index of the largest element (of the flattened tensor), or along `dim`, as float32.
    #[pyo3(signature = (dim = None, keepdim = false))]
    fn argmax(&self, dim: Option<isize>, keepdim: bool) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(match dim {
            None => t.reshape([t.elem_count()]).and_then(|f| f.argmax(0, false)),
            Some(d) => t.argmax(axis(d, t.rank())?, keepdim),
        })
    }

    fn abs(&self) -> PyResult<Tensor> {
        self.map(abs)
    }
    fn exp(&self) -> PyResult<Tensor> {
        self.map(Inner::exp)
    }
    fn log(&self) -> PyResult<Tensor> {
        self.map(Inner::log)
    }
    fn sqrt(&self) -> PyResult<Tensor> {
        self.map(Inner::sqrt)
    }
    fn relu(&self) -> PyResult<Tensor> {
        self.map(Inner::relu)
    }
    fn sigmoid(&self) -> PyResult<Tensor> {
        self.map(Inner::sigmoid)
    }
    fn tanh(&self) -> PyResult<Tensor> {
        self.map(Inner::tanh)
    }
    #[pyo3(signature = (negative_slope = 0.01))]
    fn leaky_relu(&self, negative_slope: f32) -> PyResult<Tensor> {
        Tensor::wrap(self.t().leaky_relu(negative_slope))
    }
    /// GELU, exact (`approximate="none"`) or with tanh's approximation.
    #[pyo3(signature = (approximate = "none"))]
    fn gelu(&self, approximate: &str) -> PyResult<Tensor> {
        match approximate {
            "none" => self.map(Inner::gelu),
            "tanh" => self.map(Inner::gelu_tanh),
            a => Err(PyValueError::new_err(format!(
                "gelu: approximate {a:?}; expected none or tanh"
            ))),
        }
    }
    fn silu(&self) -> PyResult<Tensor> {
        self.map(Inner::silu)
    }
    fn square(&self) -> PyResult<Tensor> {
        self.map(Inner::square)
    }
    fn pow(&self, o: Operand) -> PyResult<Tensor> {
        self.__pow__(o, None)
    }
    fn matmul(&self, o: Tensor) -> PyResult<Tensor> {
        self.__matmul__(o)
    }
    fn add(&self, o: Operand) -> PyResult<Tensor> {
        self.__add__(o)
    }
    fn sub(&self, o: Operand) -> PyResult<Tensor> {
        self.__sub__(o)
    }
    fn mul(&self, o: Operand) -> PyResult<Tensor> {
        self.__mul__(o)
    }
    fn div(&self, o: Operand) -> PyResult<Tensor> {
        self.__truediv__(o)
    }

    #[pyo3(signature = (dim))]
    fn softmax(&self, dim: isize) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(t.softmax(axis(dim, t.rank())?))
    }

    #[pyo3(signature = (dim))]
    fn log_softmax(&self, dim: isize) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(t.log_softmax(axis(dim, t.rank())?))
    }

    /// The same values in another shape; one axis may be -1, inferred from the others.
    #[pyo3(signature = (*shape))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>) -> PyResult<Tensor> {
        let t = self.t();
        let dims = infer("reshape", &shape_args(shape)?, t.elem_count())?;
        Tensor::wrap(t.reshape(dims))
    }

    /// As `reshape` (every tensor is contiguous here).
    #[pyo3(signature = (*shape))]
    fn view(&self, shape: &Bound<'_, PyTuple>) -> PyResult<Tensor> {
        let t = self.t();
        let dims = infer("view", &shape_args(shape)?, t.elem_count())?;
        Tensor::wrap(t.reshape(dims))
    }

    fn view_as(&self, other: Tensor) -> PyResult<Tensor> {
        Tensor::wrap(self.t().reshape(other.t().dims().to_vec()))
    }

    fn reshape_as(&self, other: Tensor) -> PyResult<Tensor> {
        self.view_as(other)
    }

    /// Axes reordered: output axis `i` is input axis `dims[i]`.
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> PyResult<Tensor> {
        let t = self.t();
        let perm = shape_args(dims)?
            .iter()
            .map(|&d| axis(d as isize, t.rank()))
            .collect::<PyResult<Vec<_>>>()?;
        Tensor::wrap(t.permute(&perm))
    }

    fn transpose(&self, dim0: isize, dim1: isize) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(t.transpose(axis(dim0, t.rank())?, axis(dim1, t.rank())?))
    }

    /// The transpose of a matrix (a 0-d or 1-d tensor unchanged).
    #[allow(non_snake_case)]
    #[getter]
    fn T(&self) -> PyResult<Tensor> {
        self.t_()
    }

    #[pyo3(name = "t")]
    fn t_(&self) -> PyResult<Tensor> {
        let t = self.t();
        match t.rank() {
            0 | 1 => Ok(Tensor::new(t)),
            _ => Tensor::wrap(t.transpose(0, 1)),
        }
    }

    /// Axes `start_dim..=end_dim` as one.
    #[pyo3(signature = (start_dim = 0, end_dim = -1))]
    fn flatten(&self, start_dim: isize, end_dim: isize) -> PyResult<Tensor> {
        let t = self.t();
        if t.rank() == 0 {
            return Tensor::wrap(t.reshape([1]));
        }
        let (s, e) = (axis(start_dim, t.rank())?, axis(end_dim, t.rank())?);
        if s > e {
            return Err(PyValueError::new_err("flatten: start_dim cannot come after end_dim"));
        }
        let d = t.dims();
        let mut dims = d[..s].to_vec();
        dims.push(d[s..=e].iter().product());
        dims.extend_from_slice(&d[e + 1..]);
        Tensor::wrap(t.reshape(dims))
    }

    fn unsqueeze(&self, dim: isize) -> PyResult<Tensor> {
        let t = self.t();
        Tensor::wrap(t.unsqueeze(axis(dim, t.rank() + 1)?))
    }

    /// Without axis `dim` if its size is 1; without every size-1 axis when `dim` is None.
    #[pyo3(signature = (dim = None))]
    fn squeeze(&self, dim: Option<isize>) -> PyResult<Tensor> {
        let t = self.t();
        match dim {
            Some(d) if t.rank() > 0 => Tensor::wrap(t.squeeze(axis(d, t.rank())?)),
            Some(_) => Ok(Tensor::new(t)),
            None => {
                let dims: Vec<usize> = t.dims().iter().copied().filter(|&n| n != 1).collect();
                Tensor::wrap(t.reshape(dims))
            }
        }
    }

    /// Size-1 axes repeated to `sizes` (-1 keeps an axis).
    #[pyo3(signature = (*sizes))]
    fn expand(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<Tensor> {
        let t = self.t();
        let want = shape_args(sizes)?;
        let lead = want.len().saturating_sub(t.rank());
        let dims = want
            .iter()
            .enumerate()
            .map(
                |(i, &d)| if d == -1 && i >= lead { t.dims()[i - lead] } else { d.max(0) as usize },
            )
            .collect::<Vec<_>>();
        Tensor::wrap(t.broadcast_to(dims))
    }

    fn expand_as(&self, other: Tensor) -> PyResult<Tensor> {
        Tensor::wrap(self.t().broadcast_to(other.t().dims().to_vec()))
    }
}
