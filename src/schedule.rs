//! Learning-rate schedules, as PyTorch's `StepLR` and `CosineAnnealingLR` (closed forms): call
//! [`Scheduler::step`] once per epoch, after the epoch's optimizer steps.

use crate::{ensure, Optimizer, Result};

/// A learning rate as a function of the epoch count.
pub trait LrSchedule {
    /// The rate after `epoch` calls of `step`, from the optimizer's rate at creation `base`.
    fn rate(&self, base: f32, epoch: usize) -> f32;
}

/// `StepLR`: `base * gamma^(epoch / step_size)`.
pub struct StepLr {
    /// Epochs between decays.
    pub step_size: usize,
    /// Factor the rate is multiplied by every `step_size` epochs.
    pub gamma: f32,
}

/// `CosineAnnealingLR`: `eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2`.
pub struct CosineLr {
    /// Epochs of the half cosine, from the base rate down to `eta_min`.
    pub t_max: usize,
    /// The least rate.
    pub eta_min: f32,
}

impl StepLr {
    /// Decays by `gamma` every `step_size` epochs; `step_size` must be positive.
    pub fn new(step_size: usize, gamma: f32) -> Result<StepLr> {
        ensure!(step_size > 0, "StepLr", "step_size must be positive, got 0");
        ensure!(
            gamma.is_finite() && gamma >= 0.0,
            "StepLr",
            "gamma must be finite and non-negative, got {gamma}"
        );
        Ok(StepLr { step_size, gamma })
    }
}

impl CosineLr {
    /// Anneals to `eta_min` over `t_max` epochs; `t_max` must be positive.
    pub fn new(t_max: usize, eta_min: f32) -> Result<CosineLr> {
        ensure!(t_max > 0, "CosineLr", "t_max must be positive, got 0");
        ensure!(
            eta_min.is_finite() && eta_min >= 0.0,
            "CosineLr",
            "eta_min must be finite and non-negative, got {eta_min}"
        );
        Ok(CosineLr { t_max, eta_min })
    }
}

impl LrSchedule for StepLr {
    fn rate(&self, base: f32, epoch: usize) -> f32 {
        let k = i32::try_from(epoch / self.step_size).unwrap_or(i32::MAX);
        (base as f64 * (self.gamma as f64).powi(k)) as f32
    }
}

impl LrSchedule for CosineLr {
    fn rate(&self, base: f32, epoch: usize) -> f32 {
        let (base, min) = (base as f64, self.eta_min as f64);
        let phase = std::f64::consts::PI * epoch as f64 / self.t_max as f64;
        (min + (base - min) * (1.0 + phase.cos()) / 2.0) as f32
    }
}

/// A schedule driving an optimizer's learning rate, epoch by epoch.
pub struct Scheduler<S: LrSchedule> {
    schedule: S,
    base: f32,
    epoch: usize,
}

impl<S: LrSchedule> Scheduler<S> {
    /// Starts from the optimizer's current rate.
    pub fn new(schedule: S, opt: &dyn Optimizer) -> Self {
        Scheduler { schedule, base: opt.learning_rate(), epoch: 0 }
    }
    /// Ends an epoch: sets the optimizer's rate for the next one.
    pub fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        self.epoch += 1;
        opt.set_learning_rate(self.schedule.rate(self.base, self.epoch))
    }
    /// Epochs ended so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }
}
