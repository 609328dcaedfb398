//! `nn.BatchNorm2d`: per-channel normalization over (n, h, w), running statistics with
//! momentum, an affine transform; composed of existing ops, so both devices and autograd come
//! with it.

use super::Module;
use crate::{ensure, Device, Result, Tensor, Var};

/// PyTorch's `BatchNorm2d(channels)`: eps 1e-5, momentum 0.1, affine, tracking running
/// statistics. Training normalizes by the batch's mean and biased variance and moves the running
/// statistics toward the batch's (the variance unbiased, as PyTorch does); evaluation normalizes
/// by the running statistics.
pub struct BatchNorm2d {
    pub weight: Var,
    pub bias: Var,
    pub running_mean: Var,
    pub running_var: Var,
    /// A count, kept as float32 (PyTorch's int64 loads into it as it is).
    pub num_batches_tracked: Var,
    pub eps: f32,
    pub momentum: f32,
    training: bool,
}

impl BatchNorm2d {
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

/// Mean over axes 0, 2 and 3 of `(n, c, h, w)`, kept as `(1, c, 1, 1)`.
fn channel_mean(x: &Tensor) -> Result<Tensor> {
    x.mean_axis(3, true)?.mean_axis(2, true)?.mean_axis(0, true)
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.channels();
        let (n, xc, h, w) = x.dims4().map_err(|_| crate::Error::Invalid {
            op: "BatchNorm2d",
            msg: format!("input must be (n, c, h, w), got {}", x.shape()),
        })?;
        ensure!(
            xc == c,
            "BatchNorm2d",
            "input has {xc} channels, the layer {c}"
        );
        let per = |t: &Tensor| t.reshape([1, c, 1, 1]);
        let (mean, var) = if self.training {
            let count = n * h * w;
            ensure!(
                count > 1,
                "BatchNorm2d",
                "expected more than 1 value per channel when training, got input {}",
                x.shape()
            );
            let mean = channel_mean(x)?;
            let var = channel_mean(&x.sub(&mean)?.square()?)?;
            // running statistics: constants for autograd
            let m = self.momentum;
            let unbiased = var.detach().mul_scalar(count as f32 / (count - 1) as f32)?;
            let flat = |t: &Tensor| t.reshape([c]);
            self.running_mean.set(
                &self
                    .running_mean
                    .as_tensor()
                    .mul_scalar(1.0 - m)?
                    .add(&flat(&mean.detach())?.mul_scalar(m)?)?,
            )?;
            self.running_var.set(
                &self
                    .running_var
                    .as_tensor()
                    .mul_scalar(1.0 - m)?
                    .add(&flat(&unbiased)?.mul_scalar(m)?)?,
            )?;
            self.num_batches_tracked
                .set(&self.num_batches_tracked.as_tensor().add_scalar(1.0)?)?;
            (mean, var)
        } else {
            (
                per(&self.running_mean.as_tensor())?,
                per(&self.running_var.as_tensor())?,
            )
        };
        let norm = x.sub(&mean)?.div(&var.add_scalar(self.eps)?.sqrt()?)?;
        norm.mul(&per(&self.weight.as_tensor())?)?
            .add(&per(&self.bias.as_tensor())?)
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
}
