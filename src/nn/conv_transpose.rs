//! `nn.ConvTranspose2d`.

use super::{init_weight_and_bias, named_weight_and_bias, weight_and_bias, Module};
use crate::ops::conv::Pair;
use crate::{conv_transpose2d, ensure, ConvTranspose2dOptions, Device, Result, Tensor, Var};

/// `in_channels -> out_channels` by [`conv_transpose2d`]: weight `(in, out/groups, kh, kw)` and
/// bias `(out)`, both `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with PyTorch's
/// `fan_in = out/groups * kh * kw` (its weight's second axis).
pub struct ConvTranspose2d {
    pub weight: Var,
    pub bias: Option<Var>,
    pub opts: ConvTranspose2dOptions,
}

impl ConvTranspose2d {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<Pair>,
        opts: ConvTranspose2dOptions,
        bias: bool,
        seed: u64,
        device: &Device,
    ) -> Result<ConvTranspose2d> {
        let (kh, kw) = kernel.into().0;
        let g = opts.groups;
        ensure!(
            in_channels > 0 && out_channels > 0 && kh > 0 && kw > 0 && g > 0,
            "ConvTranspose2d",
            "channels, kernel size and groups must be positive, got {in_channels} -> {out_channels}, kernel ({kh}, {kw}), groups {g}"
        );
        ensure!(
            in_channels.is_multiple_of(g) && out_channels.is_multiple_of(g),
            "ConvTranspose2d",
            "in_channels {in_channels} and out_channels {out_channels} must be divisible by groups {g}"
        );
        let fan_in = out_channels / g * kh * kw;
        let (weight, bias) = init_weight_and_bias(
            &[in_channels, out_channels / g, kh, kw],
            fan_in,
            bias.then_some(out_channels),
            seed,
            device,
        )?;
        Ok(ConvTranspose2d { weight, bias, opts })
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Var::as_tensor);
        conv_transpose2d(x, &self.weight.as_tensor(), b.as_ref(), &self.opts)
    }
    fn parameters(&self) -> Vec<Var> {
        weight_and_bias(&self.weight, &self.bias)
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        named_weight_and_bias(&self.weight, &self.bias)
    }
}
