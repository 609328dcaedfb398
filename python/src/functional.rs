//! `torch.nn.functional`'s ops over the engine's (the Python wrappers in
//! py/convshade/nn/functional.py turn single ints into pairs and give the keyword names), and
//! the functions of several tensors: `cat`, `stack`, `save`, `load`.

use crate::device::{resolve, DeviceArg};
use crate::math::axis;
use crate::py_err;
use crate::tensor::Tensor;
use convshade::Tensor as Inner;
use pyo3::exceptions::{PyNotImplementedError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

type Pair = (usize, usize);

fn inner(ts: &[Tensor]) -> Vec<Inner> {
    ts.iter().map(Tensor::t).collect()
}

/// Runs `f` with the GIL released.
fn run(py: Python<'_>, f: impl FnOnce() -> convshade::Result<Inner> + Send) -> PyResult<Tensor> {
    Tensor::wrap(py.detach(f))
}

/// A convolution's padding: `(height, width)`, or `"same"` / `"valid"`.
#[derive(FromPyObject)]
pub(crate) enum PaddingArg {
    Pair(Pair),
    Name(String),
}

fn parse_padding_mode(m: &str) -> PyResult<convshade::PaddingMode> {
    use convshade::PaddingMode as M;
    Ok(match m {
        "zeros" => M::Zeros,
        "reflect" => M::Reflect,
        "replicate" => M::Replicate,
        "circular" => M::Circular,
        m => {
            return Err(PyValueError::new_err(format!(
                "padding_mode {m:?}; expected zeros, reflect, replicate or circular"
            )))
        }
    })
}

/// PyTorch's `F.conv2d`, with `padding_mode` as `nn.Conv2d` has it.
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, stride = (1, 1), padding = PaddingArg::Pair((0, 0)), dilation = (1, 1), groups = 1, padding_mode = "zeros", relu = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    py: Python<'_>, input: Tensor, weight: Tensor, bias: Option<Tensor>, stride: Pair,
    padding: PaddingArg, dilation: Pair, groups: usize, padding_mode: &str, relu: bool,
) -> PyResult<Tensor> {
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
        .groups(groups)
        .padding_mode(parse_padding_mode(padding_mode)?);
    let (x, w, b) = (input.t(), weight.t(), bias.map(|b| b.t()));
    // with `relu`, the ReLU runs in the convolution's output pass (nn.Sequential's fusion)
    match relu {
        true => run(py, move || convshade::conv2d_relu(&x, &w, b.as_ref(), &opts)),
        false => run(py, move || convshade::conv2d(&x, &w, b.as_ref(), &opts)),
    }
}

/// PyTorch's `F.conv_transpose2d`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, stride = (1, 1), padding = (0, 0), output_padding = (0, 0), groups = 1, dilation = (1, 1)))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose2d(
    py: Python<'_>, input: Tensor, weight: Tensor, bias: Option<Tensor>, stride: Pair,
    padding: Pair, output_padding: Pair, groups: usize, dilation: Pair,
) -> PyResult<Tensor> {
    let opts = convshade::ConvTranspose2dOptions::new()
        .stride(stride)
        .padding(padding)
        .output_padding(output_padding)
        .groups(groups)
        .dilation(dilation);
    let (x, w, b) = (input.t(), weight.t(), bias.map(|b| b.t()));
    run(py, move || convshade::conv_transpose2d(&x, &w, b.as_ref(), &opts))
}

/// PyTorch's `F.max_pool2d`; with `return_indices`, the pair (values, flat indices per plane).
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride = None, padding = (0, 0), dilation = (1, 1), ceil_mode = false, return_indices = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_pool2d(
    py: Python<'_>, input: Tensor, kernel_size: Pair, stride: Option<Pair>, padding: Pair,
    dilation: Pair, ceil_mode: bool, return_indices: bool,
) -> PyResult<Py<PyAny>> {
    let mut opts = convshade::MaxPool2dOptions::new(kernel_size)
        .padding(padding)
        .dilation(dilation)
        .ceil_mode(ceil_mode);
    if let Some(s) = stride {
        opts = opts.stride(s);
    }
    let x = input.t();
    if return_indices {
        let (v, i) =
            py.detach(move || convshade::max_pool2d_with_indices(&x, &opts)).map_err(py_err)?;
        return Ok((Tensor::new(v), Tensor::new(i)).into_pyobject(py)?.into_any().unbind());
    }
    Ok(run(py, move || convshade::max_pool2d(&x, &opts))?.into_pyobject(py)?.into_any().unbind())
}

/// PyTorch's `F.avg_pool2d`.
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride = None, padding = (0, 0), ceil_mode = false, count_include_pad = true, divisor_override = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn avg_pool2d(
    py: Python<'_>, input: Tensor, kernel_size: Pair, stride: Option<Pair>, padding: Pair,
    ceil_mode: bool, count_include_pad: bool, divisor_override: Option<usize>,
) -> PyResult<Tensor> {
    let mut opts = convshade::AvgPool2dOptions::new(kernel_size)
        .padding(padding)
        .ceil_mode(ceil_mode)
        .count_include_pad(count_include_pad);
    if let Some(s) = stride {
        opts = opts.stride(s);
    }
    if let Some(d) = divisor_override {
        opts = opts.divisor_override(d);
    }
    let x = input.t();
    run(py, move || convshade::avg_pool2d(&x, &opts))
}

#[pyfunction]
pub(crate) fn adaptive_avg_pool2d(
    py: Python<'_>, input: Tensor, output_size: Pair,
) -> PyResult<Tensor> {
    let x = input.t();
    run(py, move || convshade::adaptive_avg_pool2d(&x, output_size))
}

#[pyfunction]
pub(crate) fn adaptive_max_pool2d(
    py: Python<'_>, input: Tensor, output_size: Pair,
) -> PyResult<Tensor> {
    let x = input.t();
    run(py, move || convshade::adaptive_max_pool2d(&x, output_size))
}

/// PyTorch's `F.interpolate` on `(n, c, h, w)`: `nearest` or `bilinear`, by size or scale.
#[pyfunction]
#[pyo3(signature = (input, size = None, scale_factor = None, mode = "nearest", align_corners = None))]
pub(crate) fn interpolate(
    py: Python<'_>, input: Tensor, size: Option<Pair>, scale_factor: Option<(f64, f64)>,
    mode: &str, align_corners: Option<bool>,
) -> PyResult<Tensor> {
    use convshade::{UpsampleOptions, UpsampleSize};
    let size = match (size, scale_factor) {
        (Some((h, w)), None) => UpsampleSize::Size(h, w),
        (None, Some((h, w))) => UpsampleSize::Scale(h, w),
        _ => {
            return Err(PyValueError::new_err(
                "interpolate: give exactly one of size and scale_factor",
            ))
        }
    };
    let opts = match mode {
        "nearest" if align_corners.is_some() => {
            return Err(PyValueError::new_err(
                "interpolate: align_corners only has an effect for bilinear",
            ))
        }
        "nearest" => UpsampleOptions::nearest(size),
        "bilinear" => UpsampleOptions::bilinear(size, align_corners.unwrap_or(false)),
        m => {
            return Err(PyNotImplementedError::new_err(format!(
                "interpolate: mode {m:?} is not supported (nearest, bilinear)"
            )))
        }
    };
    let x = input.t();
    run(py, move || convshade::upsample(&x, &opts))
}

/// `x @ weight.T + bias`, PyTorch's `F.linear`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, relu = false))]
pub(crate) fn linear(
    py: Python<'_>, input: Tensor, weight: Tensor, bias: Option<Tensor>, relu: bool,
) -> PyResult<Tensor> {
    let (x, w, b) = (input.t(), weight.t(), bias.map(|b| b.t()));
    run(py, move || {
        // any leading axes, as PyTorch: (*, in) -> (*, out)
        let d = x.dims().to_vec();
        // with `relu`, the ReLU runs in the product's stores (nn.Sequential's fusion)
        let f = if relu { Inner::linear_relu } else { Inner::linear };
        let Some((&inner, lead)) = d.split_last() else { return f(&x, &w, b.as_ref()) };
        if d.len() == 2 {
            return f(&x, &w, b.as_ref());
        }
        let y = f(&x.reshape([lead.iter().product(), inner])?, &w, b.as_ref())?;
        let mut out = lead.to_vec();
        out.push(y.dims()[1]);
        y.reshape(out)
    })
}

/// PyTorch's `F.batch_norm` on `(n, c, h, w)`: in training, the running statistics (when
/// given) are updated in place.
#[pyfunction]
#[pyo3(signature = (input, running_mean, running_var, weight = None, bias = None, training = false, momentum = 0.1, eps = 1e-5, relu = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm(
    py: Python<'_>, input: Tensor, running_mean: Tensor, running_var: Tensor,
    weight: Option<Tensor>, bias: Option<Tensor>, training: bool, momentum: f32, eps: f32,
    relu: bool,
) -> PyResult<Tensor> {
    let opts = convshade::BatchNormOptions { training, momentum, eps };
    let (x, m, v) = (input.t(), running_mean.t(), running_var.t());
    let (w, b) = (weight.map(|w| w.t()), bias.map(|b| b.t()));
    let out = py
        .detach(move || match (x.rank(), relu) {
            (5, _) => crate::volume::batch_norm3d(&x, &m, &v, w.as_ref(), b.as_ref(), &opts),
            (_, true) => {
                convshade::batch_norm2d_relu(&x, &m, &v, w.as_ref(), b.as_ref(), &opts, None)
            }
            (_, false) => convshade::batch_norm2d(&x, &m, &v, w.as_ref(), b.as_ref(), &opts),
        })
        .map_err(py_err)?;
    if training {
        let _off = NoGrad::new();
        running_mean.replace(out.running_mean)?;
        running_var.replace(out.running_var)?;
    }
    match relu && out.output.rank() == 5 {
        true => Tensor::wrap(out.output.relu()),
        false => Ok(Tensor::new(out.output)),
    }
}

/// Recording off until dropped.
struct NoGrad(bool);

impl NoGrad {
    fn new() -> NoGrad {
        NoGrad(convshade::set_grad_enabled(false))
    }
}

impl Drop for NoGrad {
    fn drop(&mut self) {
        convshade::set_grad_enabled(self.0);
    }
}

/// A loss's `reduction`: `mean` or `sum`.
fn parse_reduction(op: &str, r: &str) -> PyResult<convshade::Reduction> {
    match r {
        "mean" => Ok(convshade::Reduction::Mean),
        "sum" => Ok(convshade::Reduction::Sum),
        r => Err(PyNotImplementedError::new_err(format!("{op}: reduction {r:?} (mean, sum)"))),
    }
}

/// PyTorch's `F.cross_entropy`: `target` holds class indices `(n,)` or probabilities `(n, c)`.
#[pyfunction]
#[pyo3(signature = (input, target, reduction = "mean", label_smoothing = 0.0))]
pub(crate) fn cross_entropy(
    py: Python<'_>, input: Tensor, target: Tensor, reduction: &str, label_smoothing: f32,
) -> PyResult<Tensor> {
    use convshade::{CrossEntropyOptions, Reduction};
    let reduction = parse_reduction("cross_entropy", reduction)?;
    let (x, y) = (input.t(), target.t());
    if x.dims() == y.dims() {
        if label_smoothing != 0.0 || reduction != Reduction::Mean {
            return Err(PyNotImplementedError::new_err(
                "cross_entropy: probability targets take the defaults only",
            ));
        }
        return run(py, move || convshade::cross_entropy(&x, &y));
    }
    let values = py.detach(|| y.to_vec()).map_err(py_err)?;
    let mut labels = Vec::with_capacity(values.len());
    for v in values {
        if v < 0.0 || v.fract() != 0.0 {
            return Err(PyValueError::new_err(format!(
                "cross_entropy: target {v} is not a class index"
            )));
        }
        labels.push(v as usize);
    }
    let opts = CrossEntropyOptions { label_smoothing, reduction };
    run(py, move || convshade::cross_entropy_labels(&x, &labels, opts))
}

/// PyTorch's `F.mse_loss`.
#[pyfunction]
#[pyo3(signature = (input, target, reduction = "mean"))]
pub(crate) fn mse_loss(
    py: Python<'_>, input: Tensor, target: Tensor, reduction: &str,
) -> PyResult<Tensor> {
    let reduction = parse_reduction("mse_loss", reduction)?;
    let (x, y) = (input.t(), target.t());
    run(py, move || convshade::mse_loss_with(&x, &y, reduction))
}

/// PyTorch's `F.pad`: widths for the last axis, or the last two.
#[pyfunction]
#[pyo3(signature = (input, pad, mode = "constant", value = 0.0))]
pub(crate) fn pad(
    py: Python<'_>, input: Tensor, pad: Vec<isize>, mode: &str, value: f32,
) -> PyResult<Tensor> {
    use convshade::PadMode;
    let mode = match mode {
        "constant" => PadMode::Constant(value),
        "reflect" => PadMode::Reflect,
        "replicate" => PadMode::Replicate,
        "circular" => PadMode::Circular,
        m => {
            return Err(PyValueError::new_err(format!(
                "pad: mode {m:?} (constant, reflect, replicate, circular)"
            )))
        }
    };
    let x = input.t();
    run(py, move || convshade::pad(&x, &pad, mode))
}

/// The tensors joined along `dim`.
#[pyfunction]
#[pyo3(signature = (tensors, dim = 0))]
pub(crate) fn cat(py: Python<'_>, tensors: Vec<Tensor>, dim: isize) -> PyResult<Tensor> {
    let ts = inner(&tensors);
    let rank = ts.first().map_or(1, Inner::rank);
    let a = axis(dim, rank)?;
    run(py, move || convshade::cat(&ts.iter().collect::<Vec<_>>(), a))
}

/// The tensors stacked along a new axis `dim`.
#[pyfunction]
#[pyo3(signature = (tensors, dim = 0))]
pub(crate) fn stack(py: Python<'_>, tensors: Vec<Tensor>, dim: isize) -> PyResult<Tensor> {
    let ts = inner(&tensors);
    let rank = ts.first().map_or(0, Inner::rank);
    let a = axis(dim, rank + 1)?;
    run(py, move || convshade::stack(&ts.iter().collect::<Vec<_>>(), a))
}

/// Writes named tensors (a state dict) to a safetensors file.
#[pyfunction]
pub(crate) fn save(
    py: Python<'_>, state: Vec<(String, Tensor)>, path: std::path::PathBuf,
) -> PyResult<()> {
    let named: Vec<(String, Inner)> = state.into_iter().map(|(k, t)| (k, t.t())).collect();
    py.detach(move || convshade::weights::save_safetensors(path, &named)).map_err(py_err)
}

/// Reads a safetensors file into a dict of tensors on `device`, in the file's order.
#[pyfunction]
#[pyo3(signature = (path, device = None))]
pub(crate) fn load<'py>(
    py: Python<'py>, path: std::path::PathBuf, device: Option<DeviceArg>,
) -> PyResult<Bound<'py, PyDict>> {
    let dev = resolve(device)?;
    let named =
        py.detach(move || convshade::weights::load_safetensors(path, &dev)).map_err(py_err)?;
    let out = PyDict::new(py);
    for (k, t) in named {
        out.set_item(k, Tensor::new(t))?;
    }
    Ok(out)
}
