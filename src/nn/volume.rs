//! The volume layers `(n, c, d, h, w)`: `Conv3d`, `ConvTranspose3d`, `MaxPool3d`, `AvgPool3d`,
//! `AdaptiveAvgPool3d`, `AdaptiveMaxPool3d`, `BatchNorm3d`, `Upsample3d`, with PyTorch's
//! initialisation and state-dict keys.

use super::{init_weight_and_bias, weight_and_bias, weight_and_bias_state, BatchNorm2d, Module};
use crate::{
    adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, conv3d, conv_transpose3d, ensure,
    max_pool3d, upsample3d, AvgPool3dOptions, Conv3dOptions, ConvTranspose3dOptions, Device,
    MaxPool3dOptions, Result, Tensor, Triple, Upsample3dMode, Upsample3dSize, Var,
};

/// A 3-d convolution's weight `(o, c/groups, kd, kh, kw)` (transposed: `(c, o/groups, ...)`)
/// and bias, uniform within `1/sqrt(fan_in)` as PyTorch initialises them.
fn weight_and_bias_3d(
    layer: &'static str, (c_in, c_out): (usize, usize), k: Triple,
    (groups, transposed): (usize, bool), bias: bool, seed: u64, device: &Device,
) -> Result<(Var, Option<Var>)> {
    ensure!(
        c_in > 0 && c_out > 0 && k.0 * k.1 * k.2 > 0 && groups > 0,
        layer,
        "channels, kernel size and groups must be positive, got {c_in} -> {c_out}, kernel {k:?}, groups {groups}"
    );
    ensure!(
        c_in.is_multiple_of(groups) && c_out.is_multiple_of(groups),
        layer,
        "in_channels {c_in} and out_channels {c_out} must be divisible by groups {groups}"
    );
    let shape = match transposed {
        false => [c_out, c_in / groups, k.0, k.1, k.2],
        true => [c_in, c_out / groups, k.0, k.1, k.2],
    };
    let fan_in = shape[1] * k.0 * k.1 * k.2;
    init_weight_and_bias(&shape, fan_in, bias.then_some(c_out), seed, device)
}

/// `nn.Conv3d`.
pub struct Conv3d {
    /// `(out, in/groups, kd, kh, kw)`.
    pub weight: Var,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups and padding mode.
    pub opts: Conv3dOptions,
}

impl Conv3d {
    /// `in_channels -> out_channels` with a `kernel` window; weights from `seed`.
    pub fn new(
        in_channels: usize, out_channels: usize, kernel: Triple, opts: Conv3dOptions, bias: bool,
        seed: u64, device: &Device,
    ) -> Result<Conv3d> {
        let ch = (in_channels, out_channels);
        let (weight, bias) =
            weight_and_bias_3d("Conv3d", ch, kernel, (opts.groups, false), bias, seed, device)?;
        Ok(Conv3d { weight, bias, opts })
    }
}

impl Module for Conv3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        conv3d(x, &w, b.as_ref(), &self.opts)
    }
    weight_and_bias_state!();
}

/// `nn.ConvTranspose3d`.
pub struct ConvTranspose3d {
    /// `(in, out/groups, kd, kh, kw)`.
    pub weight: Var,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Var>,
    /// Stride, padding, output padding, dilation and groups.
    pub opts: ConvTranspose3dOptions,
}

impl ConvTranspose3d {
    /// `in_channels -> out_channels` with a `kernel` window; weights from `seed`.
    pub fn new(
        in_channels: usize, out_channels: usize, kernel: Triple, opts: ConvTranspose3dOptions,
        bias: bool, seed: u64, device: &Device,
    ) -> Result<ConvTranspose3d> {
        let ch = (in_channels, out_channels);
        let groups = opts.groups;
        let (weight, bias) =
            weight_and_bias_3d("ConvTranspose3d", ch, kernel, (groups, true), bias, seed, device)?;
        Ok(ConvTranspose3d { weight, bias, opts })
    }
}

impl Module for ConvTranspose3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        conv_transpose3d(x, &w, b.as_ref(), &self.opts)
    }
    weight_and_bias_state!();
}

/// `nn.MaxPool3d`.
pub struct MaxPool3d(pub MaxPool3dOptions);
impl Module for MaxPool3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        max_pool3d(x, &self.0)
    }
}

/// `nn.AvgPool3d`.
pub struct AvgPool3d(pub AvgPool3dOptions);
impl Module for AvgPool3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        avg_pool3d(x, &self.0)
    }
}

/// `nn.AdaptiveAvgPool3d`.
pub struct AdaptiveAvgPool3d(pub Triple);
impl Module for AdaptiveAvgPool3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        adaptive_avg_pool3d(x, self.0)
    }
}

/// `nn.AdaptiveMaxPool3d`.
pub struct AdaptiveMaxPool3d(pub Triple);
impl Module for AdaptiveMaxPool3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        adaptive_max_pool3d(x, self.0)
    }
}

/// `nn.Upsample` on volumes: nearest or trilinear.
pub struct Upsample3d(pub Upsample3dMode, pub Upsample3dSize);
impl Module for Upsample3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        upsample3d(x, self.0, self.1)
    }
}

/// `nn.BatchNorm3d`: [`BatchNorm2d`]'s parameters, buffers and keys over `(n, c, d, h, w)`.
pub struct BatchNorm3d(pub BatchNorm2d);

impl BatchNorm3d {
    /// Over `channels` channels, PyTorch's defaults.
    pub fn new(channels: usize, device: &Device) -> Result<BatchNorm3d> {
        Ok(BatchNorm3d(BatchNorm2d::new(channels, device)?))
    }
}

impl Module for BatchNorm3d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match *x.dims() {
            // the planes of each image as the rows of one
            [n, c, d, h, w] => {
                self.0.forward(&x.reshape([n, c, d * h, w])?)?.reshape([n, c, d, h, w])
            }
            _ => Err(crate::Error::Invalid {
                op: "BatchNorm3d",
                msg: format!("input must be (n, c, d, h, w), got {}", x.shape()),
            }),
        }
    }
    fn parameters(&self) -> Vec<Var> {
        self.0.parameters()
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        self.0.named_state()
    }
    fn set_training(&mut self, training: bool) {
        self.0.set_training(training)
    }
}
