//! Batch norm whose batch statistics are taken over every rank's batch, as PyTorch's
//! `SyncBatchNorm`: the per-channel sums are all-reduced forward, and their gradients backward.

use std::time::Duration;

use super::world::all_reduce_sum;
use crate::nn::{BatchNorm2d, Module};
use crate::{no_grad, Device, Error, Result, Tensor, Var};

/// [`BatchNorm2d`] with statistics over the whole distributed batch in training (in evaluation,
/// the running statistics, as `BatchNorm2d`). Its state-dict keys are `BatchNorm2d`'s.
pub struct SyncBatchNorm2d {
    /// The layer whose parameters, buffers and evaluation it uses.
    pub bn: BatchNorm2d,
    training: bool,
}

/// The elements of `t` summed over every rank; its gradient is the upstream gradients summed
/// over every rank (each rank's loss depends on every rank's statistics).
fn all_reduce(t: &Tensor) -> Result<Tensor> {
    let mut host = t.to_vec()?;
    all_reduce_sum("SyncBatchNorm2d", &mut host, Duration::from_secs(60));
    let y = Tensor::from_vec(host, t.dims().to_vec(), &t.device())?;
    Ok(y.attach(&[t], |g| Ok(vec![Some(all_reduce(g)?)])))
}

/// Per-channel sums `(c)` of `x (n, c, h, w)`.
fn channel_sums(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape([n, c, h * w])?.sum_axis(2, false)?.sum_axis(0, false)
}

impl SyncBatchNorm2d {
    /// Over `channels` channels on `device`, PyTorch's defaults (eps 1e-5, momentum 0.1).
    pub fn new(channels: usize, device: &Device) -> Result<SyncBatchNorm2d> {
        Ok(SyncBatchNorm2d { bn: BatchNorm2d::new(channels, device)?, training: true })
    }

    /// An existing layer made synchronised (PyTorch's `convert_sync_batchnorm`).
    pub fn from_batch_norm(bn: BatchNorm2d) -> SyncBatchNorm2d {
        SyncBatchNorm2d { bn, training: true }
    }

    fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4().map_err(|_| Error::Invalid {
            op: "SyncBatchNorm2d",
            msg: format!("input must be (n, c, h, w), got {}", x.shape()),
        })?;
        let mut count = [(n * h * w) as f32];
        all_reduce_sum("SyncBatchNorm2d", &mut count, Duration::from_secs(60));
        let total = count[0];
        let per_channel = |t: &Tensor| t.reshape([1, c, 1, 1]);
        let mean = all_reduce(&channel_sums(x)?)?.mul_scalar(1.0 / total)?; // (c)
        let centred = x.sub(&per_channel(&mean)?)?;
        let var = all_reduce(&channel_sums(&centred.square()?)?)?.mul_scalar(1.0 / total)?;
        let scale = var.add_scalar(self.bn.eps)?.sqrt()?; // (c)
        let y = centred
            .div(&per_channel(&scale)?)?
            .mul(&per_channel(&self.bn.weight.as_tensor())?)?
            .add(&per_channel(&self.bn.bias.as_tensor())?)?;
        no_grad(|| self.update_running(&mean, &var, total))?;
        Ok(y)
    }

    /// The running statistics moved toward the batch's (the variance unbiased), as PyTorch.
    fn update_running(&self, mean: &Tensor, var: &Tensor, total: f32) -> Result<()> {
        let m = self.bn.momentum;
        let unbiased = var.mul_scalar(total / (total - 1.0).max(1.0))?;
        let step = |running: &Var, batch: &Tensor| -> Result<()> {
            let r = running.as_tensor();
            running.set(&r.mul_scalar(1.0 - m)?.add(&batch.detach().mul_scalar(m)?)?)
        };
        step(&self.bn.running_mean, mean)?;
        step(&self.bn.running_var, &unbiased)?;
        let t = self.bn.num_batches_tracked.as_tensor();
        self.bn.num_batches_tracked.set(&t.add_scalar(1.0)?)
    }
}

impl Module for SyncBatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.training {
            true => self.forward_train(x),
            false => self.bn.forward(x),
        }
    }
    fn parameters(&self) -> Vec<Var> {
        self.bn.parameters()
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        self.bn.named_state()
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.bn.set_training(training);
    }
    fn window(&self) -> crate::nn::Window {
        crate::nn::Window::Pointwise
    }
}
