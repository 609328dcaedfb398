//! `nn.BatchNorm2d`: `ops::batch_norm2d` with its affine parameters and running statistics
//! kept.

use super::Module;
use crate::nn::Window;
use crate::ops::norm::{batch_norm2d, batch_norm2d_relu, BatchNormOptions};
use crate::{ensure, Device, Result, Tensor, Var};

/// PyTorch's `BatchNorm2d(channels)`: eps 1e-5, momentum 0.1, affine, tracking running
/// statistics. Training normalizes by the batch's mean and biased variance and moves the running
/// statistics toward the batch's (the variance unbiased, as PyTorch does); evaluation normalizes
/// by the running statistics.
pub struct BatchNorm2d {
    /// Per-channel scale `(c)`, initially ones.
    pub weight: Var,
    /// Per-channel shift `(c)`, initially zeros.
    pub bias: Var,
    /// Running mean `(c)`, initially zeros.
    pub running_mean: Var,
    /// Running variance `(c)`, initially ones.
    pub running_var: Var,
    /// A count, kept as float32 (PyTorch's int64 loads into it as it is).
    pub num_batches_tracked: Var,
    /// Added to the variance before its square root.
    pub eps: f32,
    /// Weight of the batch's statistics in each update of the running ones.
    pub momentum: f32,
    training: bool,
}

impl BatchNorm2d {
    /// A layer over `channels` channels, in training mode.
    pub fn new(channels: usize, device: &Device) -> Result<BatchNorm2d> {
        ensure!(channels > 0, "BatchNorm2d", "needs at least one channel");
        Ok(BatchNorm2d {
            weight: Var::new(&Tensor::ones([channels], device)?),
            bias: Var::new(&Tensor::zeros([channels], device)?),
            running_mean: Var::new(&Tensor::zeros([channels], device)?),
            running_var: Var::new(&Tensor::ones([channels], device)?),
            num_batches_tracked: Var::new(
                &Tensor::zeros([1], device)?.reshape(Vec::<usize>::new())?,
            ),
            eps: 1e-5,
            momentum: 0.1,
            training: true,
        })
    }

    fn channels(&self) -> usize {
        self.weight.as_tensor().dims()[0]
    }
}

impl BatchNorm2d {
    /// `relu(self(x) + residual)`: a residual block's tail, the add and the ReLU in the
    /// normalisation's pass (`ops::batch_norm2d_relu`).
    pub fn forward_add_relu(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.forward_with(x, Some(residual), true)
    }

    fn forward_with(&self, x: &Tensor, residual: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        let c = self.channels();
        let xc = x.dims4().map(|d| d.1).unwrap_or(c);
        ensure!(xc == c, "BatchNorm2d", "input has {xc} channels, the layer {c}");
        let opts =
            BatchNormOptions { training: self.training, momentum: self.momentum, eps: self.eps };
        let (rm, rv) = (self.running_mean.as_tensor(), self.running_var.as_tensor());
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        let out = match relu {
            true => batch_norm2d_relu(x, &rm, &rv, Some(&w), Some(&b), &opts, residual),
            false => batch_norm2d(x, &rm, &rv, Some(&w), Some(&b), &opts),
        }
        .map_err(|e| match e {
            crate::Error::Invalid { msg, .. } => crate::Error::Invalid { op: "BatchNorm2d", msg },
            e => e,
        })?;
        if self.training {
            self.running_mean.set(&out.running_mean)?;
            self.running_var.set(&out.running_var)?;
            self.num_batches_tracked.set(&self.num_batches_tracked.as_tensor().add_scalar(1.0)?)?;
        }
        Ok(out.output)
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, false)
    }
    /// `relu(self(x))` in one pass over the output (`Sequential` fuses a following `ReLU`).
    fn forward_relu(&self, x: &Tensor) -> Option<Result<Tensor>> {
        Some(self.forward_with(x, None, true))
    }
    fn parameters(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        [
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}
