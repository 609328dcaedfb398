//! The format's volume ops (`(n, c, d, h, w)`; per-axis attrs are `[d, h, w]`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::invalid;
use super::ops::{Attrs, Signature};
use crate::{
    adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, batch_norm3d, conv3d, conv_transpose3d,
    max_pool3d, upsample3d, AvgPool3dOptions, Conv3dOptions, ConvTranspose3dOptions,
    MaxPool3dOptions, Padding3d, PaddingMode, Result, Tensor, Triple, Upsample3dMode,
    Upsample3dSize,
};

pub(super) fn signature(op: &str) -> Option<Signature> {
    const X: &[&str] = &["input"];
    Some(match op {
        "conv3d" => (
            &["input", "weight"],
            &["bias"],
            &["stride", "padding", "dilation", "groups", "padding_mode"],
        ),
        "conv_transpose3d" => (
            &["input", "weight"],
            &["bias"],
            &["stride", "padding", "output_padding", "dilation", "groups"],
        ),
        "max_pool3d" => (X, &[], &["kernel", "stride", "padding", "ceil_mode", "dilation"]),
        "avg_pool3d" => (
            X,
            &[],
            &["kernel", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
        ),
        "adaptive_avg_pool3d" | "adaptive_max_pool3d" => (X, &[], &["output_size"]),
        "batch_norm3d" => (
            &["input", "running_mean", "running_var"],
            &["weight", "bias"],
            &["training", "momentum", "eps"],
        ),
        _ => return None,
    })
}

impl Attrs<'_> {
    fn triple(&self, key: &str, default: Triple) -> Result<Triple> {
        let uint = |v: &Value| {
            v.as_u64().map(|x| x as usize).ok_or_else(|| self.bad(key, "non-negative integers", v))
        };
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v @ Value::Number(_)) => uint(v).map(|x| (x, x, x)),
            Some(Value::Array(a)) if a.len() == 3 => Ok((uint(&a[0])?, uint(&a[1])?, uint(&a[2])?)),
            Some(v) => Err(self.bad(key, "an integer or three", v)),
        }
    }
    fn opt_triple(&self, key: &str) -> Result<Option<Triple>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.triple(key, (1, 1, 1)).map(Some),
        }
    }
    fn required_triple(&self, op: &str, key: &str) -> Result<Triple> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(invalid(self.case, format!("{op} needs attr {key}"))),
            Some(_) => self.triple(key, (0, 0, 0)),
        }
    }
}

/// `upsample` on a volume: nearest or trilinear to `size`.
pub(super) fn upsample(attrs: &Attrs<'_>, x: &Tensor) -> Result<Tensor> {
    let (d, h, w) = attrs.required_triple("upsample", "size")?;
    let mode = match attrs.map.get("mode").and_then(Value::as_str) {
        Some("nearest") if attrs.map.contains_key("align_corners") => {
            return Err(invalid(attrs.case, "align_corners is only valid for trilinear"))
        }
        Some("nearest") => Upsample3dMode::Nearest,
        Some("trilinear") => {
            Upsample3dMode::Trilinear { align_corners: attrs.bool("align_corners", false)? }
        }
        other => {
            return Err(invalid(attrs.case, format!("unknown volume upsample mode {other:?}")))
        }
    };
    upsample3d(x, mode, Upsample3dSize::Size(d, h, w))
}

/// Runs a volume op; None for an op that is not one.
pub(super) fn run(
    op: &str, attrs: &Attrs<'_>, inputs: &BTreeMap<String, Tensor>,
    out: &mut BTreeMap<String, Tensor>,
) -> Option<Result<Tensor>> {
    let x = &inputs["input"];
    let mut run = || -> Result<Tensor> {
        Ok(match op {
            "conv3d" => {
                let modes = ["zeros", "reflect", "replicate", "circular"];
                let padding_mode = match attrs.choice("padding_mode", &modes)? {
                    "reflect" => PaddingMode::Reflect,
                    "replicate" => PaddingMode::Replicate,
                    "circular" => PaddingMode::Circular,
                    _ => PaddingMode::Zeros,
                };
                let padding = match attrs.map.get("padding").and_then(Value::as_str) {
                    Some("same") => Padding3d::Same,
                    Some("valid") => Padding3d::Valid,
                    _ => Padding3d::Explicit(attrs.triple("padding", (0, 0, 0))?),
                };
                let opts = Conv3dOptions {
                    stride: attrs.triple("stride", (1, 1, 1))?,
                    padding,
                    dilation: attrs.triple("dilation", (1, 1, 1))?,
                    groups: attrs.uint("groups")?.unwrap_or(1),
                    padding_mode,
                };
                conv3d(x, &inputs["weight"], inputs.get("bias"), &opts)?
            }
            "conv_transpose3d" => {
                let opts = ConvTranspose3dOptions {
                    stride: attrs.triple("stride", (1, 1, 1))?,
                    padding: attrs.triple("padding", (0, 0, 0))?,
                    output_padding: attrs.triple("output_padding", (0, 0, 0))?,
                    dilation: attrs.triple("dilation", (1, 1, 1))?,
                    groups: attrs.uint("groups")?.unwrap_or(1),
                };
                conv_transpose3d(x, &inputs["weight"], inputs.get("bias"), &opts)?
            }
            "max_pool3d" => max_pool3d(
                x,
                &MaxPool3dOptions {
                    kernel: attrs.required_triple(op, "kernel")?,
                    stride: attrs.opt_triple("stride")?,
                    padding: attrs.triple("padding", (0, 0, 0))?,
                    dilation: attrs.triple("dilation", (1, 1, 1))?,
                    ceil_mode: attrs.bool("ceil_mode", false)?,
                },
            )?,
            "avg_pool3d" => avg_pool3d(
                x,
                &AvgPool3dOptions {
                    kernel: attrs.required_triple(op, "kernel")?,
                    stride: attrs.opt_triple("stride")?,
                    padding: attrs.triple("padding", (0, 0, 0))?,
                    ceil_mode: attrs.bool("ceil_mode", false)?,
                    count_include_pad: attrs.bool("count_include_pad", true)?,
                    divisor_override: attrs.uint("divisor_override")?,
                },
            )?,
            "adaptive_avg_pool3d" => {
                adaptive_avg_pool3d(x, attrs.required_triple(op, "output_size")?)?
            }
            "adaptive_max_pool3d" => {
                adaptive_max_pool3d(x, attrs.required_triple(op, "output_size")?)?
            }
            "batch_norm3d" => super::ops::batch_norm(attrs, inputs, out, batch_norm3d)?,
            _ => unreachable!("checked below"),
        })
    };
    signature(op)?;
    Some(run())
}
