//! `nn.ConvTranspose2d`.

use super::{conv_weight_and_bias, weight_and_bias, weight_and_bias_state, Module};
use crate::ops::conv::Pair;
use crate::{conv_transpose2d, ConvTranspose2dOptions, Device, Result, Tensor, Var};

/// `in_channels -> out_channels` by [`conv_transpose2d`]: weight `(in, out/groups, kh, kw)` and
/// bias `(out)`, both `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with PyTorch's
/// `fan_in = out/groups * kh * kw` (its weight's second axis).
pub struct ConvTranspose2d {
    /// `(in, out/groups, kh, kw)`.
    pub weight: Var,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Var>,
    /// Stride, padding, output padding, dilation and groups.
    pub opts: ConvTranspose2dOptions,
}

impl ConvTranspose2d {
    /// `in_channels -> out_channels` with a `kernel` window; weights from `seed`.
    pub fn new(
        in_channels: usize, out_channels: usize, kernel: impl Into<Pair>,
        opts: ConvTranspose2dOptions, bias: bool, seed: u64, device: &Device,
    ) -> Result<ConvTranspose2d> {
        let channels = (in_channels, out_channels);
        let groups = (opts.groups, true);
        let layer = "ConvTranspose2d";
        let (weight, bias) =
            conv_weight_and_bias(layer, channels, kernel, groups, bias, seed, device)?;
        Ok(ConvTranspose2d { weight, bias, opts })
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        conv_transpose2d(x, &w, b.as_ref(), &self.opts)
    }
    weight_and_bias_state!();
}
