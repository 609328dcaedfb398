//! Layers with parameters and a `Sequential` container, PyTorch-style.

mod batchnorm;
mod conv_transpose;
mod dropout;
mod receptive;
mod state;
mod volume;

pub use batchnorm::BatchNorm2d;
pub use conv_transpose::ConvTranspose2d;
pub use dropout::Dropout;
pub use receptive::{receptive_field_exact, receptive_fields, ExactField, FieldRow, Window};
pub use state::StateDict;
pub use volume::{
    AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, BatchNorm3d, Conv3d, ConvTranspose3d,
    MaxPool3d, Upsample3d,
};

use crate::ops::conv::Pair;
use crate::{
    adaptive_avg_pool2d, avg_pool2d, conv2d, conv2d_relu, ensure, max_pool2d, upsample,
    AvgPool2dOptions, Conv2dOptions, Device, MaxPool2dOptions, Result, Tensor, UpsampleOptions,
    Var,
};

/// A layer or a network: a function of one tensor with trainable parameters.
pub trait Module: Send + Sync {
    /// The layer's output for the input `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// Trainable parameters, in a stable order.
    fn parameters(&self) -> Vec<Var> {
        Vec::new()
    }
    /// The layer followed by a ReLU as one fused op, where it has one (`Conv2d`); `None`
    /// otherwise. `Sequential` uses it for a layer followed by a [`ReLU`].
    fn forward_relu(&self, _x: &Tensor) -> Option<Result<Tensor>> {
        None
    }
    /// True for [`ReLU`], which `Sequential` fuses into the layer before it where it can.
    fn is_relu(&self) -> bool {
        false
    }
    /// The module's tensors under their PyTorch names (`weight`, `bias`; containers prefix
    /// their children's with the child's index, `0.weight`).
    fn named_state(&self) -> Vec<(String, Var)> {
        Vec::new()
    }
    /// `(name, tensor)` for every parameter, keyed as PyTorch's `state_dict()` keys the same
    /// model.
    fn state_dict(&self) -> StateDict {
        state::state_dict(self)
    }
    /// Loads a state dict strictly: a missing, unexpected or mis-shaped key is an `Err` naming
    /// it, and then nothing is changed. Values move to each parameter's device.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        state::load_state_dict(self, state)
    }
    /// Training (`true`, the default) or evaluation mode, as PyTorch's `train()`/`eval()`:
    /// [`Dropout`] passes its input through in evaluation. Containers pass it on.
    fn set_training(&mut self, _training: bool) {}
    /// How the layer maps input positions to output positions, for [`receptive_fields`].
    fn window(&self) -> Window {
        Window::Opaque
    }
}

/// `U(-bound, bound)` with PyTorch's default bound for conv and linear layers, `1/sqrt(fan_in)`
/// (kaiming_uniform with a = sqrt(5)).
fn uniform_init(shape: &[usize], fan_in: usize, seed: u64, device: &Device) -> Result<Tensor> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    Tensor::rand(shape.to_vec(), seed, device)?.mul_scalar(2.0 * bound)?.sub_scalar(bound)
}

/// A layer's weight (`shape`) and optional bias (`bias` elements), both `U(-bound, bound)` for
/// its `fan_in`; the bias draws from a seed of its own.
fn init_weight_and_bias(
    shape: &[usize], fan_in: usize, bias: Option<usize>, seed: u64, device: &Device,
) -> Result<(Var, Option<Var>)> {
    let weight = Var::new(&uniform_init(shape, fan_in, seed, device)?);
    let bias_seed = seed ^ 0x9e37_79b9;
    let bias = match bias {
        Some(len) => Some(Var::new(&uniform_init(&[len], fan_in, bias_seed, device)?)),
        None => None,
    };
    Ok((weight, bias))
}

/// A convolution layer's weight and bias, PyTorch's initialisation: conv2d's weight `(out,
/// in/groups, kh, kw)`, or a transposed convolution's `(in, out/groups, kh, kw)`, both with
/// `fan_in` the product of the weight's last three axes. `layer` names the layer in errors.
fn conv_weight_and_bias(
    layer: &'static str, (c_in, c_out): (usize, usize), kernel: impl Into<Pair>,
    (groups, transposed): (usize, bool), bias: bool, seed: u64, device: &Device,
) -> Result<(Var, Option<Var>)> {
    let (kh, kw) = kernel.into().0;
    ensure!(
        c_in > 0 && c_out > 0 && kh > 0 && kw > 0 && groups > 0,
        layer,
        "channels, kernel size and groups must be positive, got {c_in} -> {c_out}, kernel ({kh}, {kw}), groups {groups}"
    );
    ensure!(
        c_in.is_multiple_of(groups) && c_out.is_multiple_of(groups),
        layer,
        "in_channels {c_in} and out_channels {c_out} must be divisible by groups {groups}"
    );
    let shape = match transposed {
        false => [c_out, c_in / groups, kh, kw],
        true => [c_in, c_out / groups, kh, kw],
    };
    let fan_in = shape[1] * kh * kw;
    init_weight_and_bias(&shape, fan_in, bias.then_some(c_out), seed, device)
}

/// A layer's weight and bias as tensors, for its forward pass.
fn weight_and_bias(weight: &Var, bias: &Option<Var>) -> (Tensor, Option<Tensor>) {
    (weight.as_tensor(), bias.as_ref().map(Var::as_tensor))
}

/// `Module::parameters` and `Module::named_state` of a layer with a `weight` and an optional
/// `bias`: the weight first, under PyTorch's names.
macro_rules! weight_and_bias_state {
    () => {
        fn parameters(&self) -> Vec<Var> {
            std::iter::once(self.weight.clone()).chain(self.bias.clone()).collect()
        }
        fn named_state(&self) -> Vec<(String, Var)> {
            std::iter::once(("weight".to_string(), self.weight.clone()))
                .chain(self.bias.clone().map(|b| ("bias".to_string(), b)))
                .collect()
        }
    };
}
use weight_and_bias_state;

/// `nn.Conv2d`.
pub struct Conv2d {
    /// `(out, in/groups, kh, kw)`.
    pub weight: Var,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups and padding mode.
    pub opts: Conv2dOptions,
}

impl Conv2d {
    /// `in_channels -> out_channels` with a `kernel` window; weights from `seed`.
    pub fn new(
        in_channels: usize, out_channels: usize, kernel: impl Into<Pair>, opts: Conv2dOptions,
        bias: bool, seed: u64, device: &Device,
    ) -> Result<Conv2d> {
        let channels = (in_channels, out_channels);
        let (weight, bias) = conv_weight_and_bias(
            "Conv2d",
            channels,
            kernel,
            (opts.groups, false),
            bias,
            seed,
            device,
        )?;
        Ok(Conv2d { weight, bias, opts })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        conv2d(x, &w, b.as_ref(), &self.opts)
    }
    weight_and_bias_state!();
    fn forward_relu(&self, x: &Tensor) -> Option<Result<Tensor>> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        Some(conv2d_relu(x, &w, b.as_ref(), &self.opts))
    }
    fn window(&self) -> Window {
        let d = self.weight.as_tensor().dims().to_vec(); // (out, in/groups, kh, kw)
        let o = &self.opts;
        let pad = match o.padding {
            crate::Padding::Explicit([top, _, left, _]) => (top, left),
            crate::Padding::Valid => (0, 0),
            // the total d * (k - 1), the odd one at the bottom and right
            crate::Padding::Same => (o.dilation.0 * (d[2] - 1) / 2, o.dilation.1 * (d[3] - 1) / 2),
        };
        Window::Sliding { kernel: (d[2], d[3]), stride: o.stride, pad, dilation: o.dilation }
    }
}

/// `nn.Linear`: `(n, in) -> (n, out)`.
pub struct Linear {
    /// `(out, in)`.
    pub weight: Var,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Var>,
}

impl Linear {
    /// `in_features -> out_features`; weight and bias `U(-1/sqrt(in), 1/sqrt(in))` from `seed`,
    /// as PyTorch initialises them.
    pub fn new(
        in_features: usize, out_features: usize, bias: bool, seed: u64, device: &Device,
    ) -> Result<Linear> {
        ensure!(
            in_features > 0 && out_features > 0,
            "Linear",
            "feature counts must be positive, got {in_features} -> {out_features}"
        );
        let shape = [out_features, in_features];
        let (weight, bias) =
            init_weight_and_bias(&shape, in_features, bias.then_some(out_features), seed, device)?;
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        x.linear(&w, b.as_ref())
    }
    weight_and_bias_state!();
    fn forward_relu(&self, x: &Tensor) -> Option<Result<Tensor>> {
        let (w, b) = weight_and_bias(&self.weight, &self.bias);
        Some(x.linear_relu(&w, b.as_ref()))
    }
    fn window(&self) -> Window {
        Window::Global
    }
}

/// `nn.MaxPool2d`.
pub struct MaxPool2d(pub MaxPool2dOptions);
impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        max_pool2d(x, &self.0)
    }
    fn window(&self) -> Window {
        let o = &self.0;
        let stride = o.stride.unwrap_or(o.kernel);
        Window::Sliding { kernel: o.kernel, stride, pad: o.padding, dilation: o.dilation }
    }
}

/// `nn.AvgPool2d`.
pub struct AvgPool2d(pub AvgPool2dOptions);
impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        avg_pool2d(x, &self.0)
    }
    fn window(&self) -> Window {
        let o = &self.0;
        let stride = o.stride.unwrap_or(o.kernel);
        Window::Sliding { kernel: o.kernel, stride, pad: o.padding, dilation: (1, 1) }
    }
}

/// `nn.AdaptiveAvgPool2d`.
pub struct AdaptiveAvgPool2d(pub (usize, usize));
impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        adaptive_avg_pool2d(x, self.0)
    }
    fn window(&self) -> Window {
        Window::Global
    }
}

/// `nn.AdaptiveMaxPool2d`.
pub struct AdaptiveMaxPool2d(pub (usize, usize));
impl Module for AdaptiveMaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::adaptive_max_pool2d(x, self.0)
    }
    fn window(&self) -> Window {
        Window::Global
    }
}

/// `nn.Upsample`.
pub struct Upsample(pub UpsampleOptions);
impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        upsample(x, &self.0)
    }
}

/// `nn.ReLU`.
pub struct ReLU;
impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.relu()
    }
    fn is_relu(&self) -> bool {
        true
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.LeakyReLU`.
pub struct LeakyReLU(pub f32);
impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.Sigmoid`.
pub struct Sigmoid;
impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.sigmoid()
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.Tanh`.
pub struct Tanh;
impl Module for Tanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.tanh()
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.SiLU`.
pub struct SiLU;
impl Module for SiLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.silu()
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.GELU`: exact, or with `approximate='tanh'` when `.0` is true.
pub struct GELU(pub bool);
impl Module for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.0 {
            x.gelu_tanh()
        } else {
            x.gelu()
        }
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}

/// `nn.Flatten`: keeps the batch axis, flattens the rest.
pub struct Flatten;
impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ensure!(x.rank() >= 2, "Flatten", "input must have a batch axis, got shape {}", x.shape());
        x.flatten_from(1)
    }
    fn window(&self) -> Window {
        Window::Global
    }
}

/// Layers applied in order.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// No layers: the identity.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a layer.
    pub fn push(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a layer chosen at run time.
    pub fn push_boxed(mut self, layer: Box<dyn Module>) -> Self {
        self.layers.push(layer);
        self
    }
    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// Whether there is no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Module for Sequential {
    /// The layers in order; a layer followed by a `ReLU` runs as one fused op where it has
    /// one (`Module::forward_relu`): same results, one pass fewer.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let next_is_relu = self.layers.get(i + 1).is_some_and(|l| l.is_relu());
            match next_is_relu.then(|| self.layers[i].forward_relu(&h)).flatten() {
                Some(fused) => {
                    h = fused?;
                    i += 2;
                }
                None => {
                    h = self.layers[i].forward(&h)?;
                    i += 1;
                }
            }
        }
        Ok(h)
    }
    fn set_training(&mut self, training: bool) {
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.named_state().into_iter().map(move |(k, v)| (format!("{i}.{k}"), v))
            })
            .collect()
    }
    fn parameters(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }
}
