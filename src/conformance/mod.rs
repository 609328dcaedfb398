//! Runs `convshade-cases/1` directories: ops, inputs and PyTorch's outputs and gradients (format
//! in docs/CONFORMANCE.md), on any device.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use serde::Deserialize;
use serde_json::Value;

use crate::{Device, Error, Result, Tensor};
use ops::{op_signature, run_op};

mod ops;
mod volume;

/// The format string every manifest must carry.
pub const FORMAT: &str = "convshade-cases/1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    cases: Vec<CaseSpec>,
}

/// One case of a manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The case's name, unique in the manifest.
    pub name: String,
    /// The op to run (a name from docs/CONFORMANCE.md).
    pub op: String,
    /// The op's attributes by name (`stride`, `padding`, ...).
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
    /// Input arrays: the op's input name to an NPY file, relative to the suite directory.
    pub inputs: BTreeMap<String, String>,
    /// Expected output arrays: output name (`output`, ...) to an NPY file.
    pub expected: BTreeMap<String, String>,
    /// The NPY file of the upstream gradient; without it only the forward is checked.
    #[serde(default)]
    pub grad_output: Option<String>,
    /// Expected gradients: input name to an NPY file.
    #[serde(default)]
    pub expected_grads: BTreeMap<String, String>,
    /// How close each array must be.
    #[serde(default)]
    pub tolerance: Tolerance,
}

/// `max |got - expected| <= atol + rtol * max |expected|`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Relative tolerance, scaled by `max |expected|`.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { rtol: 1e-4, atol: 1e-5 }
    }
}

/// A loaded suite: the directory and its cases.
#[derive(Debug)]
pub struct Suite {
    /// The suite's directory, which array paths are relative to.
    pub dir: PathBuf,
    /// The manifest's cases, in order.
    pub cases: Vec<CaseSpec>,
}

/// The result of one case on one device.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// The device's name ([`Device::name`]).
    pub device: String,
    /// Whether every compared array was within the tolerance.
    pub passed: bool,
    /// Largest `|got - expected|` over every compared array (NaN if nothing was compared).
    pub max_error: f32,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

impl std::fmt::Display for CaseOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{status} {} [{}] max error {:.3e}", self.name, self.device, self.max_error)?;
        if !self.passed {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Reads and checks `DIR/manifest.json`. Arrays are read when a case runs.
pub fn load_suite(dir: impl AsRef<Path>) -> Result<Suite> {
    let dir = dir.as_ref().to_path_buf();
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Io { path: path.display().to_string(), msg: e.to_string() })?;
    let cases = parse_manifest(&text, &path.display().to_string())?;
    Ok(Suite { dir, cases })
}

/// The cases of a manifest's text (`name` names it in errors), checked as [`load_suite`] does.
pub fn parse_manifest(text: &str, name: &str) -> Result<Vec<CaseSpec>> {
    let m: Manifest = serde_json::from_str(text)
        .map_err(|e| Error::Format { path: name.to_string(), msg: e.to_string() })?;
    if m.format != FORMAT {
        return Err(Error::Format {
            path: name.to_string(),
            msg: format!("format is {:?}, expected {FORMAT:?}", m.format),
        });
    }
    Ok(m.cases)
}

/// Where a suite's arrays come from, by their paths in the manifest: its directory, or the
/// files already in memory (a web page fetches them, [`InMemory`]).
pub trait Arrays {
    /// The float32 array of NPY file `file`.
    fn array(&self, file: &str) -> Result<ArrayD<f32>>;
}

impl Arrays for Path {
    fn array(&self, file: &str) -> Result<ArrayD<f32>> {
        read_npy(self.join(file))
    }
}

/// A case's NPY files in memory, by their paths in the manifest.
#[derive(Debug, Default)]
pub struct InMemory(pub BTreeMap<String, Vec<u8>>);

impl Arrays for InMemory {
    fn array(&self, file: &str) -> Result<ArrayD<f32>> {
        let bytes = self.0.get(file).ok_or_else(|| Error::Io {
            path: file.to_string(),
            msg: "not among the case's files".into(),
        })?;
        crate::io::parse_npy(bytes, file)
    }
}

impl CaseSpec {
    /// Every NPY file the case reads, as the manifest names them.
    pub fn files(&self) -> Vec<&str> {
        let named = self.inputs.values().chain(self.expected.values());
        let grads = self.grad_output.iter().chain(self.expected_grads.values());
        named.chain(grads).map(String::as_str).collect()
    }
}

pub use crate::io::read_npy;

/// Runs every case on every device, in order; `on_result` sees each outcome as it comes.
pub fn run_suite(
    suite: &Suite, devices: &[Device], mut on_result: impl FnMut(&CaseOutcome),
) -> Vec<CaseOutcome> {
    let mut out = Vec::new();
    for case in &suite.cases {
        for dev in devices {
            let r = run_case(&suite.dir, case, dev);
            on_result(&r);
            out.push(r);
        }
    }
    out
}

/// Runs one case on one device. Every problem, from a missing file to an unknown attr, is a
/// failed outcome with its reason.
pub fn run_case(dir: &Path, case: &CaseSpec, device: &Device) -> CaseOutcome {
    match device {
        // nothing waits for a device there (a web page's CPU backend included)
        Device::Cpu => pollster::block_on(run_case_async(dir, case, device)),
        Device::Gpu(_) => {
            let run = async { Ok(run_case_async(dir, case, device).await) };
            crate::gpu::runtime::block_on("run_case", run).unwrap_or_else(|e| CaseOutcome {
                name: case.name.clone(),
                device: device.name(),
                passed: false,
                max_error: f32::NAN,
                reason: e.to_string(),
            })
        }
    }
}

/// [`run_case`] as a future over any source of arrays, which a web page awaits (its results are
/// read back without blocking).
pub async fn run_case_async(
    arrays: &(impl Arrays + ?Sized), case: &CaseSpec, device: &Device,
) -> CaseOutcome {
    let mut max_error = f32::NAN;
    let result = check_case(arrays, case, device, &mut max_error).await;
    CaseOutcome {
        name: case.name.clone(),
        device: device.name(),
        passed: result.is_ok(),
        max_error,
        reason: result.err().map(|e| e.to_string()).unwrap_or_default(),
    }
}

fn invalid(name: &str, msg: impl Into<String>) -> Error {
    Error::Format { path: name.to_string(), msg: msg.into() }
}

async fn check_case(
    arrays: &(impl Arrays + ?Sized), case: &CaseSpec, device: &Device, max_error: &mut f32,
) -> Result<()> {
    let name = case.name.as_str();
    check_signature(case)?;
    let inputs = load_inputs(arrays, case, device)?;
    let outputs = run_op(case, &inputs)?;
    let output = &outputs["output"];
    let mut compared = 0;
    for (key, file) in &case.expected {
        let got = outputs
            .get(key)
            .ok_or_else(|| invalid(name, format!("unknown expected array {key:?}")))?;
        compared += 1;
        compare_array(arrays, case, key, got, file, max_error).await?;
    }
    if let Some(go) = &case.grad_output {
        let go = Tensor::from_ndarray(&arrays.array(go)?, device)?;
        if go.shape() != output.shape() {
            let (gs, os) = (go.shape(), output.shape());
            let msg = format!("grad_output shape {gs} differs from output {os}");
            return Err(invalid(name, msg));
        }
        let grads = output.mul(&go)?.sum_all()?.backward()?;
        for (key, file) in &case.expected_grads {
            let t = inputs.get(key).ok_or_else(|| {
                invalid(name, format!("expected gradient of unknown input {key:?}"))
            })?;
            let g = grads
                .get(t)
                .ok_or_else(|| invalid(name, format!("no gradient reached input {key:?}")))?;
            compared += 1;
            compare_array(arrays, case, &format!("grad of {key}"), g, file, max_error).await?;
        }
    } else if !case.expected_grads.is_empty() {
        return Err(invalid(name, "expected_grads given without grad_output"));
    }
    if compared == 0 {
        return Err(invalid(name, "the case compares nothing"));
    }
    Ok(())
}

/// The case's op is known and its inputs and attrs are the op's.
fn check_signature(case: &CaseSpec) -> Result<()> {
    let name = case.name.as_str();
    let (required, optional, attr_names) =
        op_signature(&case.op).ok_or_else(|| invalid(name, format!("unknown op {:?}", case.op)))?;
    for key in case.attrs.keys() {
        if !attr_names.contains(&key.as_str()) {
            return Err(invalid(name, format!("unknown attr {key:?} for op {}", case.op)));
        }
    }
    for key in case.inputs.keys() {
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            return Err(invalid(name, format!("unknown input {key:?} for op {}", case.op)));
        }
    }
    for key in required {
        if !case.inputs.contains_key(*key) {
            return Err(invalid(name, format!("op {} needs input {key:?}", case.op)));
        }
    }
    Ok(())
}

/// Every input array of the case on `device`, each requiring a gradient.
fn load_inputs(
    arrays: &(impl Arrays + ?Sized), case: &CaseSpec, device: &Device,
) -> Result<BTreeMap<String, Tensor>> {
    let mut inputs: BTreeMap<String, Tensor> = BTreeMap::new();
    for (key, file) in &case.inputs {
        let a = arrays.array(file)?;
        // class indices are read on the host: kept there, nothing waits for the device
        let dev = match (case.op.as_str(), key.as_str()) {
            ("cross_entropy", "target") => &Device::Cpu,
            _ => device,
        };
        inputs.insert(key.clone(), Tensor::from_ndarray(&a, dev)?.requires_grad_());
    }
    Ok(inputs)
}

/// Compares `got` with the expected array in `file` within the case's tolerance, and records
/// the largest error.
async fn compare_array(
    arrays: &(impl Arrays + ?Sized), case: &CaseSpec, what: &str, got: &Tensor, file: &str,
    max_error: &mut f32,
) -> Result<()> {
    let name = case.name.as_str();
    let want = arrays.array(file)?;
    if got.dims() != want.shape() {
        let (gs, ws) = (got.shape(), want.shape());
        return Err(invalid(name, format!("{what}: shape {gs} but expected {ws:?}")));
    }
    let g = got.to_vec_async().await?;
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut err = 0f32;
    for (a, b) in g.iter().zip(want.iter()) {
        // equal values, infinities and NaN where NaN is expected included, match exactly
        let d = if a == b || a.is_nan() && b.is_nan() { 0.0 } else { (a - b).abs() };
        err = if d.is_nan() { f32::NAN } else { err.max(d) };
        if err.is_nan() {
            break;
        }
    }
    *max_error = if max_error.is_nan() { err } else { max_error.max(err) };
    let allowed = case.tolerance.atol + case.tolerance.rtol * scale;
    if err.is_nan() || err > allowed {
        return Err(invalid(name, format!("{what}: max error {err:.3e} exceeds {allowed:.3e}")));
    }
    Ok(())
}
