//! `nn.Dropout`: seeded masks in training, the identity in evaluation.

use crate::nn::Window;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Module;
use crate::{ensure, Result, Tensor};

/// Zeroes each element with probability `p` in training and scales the rest by `1 / (1 - p)`,
/// as PyTorch does; passes its input through in evaluation (`set_training(false)`). Masks come
/// from a ChaCha8 stream seeded by `seed` and the call count, so a run is reproducible and the
/// same on every device.
pub struct Dropout {
    p: f32,
    seed: u64,
    training: bool,
    calls: AtomicU64,
}

impl Dropout {
    /// `p` in `[0, 1)`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout> {
        ensure!((0.0..1.0).contains(&p), "dropout", "probability p must lie in [0, 1), got {p}");
        Ok(Dropout { p, seed, training: true, calls: AtomicU64::new(0) })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let keep = 1.0 / (1.0 - self.p);
        let mut mask = crate::cpu::host_vec(x.elem_count(), 0.0, "dropout")?;
        mask.iter_mut().for_each(|m| {
            if rng.random::<f32>() >= self.p {
                *m = keep;
            }
        });
        // the mask is a constant: the gradient is the mask too
        x.mul(&Tensor::from_vec(mask, x.dims().to_vec(), &x.device())?)
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn window(&self) -> Window {
        Window::Pointwise
    }
}
