//! convshade from Python: the extension module `convshade._convshade`, which the `convshade`
//! package (python/py/convshade) gives PyTorch's names. Engine errors become Python exceptions
//! carrying the engine's message; the GIL is released while the engine computes or waits for a
//! device.

mod device;
mod functional;
mod index;
mod math;
mod tensor;
mod volume;

use convshade::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;

pyo3::create_exception!(convshade, EngineError, PyRuntimeError, "An error the engine reported.");

/// An engine error as a Python exception: bad arguments are `ValueError`, the rest
/// `EngineError`, each with the engine's message (which names the op).
pub(crate) fn py_err(e: Error) -> PyErr {
    match e {
        Error::Invalid { .. } | Error::DeviceMismatch { .. } => {
            PyValueError::new_err(e.to_string())
        }
        e => EngineError::new_err(e.to_string()),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns graph recording on or off (`torch.set_grad_enabled`, `no_grad`); returns the previous
/// setting.
#[pyfunction]
fn set_grad_enabled(enabled: bool) -> bool {
    convshade::set_grad_enabled(enabled)
}

/// Whether ops record the graph.
#[pyfunction]
fn is_grad_enabled() -> bool {
    convshade::is_grad_enabled()
}

#[pymodule(name = "_convshade")]
mod extension {
    #[pymodule_export]
    use super::device::Device;
    #[pymodule_export]
    use super::functional::{
        adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm, cat, conv2d,
        conv_transpose2d, cross_entropy, interpolate, linear, load, max_pool2d, mse_loss, pad,
        save, stack,
    };
    #[pymodule_export]
    use super::tensor::Tensor;
    #[pymodule_export]
    use super::volume::{
        adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, conv3d, conv_transpose3d,
        interpolate3d, max_pool3d,
    };
    #[pymodule_export]
    use super::{is_grad_enabled, set_grad_enabled, EngineError};
}
