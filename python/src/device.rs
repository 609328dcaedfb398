//! `convshade.device`: where a tensor lives, `cpu` or `gpu` (any wgpu adapter), as PyTorch's
//! `torch.device`.

use crate::py_err;
use convshade::Device as Engine;
use pyo3::prelude::*;
use std::sync::Mutex;

/// A device: `device("cpu")`, `device("gpu")`; `device("auto")` picks a hardware adapter when
/// there is one, and `device()` follows `CONVSHADE_DEVICE`.
#[pyclass(name = "device", module = "convshade", frozen, from_py_object)]
#[derive(Clone)]
pub(crate) struct Device {
    pub(crate) engine: Engine,
}

#[pymethods]
impl Device {
    #[new]
    #[pyo3(signature = (name = None))]
    fn new(name: Option<&str>) -> PyResult<Device> {
        let engine = match name {
            None => Engine::from_env(),
            Some(n) => Engine::from_name(n),
        };
        engine.map(|engine| Device { engine }).map_err(py_err)
    }

    /// `cpu` or `gpu`.
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        match self.engine.is_gpu() {
            true => "gpu",
            false => "cpu",
        }
    }

    /// The adapter's name and backend, or `cpu`.
    #[getter]
    fn name(&self) -> String {
        self.engine.name()
    }

    fn __repr__(&self) -> String {
        format!("device(type='{}')", self.kind())
    }

    fn __str__(&self) -> &'static str {
        self.kind()
    }

    fn __eq__(&self, other: DeviceArg) -> bool {
        other.resolve().is_ok_and(|o| o == self.engine)
    }

    fn __hash__(&self) -> u64 {
        self.engine.is_gpu() as u64
    }
}

/// A device argument: a `device`, its name, or None for the default.
#[derive(FromPyObject)]
pub(crate) enum DeviceArg {
    Device(Device),
    Name(String),
}

impl DeviceArg {
    pub(crate) fn resolve(&self) -> PyResult<Engine> {
        match self {
            DeviceArg::Device(d) => Ok(d.engine.clone()),
            DeviceArg::Name(n) => Engine::from_name(n).map_err(py_err),
        }
    }
}

/// The device an optional argument names (None: `CONVSHADE_DEVICE`, else `auto`), the default
/// chosen once per value of the variable.
pub(crate) fn resolve(arg: Option<DeviceArg>) -> PyResult<Engine> {
    static DEFAULT: Mutex<Option<(Option<String>, Engine)>> = Mutex::new(None);
    if let Some(a) = arg {
        return a.resolve();
    }
    let var = std::env::var("CONVSHADE_DEVICE").ok();
    let mut cached = crate::lock(&DEFAULT);
    match &*cached {
        Some((v, e)) if *v == var => Ok(e.clone()),
        _ => {
            let e = Engine::from_env().map_err(py_err)?;
            *cached = Some((var, e.clone()));
            Ok(e)
        }
    }
}
