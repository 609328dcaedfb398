//! The GPU context: one adapter's device and queue and the state ops share (pipelines, the
//! buffer pool, the pending batch), and how device errors come back to the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::adapters::{self, AdapterSummary};
use super::batch::Pending;
use super::buffers::{BufferPool, PoolStats};
use super::kernels::Shader;
use super::selftest::SelfTestReport;
use super::tiles::{GemmTiles, GemmTiling};
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
    /// the idle pool, then is refused with an out-of-memory `Err`. Default: none on hardware,
    /// whose driver reports its own out-of-memory (it comes back as an `Err` too); on a
    /// software adapter, which takes its memory from the host and crashes when that runs out
    /// (lavapipe), 7/8 of the host memory available when the context is made.
    pub memory_limit: Option<u64>,
    /// Skip the self-test (for `convshade info`, which reports it instead of refusing).
    pub skip_self_test: bool,
    /// Run the plain kernels even where the adapter has subgroup operations (to test and
    /// compare both paths).
    pub no_subgroups: bool,
    /// Test hook: corrupt this self-test canary's device result, to prove the refusal path.
    #[doc(hidden)]
    pub fault_self_test: Option<&'static str>,
    /// Test hook: corrupt this op's GPU result in shadow mode, to prove the mismatch path.
    #[doc(hidden)]
    pub fault_op: Option<&'static str>,
}

/// Default per-invocation loop budget of every kernel. Mesa's llvmpipe and lavapipe before
/// Mesa 23 stop every loop of a shader after 65,535 iterations in all (one counter shared by all
/// loops of the shader), silently; this leaves a margin of 4x below that.
pub const LOOP_CAP: usize = 16384;

/// One adapter, its device and queue, and the state ops share.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(crate) adapter: AdapterSummary,
    pub(crate) limits: GpuLimits,
    pub(super) pipelines: Mutex<HashMap<(Shader, &'static str, GemmTiles), wgpu::ComputePipeline>>,
    pub(super) modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pub(super) pool: Mutex<BufferPool>,
    pub(super) pending: Mutex<Pending>,
    pub(super) errors: Arc<Mutex<Vec<String>>>,
    pub(super) lost: Arc<AtomicBool>,
    /// Serializes every device call on GL, whose driver context wgpu guards with a lock that
    /// panics after a few seconds of contention (a long llvmpipe wait in one thread would make
    /// another thread's allocation abort).
    pub(super) gl_serial: Option<Mutex<()>>,
    pub(super) stats: Mutex<PoolStats>,
    /// Batches whose submission reported an error.
    pub(super) poisoned: Mutex<Vec<u64>>,
    pub(super) check: bool,
    pub(crate) fault_op: Option<&'static str>,
    pub(super) self_test: Mutex<Option<SelfTestReport>>,
    /// One uniform slot per dispatch of a batch (`uniform_slot` bytes each), written with the
    /// queue as the dispatch is recorded: no uniform buffer is created per dispatch.
    pub(super) uniforms: wgpu::Buffer,
    pub(super) uniform_slot: u64,
    /// The device has `Features::SUBGROUP` enabled.
    pub(super) subgroups: bool,
    /// `GpuOptions::memory_limit` in force.
    pub(super) memory_limit: Option<u64>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuContext({} via {})",
            self.adapter.name, self.adapter.backend
        )
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuContext {
    /// Opens the best adapter wgpu finds (hardware before software, native APIs before GL).
    pub fn new() -> Result<Arc<Self>> {
        Self::with_options(GpuOptions::default())
    }

    /// [`GpuContext::new`] with options.
    /// Unless `skip_self_test` is set, the adapter must pass the self-test
    /// ([`super::selftest`]): one that fails is refused with an `Err` naming the adapter, its
    /// driver and the failed check.
    pub fn with_options(opts: GpuOptions) -> Result<Arc<Self>> {
        let adapter = adapters::pick(&opts)?;
        let info = adapter.get_info();
        let alimits = adapter.limits();
        // subgroup operations where the adapter has them (reductions use them, src/gpu/reduce.rs)
        let features =
            if !opts.no_subgroups && adapter.features().contains(wgpu::Features::SUBGROUP) {
                wgpu::Features::SUBGROUP
            } else {
                wgpu::Features::empty()
            };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("convshade"),
            required_features: features,
            required_limits: alimits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::NoAdapter(format!("{}: request_device failed: {e}", info.name)))?;
        let (errors, lost) = error_sinks(&device);
        let check = opts.check || std::env::var("CONVSHADE_CHECK").is_ok_and(|v| v == "1");
        let uniform_slot = super::batch::MAX_PARAMS.next_multiple_of(u64::from(
            alimits.min_uniform_buffer_offset_alignment.max(16),
        ));
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params ring"),
            size: uniform_slot * super::batch::MAX_PENDING as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let limits = GpuLimits::new(&alimits, &opts, info.device_type == wgpu::DeviceType::Cpu)?;
        let ctx = Arc::new(GpuContext {
            device,
            queue,
            adapter: AdapterSummary::from_info(&info),
            limits,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            pool: Mutex::new(BufferPool::default()),
            pending: Mutex::new(Pending::new()),
            poisoned: Mutex::new(Vec::new()),
            errors,
            lost,
            gl_serial: (info.backend == wgpu::Backend::Gl).then(|| Mutex::new(())),
            // the uniform ring is the first buffer created
            stats: Mutex::new(PoolStats {
                created: 1,
                ..PoolStats::default()
            }),
            check,
            fault_op: opts.fault_op,
            self_test: Mutex::new(None),
            uniforms,
            uniform_slot,
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            memory_limit: opts.memory_limit.or_else(|| {
                (info.device_type == wgpu::DeviceType::Cpu)
                    .then(host_memory_available)
                    .flatten()
                    .map(|b| b / 8 * 7)
            }),
        });
        if !opts.skip_self_test {
            ctx.refuse_unless_self_test_passes(opts.fault_self_test)?;
        }
        Ok(ctx)
    }

    fn refuse_unless_self_test_passes(self: &Arc<Self>, fault: Option<&str>) -> Result<()> {
        let report = super::selftest::run(self, fault);
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
        let report = super::selftest::run(self, None);
        *lock(&self.self_test) = Some(report.clone());
        report
    }
    /// True in shadow mode: every op is checked against the CPU backend.
    pub fn check_mode(&self) -> bool {
        self.check
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// How many buffers were created, how many allocations reused a freed one, and how many
    /// command buffers were submitted.
    pub fn pool_stats(&self) -> PoolStats {
        *lock(&self.stats)
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
        self.memory_limit
    }

    pub(super) fn serial(&self) -> Option<MutexGuard<'_, ()>> {
        self.gl_serial.as_ref().map(lock)
    }

    /// Turns the errors wgpu raised outside any error scope (from any thread) since the last
    /// check into an `Err`, and reports a lost device.
    pub(crate) fn check(&self) -> Result<()> {
        let mut errs = lock(&self.errors);
        if !errs.is_empty() {
            let msg = errs.join("; ");
            errs.clear();
            return Err(Error::Gpu(msg));
        }
        self.check_lost()
    }

    /// Test hook: destroys the device, as a driver reset or an unplugged GPU would lose it.
    /// Every later call on this context is an `Err`; a new context works.
    #[doc(hidden)]
    pub fn lose_device_for_test(&self) {
        let _serial = self.serial();
        self.device.destroy();
        // the callback may come later; the context is lost from now on
        self.lost.store(true, Ordering::SeqCst);
    }

    fn check_lost(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::Gpu("device lost".into()));
        }
        Ok(())
    }

    /// Runs device calls inside error scopes, which wgpu keeps per thread: the errors they raise
    /// come back to this caller alone, never to another thread's call.
    pub(super) fn scoped<T>(&self, f: impl FnOnce() -> T) -> (T, Result<()>) {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors: Vec<String> = [validation.pop(), oom.pop(), internal.pop()]
            .into_iter()
            .filter_map(|fut| pollster::block_on(fut).map(|e| e.to_string()))
            .collect();
        let status = if errors.is_empty() {
            self.check_lost()
        } else {
            Err(Error::Gpu(errors.join("; ")))
        };
        (out, status)
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
                .max(super::loops::MIN_LOOP_CAP)
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

/// The shared list that collects errors raised outside any scope, and the device-lost flag.
fn error_sinks(device: &wgpu::Device) -> (Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        lock(&sink).push(e.to_string());
    }));
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = lost.clone();
    let lost_sink = errors.clone();
    device.set_device_lost_callback(move |reason, msg| {
        lost_flag.store(true, Ordering::SeqCst);
        lock(&lost_sink).push(format!("device lost ({reason:?}): {msg}"));
    });
    (errors, lost)
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
        std::thread::scope(|s| {
            let raiser = s.spawn(|| {
                for _ in 0..20 {
                    let _serial = ctx.serial();
                    // unscoped: size not a multiple of 4 with mapped_at_creation is invalid
                    let _ = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("bad on purpose"),
                        size: 6,
                        usage: wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: true,
                    });
                }
            });
            let worker = s.spawn(|| {
                let mut results = Vec::new();
                for i in 0..40 {
                    // distinct sizes, so each allocation creates a buffer in a scope
                    results.push(ctx.alloc(1000 + 64 * i, "test").map(|_| ()));
                }
                results
            });
            // a scoped error of this thread comes back here, and names its own call
            for _ in 0..20 {
                // device calls are serialized on GL, as everywhere in the context
                let _serial = ctx.serial();
                let (_, status) = ctx.scoped(|| {
                    ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("mine"),
                        size: 6,
                        usage: wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: true,
                    })
                });
                let e = status.expect_err("a scoped error must come back to its caller");
                assert!(e.to_string().contains("mine"), "{e}");
                assert!(!e.to_string().contains("bad on purpose"), "{e}");
            }
            raiser.join().unwrap();
            for r in worker.join().unwrap() {
                r.expect("another thread's error must not fail this thread's scoped call");
            }
        });
        let e = ctx
            .check()
            .expect_err("the unscoped errors are reported, not lost");
        assert!(e.to_string().contains("bad on purpose"), "{e}");
        ctx.check().expect("and reported once");
    }
}
