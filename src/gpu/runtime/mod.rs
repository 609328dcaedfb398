//! The GPU runtime, below every kernel family: one adapter's device and queue, and the small
//! owners the families share through [`GpuContext`]'s methods: the buffer pool (`buffers`), the
//! pending batch (`batch`), the pipeline cache (`kernel`), the error state (`errors`), and the
//! adapter's choice, limits and self-test. Their fields are private to this folder.

mod adapters;
mod batch;
mod buffers;
mod errors;
pub(crate) mod kernel;
pub(crate) mod launch;
pub(crate) mod loops;
pub(crate) mod selftest;
pub(crate) mod tiles;
pub(crate) mod uniforms;

pub use adapters::{enumerate_adapters, AdapterSummary};
pub use buffers::{GpuBuffer, PoolStats};
pub(crate) use kernel::{Bind, Kernel, Module, WG};
pub use selftest::SelfTestReport;
pub use tiles::{GemmTiles, GemmTiling};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Error, Result};

/// The limits that decide how work is split.
#[derive(Clone, Copy, Debug)]
pub struct GpuLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_workgroups_per_dimension: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub min_storage_buffer_offset_alignment: u32,
    /// Most loop iterations a kernel may run per invocation (see [`LOOP_CAP`]).
    pub loop_cap: usize,
    /// The GEMM kernel's tilings.
    pub gemm: GemmTiling,
}

/// Settings of a GPU context beyond the adapter's own.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use at most this many workgroups per dispatch dimension (below the adapter's limit), so
    /// the paths that split large work can be exercised on small inputs.
    pub max_workgroups_per_dimension: Option<u32>,
    /// Most loop iterations any kernel runs per invocation (default [`LOOP_CAP`]); work needing
    /// more is split into passes. Lower it to exercise the split paths on small inputs. The
    /// self-test checks that the adapter runs a loop of this many iterations.
    pub loop_cap: Option<usize>,
    /// Shadow mode: every GPU op is also run on the CPU backend and compared; a mismatch is an
    /// `Err`. `CONVSHADE_CHECK=1` turns it on for every context.
    pub check: bool,
    /// One GEMM tiling for every product (default: a large and a small one by adapter type
    /// and limits, `GemmTiling::for_adapter`).
    pub gemm_tiles: Option<GemmTiles>,
    /// The adapter to open, as an index into [`enumerate_adapters`] (default: the best one).
    pub adapter: Option<usize>,
    /// Bind at most this many bytes of one tensor (below the adapter's largest storage
    /// binding; at least 256). Tensors past it are stored in parts and the ops on them are split
    /// into pieces that fit, so those paths can be exercised on small inputs.
    pub max_storage_binding: Option<u64>,
    /// Most bytes of device memory the context's buffers may hold; an allocation past it frees
    /// the idle pool, then is refused with [`Error::OutOfMemory`]. Default: none on hardware,
    /// whose driver reports its own out-of-memory (it comes back as the same `Err`); on a
    /// software adapter, which takes its memory from the host and crashes when that runs out
    /// (lavapipe), 7/8 of the host memory available when the context is made.
    pub memory_limit: Option<u64>,
    /// Skip the self-test (for `convshade info`, which reports it instead of refusing).
    pub skip_self_test: bool,
    /// Run the plain kernels even where the adapter has subgroup operations (to test and
    /// compare both paths).
    pub no_subgroups: bool,
}

/// Faults injected on purpose, to prove the refusal and mismatch paths (`crate::testing`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    /// Corrupt this self-test canary's device result.
    pub self_test: Option<&'static str>,
    /// Corrupt this op's GPU result in shadow mode.
    pub op: Option<&'static str>,
}

/// Default per-invocation loop budget of every kernel. Mesa's llvmpipe and lavapipe before
/// Mesa 23 stop every loop of a shader after 65,535 iterations in all (one counter shared by all
/// loops of the shader), silently; this leaves a margin of 4x below that.
pub const LOOP_CAP: usize = 16384;

/// Counters of device work, for tests and benchmarks.
#[derive(Default)]
struct Counters {
    created: AtomicUsize,
    reused: AtomicUsize,
    submits: AtomicUsize,
}

/// One adapter, its device and queue, and the state ops share.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: GpuLimits,
    pipelines: kernel::Pipelines,
    pool: buffers::Pool,
    batch: batch::Batch,
    errors: errors::ErrorState,
    counters: Counters,
    check: bool,
    faults: Faults,
    self_test: Mutex<Option<SelfTestReport>>,
    /// The device has `Features::SUBGROUP` enabled.
    subgroups: bool,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({} via {})", self.adapter.name, self.adapter.backend)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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

    /// [`GpuContext::with_options`] with injected faults (test hooks).
    pub(crate) fn with_faults(opts: GpuOptions, faults: Faults) -> Result<Arc<Self>> {
        pollster::block_on(Self::create(opts, faults))
    }

    /// Device creation as a future: native callers block on it ([`GpuContext::with_options`]);
    /// where nothing may block (a browser), the caller awaits it.
    pub(crate) async fn create(opts: GpuOptions, faults: Faults) -> Result<Arc<Self>> {
        let adapter = adapters::pick(&opts).await?;
        let info = adapter.get_info();
        let alimits = adapter.limits();
        // subgroup operations where the adapter has them (reductions use them)
        let features =
            if !opts.no_subgroups && adapter.features().contains(wgpu::Features::SUBGROUP) {
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
        let limits = GpuLimits::new(&alimits, &opts, software)?;
        let memory_limit = opts
            .memory_limit
            .or_else(|| software.then(host_memory_available).flatten().map(|b| b / 8 * 7));
        let ctx = Arc::new(GpuContext {
            errors: errors::ErrorState::new(&device, info.backend == wgpu::Backend::Gl),
            batch: batch::Batch::new(&device, &alimits),
            device,
            queue,
            adapter: AdapterSummary::from_info(&info),
            limits,
            pipelines: kernel::Pipelines::default(),
            pool: buffers::Pool::new(memory_limit),
            // the uniform ring is the first buffer created
            counters: Counters { created: AtomicUsize::new(1), ..Counters::default() },
            check: opts.check || std::env::var("CONVSHADE_CHECK").is_ok_and(|v| v == "1"),
            faults,
            self_test: Mutex::new(None),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
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

    /// The self-test's result, once it has run (see [`GpuContext::run_self_test`]).
    pub fn self_test(&self) -> Option<SelfTestReport> {
        lock(&self.self_test).clone()
    }

    /// Runs the self-test now (again) and records its result.
    pub fn run_self_test(self: &Arc<Self>) -> SelfTestReport {
        let report = pollster::block_on(selftest::run(self, None));
        *lock(&self.self_test) = Some(report.clone());
        report
    }

    /// True in shadow mode: every op is checked against the CPU backend.
    pub fn check_mode(&self) -> bool {
        self.check
    }

    /// The op whose shadow-mode result is corrupted on purpose (a test hook), if any.
    pub(crate) fn fault_op(&self) -> Option<&'static str> {
        self.faults.op
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// How many buffers were created, how many allocations reused a freed one, and how many
    /// command buffers were submitted.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            created: self.counters.created.load(Ordering::Relaxed),
            reused: self.counters.reused.load(Ordering::Relaxed),
            submits: self.counters.submits.load(Ordering::Relaxed),
        }
    }

    /// True where the kernels use subgroup operations (the adapter has them and
    /// `GpuOptions::no_subgroups` is off).
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// The adapter limits in force.
    pub fn limits(&self) -> &GpuLimits {
        &self.limits
    }

    /// The device memory limit in force (`GpuOptions::memory_limit`), in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        self.pool.memory_limit()
    }

    /// Destroys the device, as a driver reset or an unplugged GPU would lose it (a test hook):
    /// every later call on this context is an `Err`; a new context works.
    pub(crate) fn lose_device(&self) {
        let _serial = self.serial();
        self.device.destroy();
        // the callback may come later; the context is lost from now on
        self.mark_lost();
    }
}

impl GpuLimits {
    fn new(a: &wgpu::Limits, opts: &GpuOptions, software: bool) -> Result<Self> {
        let gemm = match opts.gemm_tiles {
            Some(t) => GemmTiling::uniform(t),
            None => GemmTiling::for_adapter(software, a),
        };
        gemm.check(a)?;
        Ok(GpuLimits {
            max_buffer_size: a.max_buffer_size,
            max_storage_buffer_binding_size: opts
                .max_storage_binding
                .map_or(a.max_storage_buffer_binding_size, |m| {
                    m.clamp(256, a.max_storage_buffer_binding_size)
                }),
            max_workgroups_per_dimension: opts
                .max_workgroups_per_dimension
                .map_or(a.max_compute_workgroups_per_dimension, |m| {
                    m.clamp(1, a.max_compute_workgroups_per_dimension)
                }),
            max_storage_buffers_per_shader_stage: a.max_storage_buffers_per_shader_stage,
            max_compute_invocations_per_workgroup: a.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: a.max_compute_workgroup_storage_size,
            min_storage_buffer_offset_alignment: a.min_storage_buffer_offset_alignment,
            loop_cap: opts
                .loop_cap
                .unwrap_or(LOOP_CAP)
                .max(loops::MIN_LOOP_CAP)
                .max(gemm.min_loop_cap()),
            gemm,
        })
    }
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
