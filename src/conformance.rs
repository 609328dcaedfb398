//! Runs `convshade-cases/1` directories: ops, inputs and PyTorch's outputs and gradients (format
//! in docs/CONFORMANCE.md), on any device.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::ops::conv::Pair;
use crate::{
    avg_pool2d, conv2d, max_pool2d, upsample, AvgPool2dOptions, Conv2dOptions, Device, Error,
    MaxPool2dOptions, Padding, Result, Tensor, UpsampleOptions, UpsampleSize,
};

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
    pub name: String,
    pub op: String,
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
    pub inputs: BTreeMap<String, String>,
    pub expected: BTreeMap<String, String>,
    #[serde(default)]
    pub grad_output: Option<String>,
    #[serde(default)]
    pub expected_grads: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerance: Tolerance,
}

/// `max |got - expected| <= atol + rtol * max |expected|`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub rtol: f32,
    pub atol: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rtol: 1e-4,
            atol: 1e-5,
        }
    }
}

/// A loaded suite: the directory and its cases.
#[derive(Debug)]
pub struct Suite {
    pub dir: PathBuf,
    pub cases: Vec<CaseSpec>,
}

/// The result of one case on one device.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    pub name: String,
    pub device: String,
    pub passed: bool,
    /// Largest `|got - expected|` over every compared array (NaN if nothing was compared).
    pub max_error: f32,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

impl std::fmt::Display for CaseOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.passed { "PASS" } else { "FAIL" };
        write!(
            f,
            "{status} {} [{}] max error {:.3e}",
            self.name, self.device, self.max_error
        )?;
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
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    if m.format != FORMAT {
        return Err(Error::Format {
            path: path.display().to_string(),
            msg: format!("format is {:?}, expected {FORMAT:?}", m.format),
        });
    }
    Ok(Suite {
        dir,
        cases: m.cases,
    })
}

pub use crate::io::read_npy;

/// Runs every case on every device, in order; `on_result` sees each outcome as it comes.
pub fn run_suite(
    suite: &Suite,
    devices: &[Device],
    mut on_result: impl FnMut(&CaseOutcome),
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
    let mut max_error = f32::NAN;
    let result = check_case(dir, case, device, &mut max_error);
    CaseOutcome {
        name: case.name.clone(),
        device: device.name(),
        passed: result.is_ok(),
        max_error,
        reason: result.err().map(|e| e.to_string()).unwrap_or_default(),
    }
}

fn invalid(name: &str, msg: impl Into<String>) -> Error {
    Error::Format {
        path: name.to_string(),
        msg: msg.into(),
    }
}

/// Which inputs and attrs each op takes.
fn op_signature(
    op: &str,
) -> Option<(
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
)> {
    // (required inputs, optional inputs, attrs)
    Some(match op {
        "conv2d" => (
            &["input", "weight"],
            &["bias"],
            &["stride", "padding", "dilation", "groups"],
        ),
        "max_pool2d" => (
            &["input"],
            &[],
            &["kernel", "stride", "padding", "ceil_mode", "dilation"],
        ),
        "avg_pool2d" => (
            &["input"],
            &[],
            &[
                "kernel",
                "stride",
                "padding",
                "ceil_mode",
                "count_include_pad",
                "divisor_override",
            ],
        ),
        "upsample" => (&["input"], &[], &["mode", "size", "align_corners"]),
        "relu" => (&["input"], &[], &[]),
        "linear" => (&["input", "weight"], &["bias"], &[]),
        _ => return None,
    })
}

struct Attrs<'a> {
    case: &'a str,
    map: &'a BTreeMap<String, Value>,
}

impl Attrs<'_> {
    fn pair(&self, key: &str, default: (usize, usize)) -> Result<(usize, usize)> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                let v = n.as_u64().ok_or_else(|| {
                    invalid(
                        self.case,
                        format!("attr {key} must be a non-negative integer"),
                    )
                })?;
                Ok((v as usize, v as usize))
            }
            Some(Value::Array(a)) if a.len() == 2 => {
                let f = |v: &Value| {
                    v.as_u64().map(|x| x as usize).ok_or_else(|| {
                        invalid(
                            self.case,
                            format!("attr {key} must hold non-negative integers"),
                        )
                    })
                };
                Ok((f(&a[0])?, f(&a[1])?))
            }
            Some(v) => Err(invalid(
                self.case,
                format!("attr {key} must be an integer or a pair, got {v}"),
            )),
        }
    }
    fn opt_pair(&self, key: &str) -> Result<Option<(usize, usize)>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.pair(key, (0, 0)).map(Some),
        }
    }
    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(invalid(
                self.case,
                format!("attr {key} must be a bool, got {v}"),
            )),
        }
    }
    fn uint(&self, key: &str) -> Result<Option<usize>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
                invalid(
                    self.case,
                    format!("attr {key} must be a non-negative integer, got {v}"),
                )
            }),
        }
    }
}

fn check_case(dir: &Path, case: &CaseSpec, device: &Device, max_error: &mut f32) -> Result<()> {
    let name = case.name.as_str();
    check_signature(case)?;
    let inputs = load_inputs(dir, case, device)?;
    let output = run_op(case, &inputs)?;
    let mut compared = 0;
    let mut check = |what: &str, got: &Tensor, file: &str| -> Result<()> {
        compared += 1;
        compare_array(dir, case, what, got, file, max_error)
    };
    for (key, file) in &case.expected {
        if key != "output" {
            return Err(invalid(name, format!("unknown expected array {key:?}")));
        }
        check("output", &output, file)?;
    }
    if let Some(go) = &case.grad_output {
        let go = Tensor::from_ndarray(&read_npy(dir.join(go))?, device)?;
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
            check(&format!("grad of {key}"), g, file)?;
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
            return Err(invalid(
                name,
                format!("unknown attr {key:?} for op {}", case.op),
            ));
        }
    }
    for key in case.inputs.keys() {
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            return Err(invalid(
                name,
                format!("unknown input {key:?} for op {}", case.op),
            ));
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
fn load_inputs(dir: &Path, case: &CaseSpec, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let mut inputs: BTreeMap<String, Tensor> = BTreeMap::new();
    for (key, file) in &case.inputs {
        let a = read_npy(dir.join(file))?;
        inputs.insert(
            key.clone(),
            Tensor::from_ndarray(&a, device)?.requires_grad_(),
        );
    }
    Ok(inputs)
}

/// Runs the case's op on its inputs (the signature already checked).
fn run_op(case: &CaseSpec, inputs: &BTreeMap<String, Tensor>) -> Result<Tensor> {
    let name = case.name.as_str();
    let attrs = Attrs {
        case: name,
        map: &case.attrs,
    };
    let x = &inputs["input"];
    Ok(match case.op.as_str() {
        "conv2d" => {
            let (ph, pw) = attrs.pair("padding", (0, 0))?;
            let opts = Conv2dOptions::new()
                .stride(Pair(attrs.pair("stride", (1, 1))?))
                .padding(Padding::from((ph, pw)))
                .dilation(Pair(attrs.pair("dilation", (1, 1))?))
                .groups(attrs.uint("groups")?.unwrap_or(1));
            conv2d(x, &inputs["weight"], inputs.get("bias"), &opts)?
        }
        "max_pool2d" => {
            let kernel = attrs
                .opt_pair("kernel")?
                .ok_or_else(|| invalid(name, "max_pool2d needs attr kernel"))?;
            let mut o = MaxPool2dOptions::new(Pair(kernel))
                .padding(Pair(attrs.pair("padding", (0, 0))?))
                .dilation(Pair(attrs.pair("dilation", (1, 1))?))
                .ceil_mode(attrs.bool("ceil_mode", false)?);
            if let Some(s) = attrs.opt_pair("stride")? {
                o = o.stride(Pair(s));
            }
            max_pool2d(x, &o)?
        }
        "avg_pool2d" => {
            let kernel = attrs
                .opt_pair("kernel")?
                .ok_or_else(|| invalid(name, "avg_pool2d needs attr kernel"))?;
            let mut o = AvgPool2dOptions::new(Pair(kernel))
                .padding(Pair(attrs.pair("padding", (0, 0))?))
                .ceil_mode(attrs.bool("ceil_mode", false)?)
                .count_include_pad(attrs.bool("count_include_pad", true)?);
            if let Some(s) = attrs.opt_pair("stride")? {
                o = o.stride(Pair(s));
            }
            if let Some(d) = attrs.uint("divisor_override")? {
                o = o.divisor_override(d);
            }
            avg_pool2d(x, &o)?
        }
        "upsample" => {
            let (oh, ow) = attrs
                .opt_pair("size")?
                .ok_or_else(|| invalid(name, "upsample needs attr size"))?;
            let size = UpsampleSize::Size(oh, ow);
            let o = match case.attrs.get("mode").and_then(Value::as_str) {
                Some("nearest") => {
                    if case.attrs.contains_key("align_corners") {
                        return Err(invalid(name, "align_corners is only valid for bilinear"));
                    }
                    UpsampleOptions::nearest(size)
                }
                Some("bilinear") => {
                    UpsampleOptions::bilinear(size, attrs.bool("align_corners", false)?)
                }
                other => return Err(invalid(name, format!("unknown upsample mode {other:?}"))),
            };
            upsample(x, &o)?
        }
        "relu" => x.relu()?,
        "linear" => x.linear(&inputs["weight"], inputs.get("bias"))?,
        _ => unreachable!("op_signature accepted it"),
    })
}

/// Compares `got` with the expected array in `file` within the case's tolerance, and records
/// the largest error.
fn compare_array(
    dir: &Path,
    case: &CaseSpec,
    what: &str,
    got: &Tensor,
    file: &str,
    max_error: &mut f32,
) -> Result<()> {
    let name = case.name.as_str();
    let want = read_npy(dir.join(file))?;
    if got.dims() != want.shape() {
        let (gs, ws) = (got.shape(), want.shape());
        return Err(invalid(
            name,
            format!("{what}: shape {gs} but expected {ws:?}"),
        ));
    }
    let g = got.to_vec()?;
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut err = 0f32;
    for (a, b) in g.iter().zip(want.iter()) {
        // equal values, infinities and NaN where NaN is expected included, match exactly
        let d = if a == b || a.is_nan() && b.is_nan() {
            0.0
        } else {
            (a - b).abs()
        };
        err = if d.is_nan() { f32::NAN } else { err.max(d) };
        if err.is_nan() {
            break;
        }
    }
    *max_error = if max_error.is_nan() {
        err
    } else {
        max_error.max(err)
    };
    let allowed = case.tolerance.atol + case.tolerance.rtol * scale;
    if err.is_nan() || err > allowed {
        return Err(invalid(
            name,
            format!("{what}: max error {err:.3e} exceeds {allowed:.3e}"),
        ));
    }
    Ok(())
}
