//! What each op of the format takes (inputs and attrs) and how a case runs it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::invalid;
use crate::ops::conv::Pair;
use crate::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm2d, conv2d, conv_transpose2d,
    cross_entropy_labels, max_pool2d, mse_loss_with, pad, upsample, AvgPool2dOptions,
    BatchNormOptions, Conv2dOptions, ConvTranspose2dOptions, CrossEntropyOptions, MaxPool2dOptions,
    PadMode, Padding, PaddingMode, Reduction, Result, Tensor, UpsampleOptions, UpsampleSize,
};

/// `(required inputs, optional inputs, attrs)` of `op`, or `None` for an unknown op.
pub(super) type Signature =
    (&'static [&'static str], &'static [&'static str], &'static [&'static str]);

pub(super) fn op_signature(op: &str) -> Option<Signature> {
    const X: &[&str] = &["input"];
    Some(match op {
        "conv2d" => (
            &["input", "weight"],
            &["bias"],
            &["stride", "padding", "dilation", "groups", "padding_mode"],
        ),
        "conv_transpose2d" => (
            &["input", "weight"],
            &["bias"],
            &["stride", "padding", "output_padding", "dilation", "groups"],
        ),
        "pad" => (X, &[], &["pad", "mode", "value"]),
        "max_pool2d" => (X, &[], &["kernel", "stride", "padding", "ceil_mode", "dilation"]),
        "avg_pool2d" => (
            X,
            &[],
            &["kernel", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
        ),
        "adaptive_avg_pool2d" | "adaptive_max_pool2d" => (X, &[], &["output_size"]),
        "batch_norm2d" => (
            &["input", "running_mean", "running_var"],
            &["weight", "bias"],
            &["training", "momentum", "eps"],
        ),
        "upsample" => (X, &[], &["mode", "size", "align_corners"]),
        "relu" | "sigmoid" | "tanh" | "silu" => (X, &[], &[]),
        "leaky_relu" => (X, &[], &["negative_slope"]),
        "gelu" => (X, &[], &["approximate"]),
        "softmax" | "log_softmax" => (X, &[], &["dim"]),
        "cross_entropy" => (&["input", "target"], &[], &["label_smoothing", "reduction"]),
        "mse_loss" => (&["input", "target"], &[], &["reduction"]),
        "linear" => (&["input", "weight"], &["bias"], &[]),
        op => return super::volume::signature(op),
    })
}

pub(super) struct Attrs<'a> {
    pub(super) case: &'a str,
    pub(super) map: &'a BTreeMap<String, Value>,
}

impl Attrs<'_> {
    pub(super) fn bad(&self, key: &str, what: &str, v: &Value) -> crate::Error {
        invalid(self.case, format!("attr {key} must be {what}, got {v}"))
    }
    pub(super) fn pair(&self, key: &str, default: (usize, usize)) -> Result<(usize, usize)> {
        let uint = |v: &Value| {
            v.as_u64().map(|x| x as usize).ok_or_else(|| self.bad(key, "non-negative integers", v))
        };
        match self.map.get(key) {
            None => Ok(default),
            Some(v @ Value::Number(_)) => uint(v).map(|x| (x, x)),
            Some(Value::Array(a)) if a.len() == 2 => Ok((uint(&a[0])?, uint(&a[1])?)),
            Some(v) => Err(self.bad(key, "an integer or a pair", v)),
        }
    }
    pub(super) fn opt_pair(&self, key: &str) -> Result<Option<(usize, usize)>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.pair(key, (0, 0)).map(Some),
        }
    }
    pub(super) fn required_pair(&self, op: &str, key: &str) -> Result<(usize, usize)> {
        self.opt_pair(key)?.ok_or_else(|| invalid(self.case, format!("{op} needs attr {key}")))
    }
    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.bad(key, "a bool", v)),
        }
    }
    pub(super) fn uint(&self, key: &str) -> Result<Option<usize>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|x| Some(x as usize))
                .ok_or_else(|| self.bad(key, "a non-negative integer", v)),
        }
    }
    pub(super) fn int(&self, key: &str, default: i64) -> Result<i64> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| self.bad(key, "an integer", v)),
        }
    }
    pub(super) fn float(&self, key: &str, default: f32) -> Result<f32> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| self.bad(key, "a number", v)),
        }
    }
    /// A string attr, one of `allowed` (the first is the default).
    pub(super) fn choice(&self, key: &str, allowed: &[&'static str]) -> Result<&'static str> {
        match self.map.get(key) {
            None => Ok(allowed[0]),
            Some(v) => {
                let s = v.as_str().unwrap_or_default();
                allowed
                    .iter()
                    .find(|a| **a == s)
                    .copied()
                    .ok_or_else(|| self.bad(key, &format!("one of {allowed:?}"), v))
            }
        }
    }
    pub(super) fn widths(&self, key: &str) -> Result<Vec<isize>> {
        let v =
            self.map.get(key).ok_or_else(|| invalid(self.case, format!("pad needs attr {key}")))?;
        let list = v.as_array().ok_or_else(|| self.bad(key, "a list of integers", v))?;
        list.iter()
            .map(|x| {
                x.as_i64().map(|w| w as isize).ok_or_else(|| self.bad(key, "a list of integers", v))
            })
            .collect()
    }
    /// An axis of a `rank`-d tensor; negative counts from the end, as PyTorch's `dim`.
    pub(super) fn axis(&self, key: &str, rank: usize) -> Result<usize> {
        let d = self.int(key, -1)?;
        let a = if d < 0 { d + rank as i64 } else { d };
        if a < 0 || a >= rank as i64 {
            let msg = format!("attr {key} {d} is out of range for a {rank}-d input");
            return Err(invalid(self.case, msg));
        }
        Ok(a as usize)
    }
    pub(super) fn reduction(&self) -> Result<Reduction> {
        Ok(match self.choice("reduction", &["mean", "sum"])? {
            "sum" => Reduction::Sum,
            _ => Reduction::Mean,
        })
    }
}

/// Class indices stored as whole float32 values.
fn labels(case: &str, t: &Tensor) -> Result<Vec<usize>> {
    t.to_vec()?
        .into_iter()
        .map(|v| {
            if v >= 0.0 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(invalid(case, format!("target {v} is not a class index")))
            }
        })
        .collect()
}

/// `batch_norm2d` or `batch_norm3d`.
type BatchNormOp = fn(
    &Tensor,
    &Tensor,
    &Tensor,
    Option<&Tensor>,
    Option<&Tensor>,
    &BatchNormOptions,
) -> Result<crate::BatchNormOutput>;

/// A batch-norm op's case (`batch_norm2d`, `batch_norm3d`): the output, and the updated
/// running statistics into `out`.
pub(super) fn batch_norm(
    attrs: &Attrs<'_>, inputs: &BTreeMap<String, Tensor>, out: &mut BTreeMap<String, Tensor>,
    op: BatchNormOp,
) -> Result<Tensor> {
    let opts = BatchNormOptions {
        training: attrs.bool("training", false)?,
        momentum: attrs.float("momentum", 0.1)?,
        eps: attrs.float("eps", 1e-5)?,
    };
    let r = op(
        &inputs["input"],
        &inputs["running_mean"],
        &inputs["running_var"],
        inputs.get("weight"),
        inputs.get("bias"),
        &opts,
    )?;
    out.insert("running_mean".to_string(), r.running_mean);
    out.insert("running_var".to_string(), r.running_var);
    Ok(r.output)
}

/// Runs the case's op on its inputs (the signature already checked): `output`, and for
/// batch_norm2d in training the updated `running_mean` and `running_var`.
pub(super) fn run_op(
    case: &super::CaseSpec, inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>> {
    let name = case.name.as_str();
    let attrs = Attrs { case: name, map: &case.attrs };
    let x = &inputs["input"];
    let op = case.op.as_str();
    let mut out = BTreeMap::new();
    let y = match op {
        "conv2d" => {
            let (ph, pw) = attrs.pair("padding", (0, 0))?;
            let modes = ["zeros", "reflect", "replicate", "circular"];
            let mode = match attrs.choice("padding_mode", &modes)? {
                "reflect" => PaddingMode::Reflect,
                "replicate" => PaddingMode::Replicate,
                "circular" => PaddingMode::Circular,
                _ => PaddingMode::Zeros,
            };
            let opts = Conv2dOptions::new()
                .stride(Pair(attrs.pair("stride", (1, 1))?))
                .padding(Padding::from((ph, pw)))
                .dilation(Pair(attrs.pair("dilation", (1, 1))?))
                .groups(attrs.uint("groups")?.unwrap_or(1))
                .padding_mode(mode);
            conv2d(x, &inputs["weight"], inputs.get("bias"), &opts)?
        }
        "conv_transpose2d" => {
            let opts = ConvTranspose2dOptions::new()
                .stride(Pair(attrs.pair("stride", (1, 1))?))
                .padding(Pair(attrs.pair("padding", (0, 0))?))
                .output_padding(Pair(attrs.pair("output_padding", (0, 0))?))
                .dilation(Pair(attrs.pair("dilation", (1, 1))?))
                .groups(attrs.uint("groups")?.unwrap_or(1));
            conv_transpose2d(x, &inputs["weight"], inputs.get("bias"), &opts)?
        }
        "pad" => {
            let mode = attrs.choice("mode", &["constant", "reflect", "replicate", "circular"])?;
            if mode != "constant" && case.attrs.contains_key("value") {
                return Err(invalid(name, "attr value is only valid for constant padding"));
            }
            let mode = match mode {
                "reflect" => PadMode::Reflect,
                "replicate" => PadMode::Replicate,
                "circular" => PadMode::Circular,
                _ => PadMode::Constant(attrs.float("value", 0.0)?),
            };
            pad(x, &attrs.widths("pad")?, mode)?
        }
        "max_pool2d" => {
            let mut o = MaxPool2dOptions::new(Pair(attrs.required_pair(op, "kernel")?))
                .padding(Pair(attrs.pair("padding", (0, 0))?))
                .dilation(Pair(attrs.pair("dilation", (1, 1))?))
                .ceil_mode(attrs.bool("ceil_mode", false)?);
            if let Some(s) = attrs.opt_pair("stride")? {
                o = o.stride(Pair(s));
            }
            max_pool2d(x, &o)?
        }
        "avg_pool2d" => {
            let mut o = AvgPool2dOptions::new(Pair(attrs.required_pair(op, "kernel")?))
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
        "adaptive_avg_pool2d" => adaptive_avg_pool2d(x, attrs.required_pair(op, "output_size")?)?,
        "adaptive_max_pool2d" => adaptive_max_pool2d(x, attrs.required_pair(op, "output_size")?)?,
        "batch_norm2d" => batch_norm(&attrs, inputs, &mut out, batch_norm2d)?,
        "upsample" if x.rank() == 5 => super::volume::upsample(&attrs, x)?,
        "upsample" => {
            let (oh, ow) = attrs.required_pair(op, "size")?;
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
        "sigmoid" => x.sigmoid()?,
        "tanh" => x.tanh()?,
        "silu" => x.silu()?,
        "leaky_relu" => x.leaky_relu(attrs.float("negative_slope", 0.01)?)?,
        "gelu" => match attrs.choice("approximate", &["none", "tanh"])? {
            "tanh" => x.gelu_tanh()?,
            _ => x.gelu()?,
        },
        "softmax" => x.softmax(attrs.axis("dim", x.rank())?)?,
        "log_softmax" => x.log_softmax(attrs.axis("dim", x.rank())?)?,
        "cross_entropy" => {
            let opts = CrossEntropyOptions {
                label_smoothing: attrs.float("label_smoothing", 0.0)?,
                reduction: attrs.reduction()?,
            };
            cross_entropy_labels(x, &labels(name, &inputs["target"])?, opts)?
        }
        "mse_loss" => mse_loss_with(x, &inputs["target"], attrs.reduction()?)?,
        "linear" => x.linear(&inputs["weight"], inputs.get("bias"))?,
        _ => match super::volume::run(op, &attrs, inputs, &mut out) {
            Some(y) => y?,
            None => unreachable!("op_signature accepted it"),
        },
    };
    out.insert("output".to_string(), y);
    Ok(out)
}
