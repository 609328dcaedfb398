//! `torch.nn.functional`'s volume ops `(n, c, d, h, w)` over the engine's (the Python wrappers
//! turn single ints into triples).

use crate::tensor::Tensor;
use convshade::Tensor as Inner;
use convshade::{Padding3d, PaddingMode, Triple, Upsample3dMode, Upsample3dSize};
use pyo3::exceptions::{PyNotImplementedError, PyValueError};
use pyo3::prelude::*;

fn run(py: Python<'_>, f: impl FnOnce() -> convshade::Result<Inner> + Send) -> PyResult<Tensor> {
    Tensor::wrap(py.detach(f))
}

/// A 3-d convolution's padding: `(d, h, w)`, or `"same"` / `"valid"`.
#[derive(FromPyObject)]
pub(crate) enum Padding3Arg {
    Triple(Triple),
    Name(String),
}

fn parse_padding_mode(m: &str) -> PyResult<PaddingMode> {
    Ok(match m {
        "zeros" => PaddingMode::Zeros,
        "reflect" => PaddingMode::Reflect,
        "replicate" => PaddingMode::Replicate,
        "circular" => PaddingMode::Circular,
        m => {
            return Err(PyValueError::new_err(format!(
                "padding_mode {m:?}; expected zeros, reflect, replicate or circular"
            )))
        }
    })
}

/// PyTorch's `F.conv3d`, with `padding_mode` as `nn.Conv3d` has it.
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, stride = (1, 1, 1), padding = Padding3Arg::Triple((0, 0, 0)), dilation = (1, 1, 1), groups = 1, padding_mode = "zeros"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv3d(
    py: Python<'_>, input: Tensor, weight: Tensor, bias: Option<Tensor>, stride: Triple,
    padding: Padding3Arg, dilation: Triple, groups: usize, padding_mode: &str,
) -> PyResult<Tensor> {
    let padding = match padding {
        Padding3Arg::Triple(t) => Padding3d::Explicit(t),
        Padding3Arg::Name(n) if n == "same" => Padding3d::Same,
        Padding3Arg::Name(n) if n == "valid" => Padding3d::Valid,
        Padding3Arg::Name(n) => {
            return Err(PyValueError::new_err(format!(
                "conv3d: padding {n:?}; expected \"same\", \"valid\" or sizes"
            )))
        }
    };
    let opts = convshade::Conv3dOptions {
        stride,
        padding,
        dilation,
        groups,
        padding_mode: parse_padding_mode(padding_mode)?,
    };
    let (x, w, b) = (input.t(), weight.t(), bias.map(|b| b.t()));
    run(py, move || convshade::conv3d(&x, &w, b.as_ref(), &opts))
}

/// PyTorch's `F.conv_transpose3d`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias = None, stride = (1, 1, 1), padding = (0, 0, 0), output_padding = (0, 0, 0), groups = 1, dilation = (1, 1, 1)))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose3d(
    py: Python<'_>, input: Tensor, weight: Tensor, bias: Option<Tensor>, stride: Triple,
    padding: Triple, output_padding: Triple, groups: usize, dilation: Triple,
) -> PyResult<Tensor> {
    let opts =
        convshade::ConvTranspose3dOptions { stride, padding, output_padding, dilation, groups };
    let (x, w, b) = (input.t(), weight.t(), bias.map(|b| b.t()));
    run(py, move || convshade::conv_transpose3d(&x, &w, b.as_ref(), &opts))
}

/// PyTorch's `F.max_pool3d`; with `return_indices`, the pair (values, flat indices per volume).
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride = None, padding = (0, 0, 0), dilation = (1, 1, 1), ceil_mode = false, return_indices = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_pool3d(
    py: Python<'_>, input: Tensor, kernel_size: Triple, stride: Option<Triple>, padding: Triple,
    dilation: Triple, ceil_mode: bool, return_indices: bool,
) -> PyResult<Py<PyAny>> {
    let o =
        convshade::MaxPool3dOptions { kernel: kernel_size, stride, padding, dilation, ceil_mode };
    let x = input.t();
    if return_indices {
        let (v, i) =
            py.detach(move || convshade::max_pool3d_with_indices(&x, &o)).map_err(crate::py_err)?;
        return Ok((Tensor::new(v), Tensor::new(i)).into_pyobject(py)?.into_any().unbind());
    }
    Ok(run(py, move || convshade::max_pool3d(&x, &o))?.into_pyobject(py)?.into_any().unbind())
}

/// PyTorch's `F.avg_pool3d`.
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride = None, padding = (0, 0, 0), ceil_mode = false, count_include_pad = true, divisor_override = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn avg_pool3d(
    py: Python<'_>, input: Tensor, kernel_size: Triple, stride: Option<Triple>, padding: Triple,
    ceil_mode: bool, count_include_pad: bool, divisor_override: Option<usize>,
) -> PyResult<Tensor> {
    let o = convshade::AvgPool3dOptions {
        kernel: kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    };
    let x = input.t();
    run(py, move || convshade::avg_pool3d(&x, &o))
}

#[pyfunction]
pub(crate) fn adaptive_avg_pool3d(
    py: Python<'_>, input: Tensor, output_size: Triple,
) -> PyResult<Tensor> {
    let x = input.t();
    run(py, move || convshade::adaptive_avg_pool3d(&x, output_size))
}

#[pyfunction]
pub(crate) fn adaptive_max_pool3d(
    py: Python<'_>, input: Tensor, output_size: Triple,
) -> PyResult<Tensor> {
    let x = input.t();
    run(py, move || convshade::adaptive_max_pool3d(&x, output_size))
}

/// PyTorch's `F.interpolate` on `(n, c, d, h, w)`: `nearest` or `trilinear`.
#[pyfunction]
#[pyo3(signature = (input, size = None, scale_factor = None, mode = "nearest", align_corners = None))]
pub(crate) fn interpolate3d(
    py: Python<'_>, input: Tensor, size: Option<Triple>, scale_factor: Option<(f64, f64, f64)>,
    mode: &str, align_corners: Option<bool>,
) -> PyResult<Tensor> {
    let size = match (size, scale_factor) {
        (Some((d, h, w)), None) => Upsample3dSize::Size(d, h, w),
        (None, Some((d, h, w))) => Upsample3dSize::Scale(d, h, w),
        _ => {
            return Err(PyValueError::new_err(
                "interpolate: give exactly one of size and scale_factor",
            ))
        }
    };
    let mode = match mode {
        "nearest" if align_corners.is_some() => {
            return Err(PyValueError::new_err(
                "interpolate: align_corners only has an effect for trilinear",
            ))
        }
        "nearest" => Upsample3dMode::Nearest,
        "trilinear" => Upsample3dMode::Trilinear { align_corners: align_corners.unwrap_or(false) },
        m => {
            return Err(PyNotImplementedError::new_err(format!(
                "interpolate: mode {m:?} on volumes is not supported (nearest, trilinear)"
            )))
        }
    };
    let x = input.t();
    run(py, move || convshade::upsample3d(&x, mode, size))
}

/// The 5-d form of `F.batch_norm`: `batch_norm3d`.
pub(crate) fn batch_norm3d(
    x: &Inner, m: &Inner, v: &Inner, w: Option<&Inner>, b: Option<&Inner>,
    opts: &convshade::BatchNormOptions,
) -> convshade::Result<convshade::BatchNormOutput> {
    convshade::batch_norm3d(x, m, v, w, b, opts)
}
