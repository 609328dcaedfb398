//! The benchmark runner: the standard suite ([`suite()`]) timed the same way on every device
//! and, by `tools/bench_torch.py`, on PyTorch; results in one JSON schema ([`report`]) and
//! read against the measured peak of each device ([`peak`]).
//!
//! Timing: one warm-up run, then an inner loop calibrated to run at least
//! [`BenchConfig::min_sample`]; each sample is that loop with the device synced before the clock
//! is read, and the median, min and max are over samples (per run). Nothing is read back.

pub mod peak;
pub mod report;
pub mod suite;
mod volume;

use web_time::{Duration, Instant};

use crate::{Device, Result};

pub use report::{BenchResult, Report};
pub use suite::{suite, BenchCase};

/// The timed part of a case: runs the op once.
pub type BenchOp = Box<dyn FnMut() -> Result<()>>;

/// How long and how often to run each case.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Samples per case and device.
    pub samples: usize,
    /// The calibrated inner loop runs at least this long.
    pub min_sample: Duration,
    /// No new sample starts once a case has taken this long on a device (there is always one).
    pub budget: Duration,
}

impl BenchConfig {
    /// The full run: 10 samples of at least 50 ms each.
    pub fn full() -> Self {
        BenchConfig {
            samples: 10,
            min_sample: Duration::from_millis(50),
            budget: Duration::from_secs(20),
        }
    }

    /// `--quick`: 3 samples of at least 5 ms, at most about 2 s per case and device.
    pub fn quick() -> Self {
        BenchConfig {
            samples: 3,
            min_sample: Duration::from_millis(5),
            budget: Duration::from_secs(2),
        }
    }
}

/// `"cpu"` or `"gpu"`: the device column of the results, the same for every engine.
pub fn device_kind(dev: &Device) -> &'static str {
    if dev.is_gpu() {
        "gpu"
    } else {
        "cpu"
    }
}

/// Runs `op` `n` times, then syncs: the seconds per run.
fn time_runs(op: &mut BenchOp, dev: &Device, n: usize) -> Result<f64> {
    let t0 = Instant::now();
    for _ in 0..n {
        op()?;
    }
    dev.sync()?;
    Ok(t0.elapsed().as_secs_f64() / n as f64)
}

/// Times one case on one device.
pub fn run_case(case: &BenchCase, dev: &Device, cfg: &BenchConfig) -> Result<BenchResult> {
    let mut op = (case.build)(dev)?;
    let start = Instant::now();
    // the warm-up run also sizes the inner loop and counts the GPU's submits and dispatches
    let (once, counts) = warm_up(&mut op, dev)?;
    let inner = (cfg.min_sample.as_secs_f64() / once.max(1e-9)).ceil() as usize;
    let inner = inner.clamp(1, 1 << 20);
    let mut per_run = Vec::with_capacity(cfg.samples);
    while per_run.is_empty() || (per_run.len() < cfg.samples && start.elapsed() < cfg.budget) {
        per_run.push(time_runs(&mut op, dev, inner)?);
    }
    Ok(BenchResult {
        submits: counts.map(|c| c.0),
        dispatches: counts.map(|c| c.1),
        ..BenchResult::from_samples(&case.name, device_kind(dev), &per_run, inner, case.flops)
            .with_bytes(case.bytes)
    })
}

/// One untimed run: its seconds, and on the GPU the command buffers it submitted (its sync
/// included; the inputs' uploads are submitted before it starts) and the dispatches it recorded.
/// On the GPU a first run goes before it, so that compiling pipelines and tuning tilings on
/// first use count neither in the time nor in the counts.
fn warm_up(op: &mut BenchOp, dev: &Device) -> Result<(f64, Option<(usize, usize)>)> {
    let Device::Gpu(ctx) = dev else {
        return Ok((time_runs(op, dev, 1)?, None));
    };
    time_runs(op, dev, 1)?;
    let before = ctx.pool_stats();
    let once = time_runs(op, dev, 1)?;
    let after = ctx.pool_stats();
    Ok((once, Some((after.submits - before.submits, after.dispatches - before.dispatches))))
}

/// Every case of the suite that `keep` accepts, on every device; `on_start(case, device)` is
/// called before each measurement (for a progress display).
pub fn run(
    devices: &[Device], cfg: &BenchConfig, keep: impl Fn(&str) -> bool,
    mut on_start: impl FnMut(&str, &Device),
) -> Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    for case in suite().into_iter().filter(|c| keep(&c.name)) {
        for dev in devices {
            if case.hardware_only && matches!(dev, Device::Gpu(c) if c.adapter().is_software) {
                continue;
            }
            on_start(&case.name, dev);
            out.push(run_case(&case, dev, cfg)?);
        }
    }
    Ok(out)
}
