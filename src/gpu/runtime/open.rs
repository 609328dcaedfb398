//! Opening a context: the adapter's choice, the device, and the self-test that must pass.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use super::adapters::{self, AdapterSummary};
use super::batch::Batch;
use super::context::{Counters, GpuContext, GpuLimits, SelfTestReport};
use super::errors::ErrorState;
use super::kernel::Pipelines;
use super::lock::lock;
use super::options::{Faults, GpuOptions};
use super::pool::Pool;
use super::readback::block_on;
use super::selftest;
use super::tune::{default_cache_path, Tuner, Tuning};
use crate::{Error, Result};

impl GpuContext {
    /// Opens the best adapter wgpu finds (hardware before software, native APIs before GL).
    pub fn new() -> Result<Arc<Self>> {
        Self::with_options(GpuOptions::default())
    }

    /// [`GpuContext::new`] with options. Unless `skip_self_test` is set, the adapter must pass
    /// the self-test: one that fails is refused with [`Error::AdapterRefused`] naming the
    /// adapter, its driver and the failed check.
    pub fn with_options(opts: GpuOptions) -> Result<Arc<Self>> {
        Self::with_faults(opts, Faults::default())
    }

    /// [`GpuContext::new`] as a future, which a web page awaits (there the blocking forms are
    /// an `Err`).
    pub async fn new_async() -> Result<Arc<Self>> {
        Self::create(GpuOptions::default(), Faults::default()).await
    }

    /// [`GpuContext::with_options`] as a future.
    pub async fn with_options_async(opts: GpuOptions) -> Result<Arc<Self>> {
        Self::create(opts, Faults::default()).await
    }

    /// [`GpuContext::with_options`] with injected faults (test hooks).
    pub(crate) fn with_faults(opts: GpuOptions, faults: Faults) -> Result<Arc<Self>> {
        block_on("GpuContext::new", Self::create(opts, faults))
    }

    /// Device creation as a future: native callers block on it ([`GpuContext::with_options`]);
    /// where nothing may block (a browser), the caller awaits it.
    pub(crate) async fn create(opts: GpuOptions, faults: Faults) -> Result<Arc<Self>> {
        let adapter = adapters::pick(&opts).await?;
        let info = adapter.get_info();
        let alimits = adapter.limits();
        // subgroup operations where the adapter has them (reductions and the GEMM's subgroup
        // variant use them), unless turned off
        let off = opts.no_subgroups || std::env::var("CONVSHADE_SUBGROUPS").is_ok_and(|v| v == "0");
        let features = if !off && adapter.features().contains(wgpu::Features::SUBGROUP) {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("convshade"),
                required_features: features,
                required_limits: alimits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoAdapter(format!("{}: request_device failed: {e}", info.name)))?;
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        let limits = GpuLimits::new(&alimits, &opts, software, subgroups)?;
        // the subgroup GEMM's candidates need subgroups of one size, known ahead
        let fixed = info.subgroup_min_size == info.subgroup_max_size;
        let lanes = (subgroups && fixed).then_some(info.subgroup_min_size);
        let memory_limit = opts
            .memory_limit
            .or_else(|| software.then(host_memory_available).flatten().map(|b| b / 8 * 7));
        let adapter = AdapterSummary::from_info(&info);
        let tuner = tuner(&opts, &adapter, &limits, (&alimits, lanes))?;
        let ctx = Arc::new(GpuContext {
            errors: ErrorState::new(&device),
            gl_serial: (info.backend == wgpu::Backend::Gl).then(|| Mutex::new(())),
            batch: Batch::new(&device, &alimits),
            device,
            queue,
            adapter,
            tuner,
            limits,
            pipelines: Pipelines::default(),
            pool: Pool::new(memory_limit),
            // the uniform ring is the first buffer created
            counters: Counters { created: AtomicUsize::new(1), ..Counters::default() },
            check: opts.check || std::env::var("CONVSHADE_CHECK").is_ok_and(|v| v == "1"),
            faults,
            self_test: Mutex::new(None),
            checks: Mutex::new(Vec::new()),
            subgroups,
        });
        if !opts.skip_self_test {
            ctx.refuse_unless_self_test_passes(faults.self_test).await?;
        }
        Ok(ctx)
    }

    async fn refuse_unless_self_test_passes(self: &Arc<Self>, fault: Option<&str>) -> Result<()> {
        let report = selftest::run(self, fault).await;
        let failed = report.failure.clone();
        *lock(&self.self_test) = Some(report);
        match failed {
            None => Ok(()),
            Some(why) => Err(Error::AdapterRefused(format!(
                "{} ({}, driver {}) failed the self-test: {why}",
                self.adapter.name, self.adapter.backend, self.adapter.driver
            ))),
        }
    }

    /// Runs the self-test now (again) and records its result. In a web page, where nothing
    /// may block, it reports a failure: await [`GpuContext::run_self_test_async`] there.
    pub fn run_self_test(self: &Arc<Self>) -> SelfTestReport {
        let report = block_on("run_self_test", async { Ok(self.run_self_test_async().await) });
        report.unwrap_or_else(|e| SelfTestReport {
            passed: Vec::new(),
            failure: Some(e.to_string()),
            millis: 0.0,
        })
    }

    /// [`GpuContext::run_self_test`] as a future.
    pub async fn run_self_test_async(self: &Arc<Self>) -> SelfTestReport {
        let report = selftest::run(self, None).await;
        *lock(&self.self_test) = Some(report.clone());
        report
    }
    /// Destroys the device, as a driver reset or an unplugged GPU would lose it (a test hook):
    /// every later call on this context is an `Err`; a new context works.
    pub(crate) fn lose_device(&self) {
        let _serial = self.serial();
        self.device.destroy();
        self.mark_lost();
    }
}

/// The context's tuner: its mode and cache from the options, the environment or the defaults,
/// and the candidate tilings that fit the adapter.
fn tuner(
    opts: &GpuOptions, a: &AdapterSummary, limits: &GpuLimits,
    (alimits, lanes): (&wgpu::Limits, Option<u32>),
) -> Result<Tuner> {
    let env = Tuning::from_env(std::env::var("CONVSHADE_TUNE").ok().as_deref())?;
    let mode = match opts.gemm_tiles {
        Some(_) => Tuning::Off,
        // timing candidates waits for the device, which a web page may not do
        None if cfg!(target_arch = "wasm32") => Tuning::Off,
        None => opts.tuning.or(env).unwrap_or(match a.is_software {
            true => Tuning::Cached,
            false => Tuning::OnFirstUse,
        }),
    };
    let path = opts
        .tune_cache
        .clone()
        .or_else(|| std::env::var_os("CONVSHADE_TUNE_CACHE").map(Into::into))
        .or_else(default_cache_path);
    let candidates = limits.gemm.candidates(a.is_software, alimits, limits.loop_cap, lanes);
    // the candidates and the kernels' text too: a winner among other kernels is stale
    let mut kernels = flate2::Crc::new();
    kernels.update(format!("{candidates:?}").as_bytes());
    kernels.update(crate::gpu::gemm_source().as_bytes());
    let fingerprint = format!(
        "{} ({}) | {} | convshade {} | kernels {:08x}",
        a.name,
        a.backend,
        a.driver,
        env!("CARGO_PKG_VERSION"),
        kernels.sum()
    );
    Ok(Tuner::new(mode, path, fingerprint, candidates))
}

/// Host memory available now, in bytes (Linux's `MemAvailable`; None elsewhere).
fn host_memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A context on the default adapter for unit tests, or `None` (with a loud line) where there is
/// none; with `CONVSHADE_REQUIRE_GPU=1` a missing adapter fails the test instead.
#[cfg(test)]
pub(crate) fn test_context() -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("CONVSHADE_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("CONVSHADE_REQUIRE_GPU=1 but no GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("!!! SKIPPING GPU CHECK: no GPU adapter ({e}) !!!");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error raised outside any scope (here: straight on the device, by another thread) is
    /// not pinned on a scoped call of this thread; it surfaces at the next check, once.
    #[test]
    fn scoped_errors_stay_with_their_thread() {
        let Some(ctx) = test_context() else {
            return;
        };
        let bad = |label| wgpu::BufferDescriptor {
            label: Some(label),
            // not a multiple of 4 with mapped_at_creation: invalid
            size: 6,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        };
        std::thread::scope(|s| {
            let raiser = s.spawn(|| {
                for _ in 0..20 {
                    let _serial = ctx.serial();
                    let _ = ctx.device.create_buffer(&bad("bad on purpose"));
                }
            });
            let worker = s.spawn(|| {
                (0..40)
                    // distinct sizes, so each allocation creates a buffer in a scope
                    .map(|i| ctx.alloc(1000 + 64 * i, "test").map(|_| ()))
                    .collect::<Vec<_>>()
            });
            // a scoped error of this thread comes back here, and names its own call
            for _ in 0..20 {
                // device calls are serialized on GL, as everywhere in the context
                let _serial = ctx.serial();
                let (_, status) = ctx.scoped("test", || ctx.device.create_buffer(&bad("mine")));
                let e = status.expect_err("a scoped error must come back to its caller");
                assert!(matches!(e, Error::Gpu(_)), "{e}");
                assert!(e.to_string().contains("mine"), "{e}");
                assert!(!e.to_string().contains("bad on purpose"), "{e}");
            }
            raiser.join().unwrap();
            for r in worker.join().unwrap() {
                r.expect("another thread's error must not fail this thread's scoped call");
            }
        });
        let e = ctx.check().expect_err("the unscoped errors are reported, not lost");
        assert!(e.to_string().contains("bad on purpose"), "{e}");
        ctx.check().expect("and reported once");
    }
}
