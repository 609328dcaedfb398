//! The GPU context: adapter, device and queue, a pipeline cache, a buffer pool, and the pending
//! command encoder that ops record into until a readback or an explicit sync submits it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wgpu::util::DeviceExt;

use crate::{Error, Result};

/// A WGSL module of `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Unary,
    Binary,
    Reduce,
    Copy,
    Gemm,
    Conv,
    Pool,
    Upsample,
    SelfTest,
}

impl Shader {
    pub(crate) const ALL: [Shader; 9] = [
        Shader::Unary,
        Shader::Binary,
        Shader::Reduce,
        Shader::Copy,
        Shader::Gemm,
        Shader::Conv,
        Shader::Pool,
        Shader::Upsample,
        Shader::SelfTest,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shader::Unary => "unary",
            Shader::Binary => "binary",
            Shader::Reduce => "reduce",
            Shader::Copy => "copy",
            Shader::Gemm => "gemm",
            Shader::Conv => "conv",
            Shader::Pool => "pool",
            Shader::Upsample => "upsample",
            Shader::SelfTest => "selftest",
        }
    }

    pub(crate) fn source(self) -> &'static str {
        match self {
            Shader::Unary => include_str!("../../shaders/unary.wgsl"),
            Shader::Binary => include_str!("../../shaders/binary.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Copy => include_str!("../../shaders/copy.wgsl"),
            Shader::Gemm => include_str!("../../shaders/gemm.wgsl"),
            Shader::Conv => include_str!("../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Upsample => include_str!("../../shaders/upsample.wgsl"),
            Shader::SelfTest => include_str!("../../shaders/selftest.wgsl"),
        }
    }
}

/// Every WGSL module with its name, for tools and tests (naga validation).
pub fn shader_sources() -> Vec<(&'static str, &'static str)> {
    Shader::ALL.iter().map(|s| (s.name(), s.source())).collect()
}

/// What `convshade info` and `Device::auto` need to know about an adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub is_software: bool,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            is_software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

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
}

/// Freed buffers by size class, reused by later allocations.
#[derive(Default)]
struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    bytes: u64,
}

/// The pool keeps at most this many bytes of idle buffers.
const POOL_MAX_BYTES: u64 = 1 << 30;
/// Pending dispatches before an automatic submit, to bound the encoder's size.
const MAX_PENDING: usize = 512;

/// The encoder that ops record into, and its batch number. Every buffer a batch touches
/// remembers that number, so when a batch fails (wgpu reports an encoder's errors only when it is
/// finished or submitted) every tensor it touched turns into an error instead of stale data.
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    ops: usize,
    epoch: u64,
}

/// One adapter, its device and queue, and the state ops share.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    queue: wgpu::Queue,
    pub(crate) adapter: AdapterSummary,
    pub(crate) limits: GpuLimits,
    pipelines: Mutex<HashMap<(Shader, &'static str), wgpu::ComputePipeline>>,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pool: Mutex<BufferPool>,
    pending: Mutex<Pending>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<AtomicBool>,
    /// Serializes every device call on GL, whose driver context wgpu guards with a lock that
    /// panics after a few seconds of contention (a long llvmpipe wait in one thread would make
    /// another thread's allocation abort).
    gl_serial: Option<Mutex<()>>,
    stats: Mutex<PoolStats>,
    /// Batches whose submission reported an error.
    poisoned: Mutex<Vec<u64>>,
    check: bool,
    pub(crate) fault_op: Option<&'static str>,
    self_test: Mutex<Option<super::selftest::SelfTestReport>>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn size_class(bytes: u64) -> u64 {
    // Quarter-power-of-two classes: at most 25% waste, good reuse across similar sizes.
    let bytes = bytes.max(16);
    let p = bytes.next_power_of_two();
    let step = (p / 8).max(16);
    bytes.div_ceil(step) * step
}

/// All adapters wgpu finds for the backends `WGPU_BACKEND` allows.
pub fn enumerate_adapters() -> Vec<AdapterSummary> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect()
}

fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 5,
        wgpu::DeviceType::IntegratedGpu => 4,
        wgpu::DeviceType::VirtualGpu => 3,
        wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 1,
    };
    // Native compute APIs over GL when both reach the same hardware.
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        _ => 1,
    };
    (ty, api)
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
    /// The adapter to open, as an index into [`enumerate_adapters`] (default: the best one).
    pub adapter: Option<usize>,
    /// Skip the self-test (for `convshade info`, which reports it instead of refusing).
    pub skip_self_test: bool,
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

/// Buffer pool counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created on the device.
    pub created: usize,
    /// Allocations served by a freed buffer.
    pub reused: usize,
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
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let adapter = match opts.adapter {
            Some(i) => adapters.into_iter().nth(i),
            None => adapters
                .into_iter()
                .max_by_key(|a| adapter_rank(&a.get_info())),
        }
        .ok_or_else(|| {
            Error::NoAdapter(format!("wgpu found no adapter for backends {backends:?}"))
        })?;
        let info = adapter.get_info();
        let alimits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("convshade"),
            required_features: wgpu::Features::empty(),
            required_limits: alimits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::NoAdapter(format!("{}: request_device failed: {e}", info.name)))?;

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

        let limits = GpuLimits {
            max_buffer_size: alimits.max_buffer_size,
            max_storage_buffer_binding_size: alimits.max_storage_buffer_binding_size as u64,
            max_workgroups_per_dimension: opts
                .max_workgroups_per_dimension
                .map_or(alimits.max_compute_workgroups_per_dimension, |m| {
                    m.clamp(1, alimits.max_compute_workgroups_per_dimension)
                }),
            max_storage_buffers_per_shader_stage: alimits.max_storage_buffers_per_shader_stage,
            max_compute_invocations_per_workgroup: alimits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: alimits.max_compute_workgroup_storage_size,
            min_storage_buffer_offset_alignment: alimits.min_storage_buffer_offset_alignment,
            loop_cap: opts
                .loop_cap
                .unwrap_or(LOOP_CAP)
                .max(super::loops::MIN_LOOP_CAP),
        };
        let check = opts.check || std::env::var("CONVSHADE_CHECK").is_ok_and(|v| v == "1");
        let ctx = Arc::new(GpuContext {
            device,
            queue,
            adapter: AdapterSummary::from_info(&info),
            limits,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            pool: Mutex::new(BufferPool::default()),
            pending: Mutex::new(Pending {
                encoder: None,
                ops: 0,
                epoch: 1,
            }),
            poisoned: Mutex::new(Vec::new()),
            errors,
            lost,
            gl_serial: (info.backend == wgpu::Backend::Gl).then(|| Mutex::new(())),
            stats: Mutex::new(PoolStats::default()),
            check,
            fault_op: opts.fault_op,
            self_test: Mutex::new(None),
        });
        if !opts.skip_self_test {
            let report = super::selftest::run(&ctx, opts.fault_self_test);
            let failed = report.failure.clone();
            *lock(&ctx.self_test) = Some(report);
            if let Some(why) = failed {
                return Err(Error::AdapterRefused(format!(
                    "{} ({}, driver {}) failed the self-test: {why}",
                    ctx.adapter.name, ctx.adapter.backend, ctx.adapter.driver
                )));
            }
        }
        Ok(ctx)
    }

    /// The self-test's result, once it has run (see [`GpuContext::run_self_test`]).
    pub fn self_test(&self) -> Option<super::selftest::SelfTestReport> {
        lock(&self.self_test).clone()
    }

    /// Runs the self-test now (again) and records its result.
    pub fn run_self_test(self: &Arc<Self>) -> super::selftest::SelfTestReport {
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

    /// How many buffers were created and how many allocations reused a freed one.
    pub fn pool_stats(&self) -> PoolStats {
        *lock(&self.stats)
    }

    /// The adapter limits in force.
    pub fn limits(&self) -> &GpuLimits {
        &self.limits
    }

    fn serial(&self) -> Option<MutexGuard<'_, ()>> {
        self.gl_serial.as_ref().map(lock)
    }

    /// Turns any error wgpu reported since the last check into an `Err`.
    pub(crate) fn check(&self) -> Result<()> {
        let mut errs = lock(&self.errors);
        if !errs.is_empty() {
            let msg = errs.join("; ");
            errs.clear();
            return Err(Error::Gpu(msg));
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::Gpu("device lost".into()));
        }
        Ok(())
    }

    /// Runs device calls inside this thread's error scopes, so the errors they raise come back
    /// to this caller (not to whichever thread checks the shared list next).
    fn scoped<T>(&self, f: impl FnOnce() -> T) -> (T, Result<()>) {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors: Vec<String> = [validation.pop(), oom.pop(), internal.pop()]
            .into_iter()
            .filter_map(|fut| pollster::block_on(fut).map(|e| e.to_string()))
            .collect();
        let status = if errors.is_empty() {
            self.check()
        } else {
            Err(Error::Gpu(errors.join("; ")))
        };
        (out, status)
    }

    /// An error if `buf` was touched by a batch that failed.
    fn ensure_valid(&self, buf: &GpuBuffer) -> Result<()> {
        let e = buf.epoch.load(Ordering::SeqCst);
        if e != 0 && lock(&self.poisoned).contains(&e) {
            return Err(Error::Gpu(
                "this tensor was computed by GPU work that failed (see the earlier error)".into(),
            ));
        }
        Ok(())
    }

    fn pipeline(&self, shader: Shader, entry: &'static str) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = lock(&self.pipelines).get(&(shader, entry)) {
            return Ok(p.clone());
        }
        let module = {
            let mut modules = lock(&self.modules);
            modules
                .entry(shader)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(shader.name()),
                            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                        })
                })
                .clone()
        };
        let (pipeline, status) = self.scoped(|| {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        });
        status?;
        lock(&self.pipelines).insert((shader, entry), pipeline.clone());
        Ok(pipeline)
    }

    /// A buffer of `len` f32 elements from the pool (contents undefined).
    pub(crate) fn alloc(self: &Arc<Self>, len: usize, op: &'static str) -> Result<GpuBuffer> {
        let bytes = (len as u64) * 4;
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(Error::Invalid {
                op,
                msg: format!(
                    "a tensor of {len} elements ({bytes} bytes) exceeds the adapter's largest storage binding ({max} bytes)"
                ),
            });
        }
        let class = size_class(bytes);
        let _serial = self.serial();
        let reused = {
            let mut pool = lock(&self.pool);
            let b = pool.free.get_mut(&class).and_then(|v| v.pop());
            if b.is_some() {
                pool.bytes -= class;
            }
            b
        };
        let buffer = match reused {
            Some(b) => {
                lock(&self.stats).reused += 1;
                b
            }
            None => {
                lock(&self.stats).created += 1;
                let (b, status) = self.scoped(|| {
                    self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: None,
                        size: class,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                });
                status?;
                b
            }
        };
        Ok(GpuBuffer {
            buffer: Some(buffer),
            len,
            ctx: self.clone(),
            epoch: AtomicU64::new(0),
        })
    }

    fn release(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        {
            let mut pool = lock(&self.pool);
            if pool.bytes + class <= POOL_MAX_BYTES {
                pool.bytes += class;
                pool.free.entry(class).or_default().push(buffer);
                return;
            }
        }
        // Destroying a buffer is a device call: serialize it like the others (GL).
        let _serial = self.serial();
        drop(buffer);
    }

    /// Copies host data into a new buffer.
    pub(crate) fn upload(self: &Arc<Self>, data: &[f32], op: &'static str) -> Result<GpuBuffer> {
        let buf = self.alloc(data.len(), op)?;
        // A pooled buffer may still be read by recorded work, and write_buffer lands before the
        // next submit: submit that work first, and let no other thread submit in between.
        {
            let _serial = self.serial();
            let mut pending = lock(&self.pending);
            self.submit_locked(&mut pending)?;
            self.scoped(|| {
                self.queue
                    .write_buffer(buf.raw(), 0, bytemuck::cast_slice(data))
            })
            .1?;
        }
        Ok(buf)
    }

    /// Submits the pending encoder. Callers hold the pending lock, so submits and host writes
    /// happen in the order they were recorded.
    fn submit_locked(&self, pending: &mut Pending) -> Result<()> {
        pending.ops = 0;
        let Some(enc) = pending.encoder.take() else {
            return self.check();
        };
        let epoch = pending.epoch;
        pending.epoch += 1;
        // Recording errors surface when the encoder is finished: they fail this batch.
        let (_, status) = self.scoped(|| self.queue.submit(Some(enc.finish())));
        status.inspect_err(|_| lock(&self.poisoned).push(epoch))
    }

    /// Records one compute dispatch into the pending encoder. Binding 0 is the uniform `params`;
    /// `bindings` are the storage buffers by binding number, of which `written` are outputs.
    pub(crate) fn dispatch(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &[u8],
        bindings: &[(u32, &GpuBuffer)],
        written: &[u32],
        groups: [u32; 3],
    ) -> Result<()> {
        let whole: Vec<(u32, &GpuBuffer, usize, usize)> =
            bindings.iter().map(|&(i, b)| (i, b, 0, b.len)).collect();
        self.dispatch_ranges(shader, entry, params, &whole, written, groups)
    }

    /// [`GpuContext::dispatch`] with each storage binding a range `(binding, buffer, offset,
    /// len)` of its buffer, in elements; offsets must meet the adapter's alignment.
    pub(crate) fn dispatch_ranges(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &[u8],
        bindings: &[(u32, &GpuBuffer, usize, usize)],
        written: &[u32],
        groups: [u32; 3],
    ) -> Result<()> {
        let max = self.limits.max_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Gpu(format!(
                "{entry}: dispatch {groups:?} exceeds {max} workgroups per dimension"
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let _serial = self.serial();
        let pipeline = self.pipeline(shader, entry)?;
        // Resources first, in this thread's error scopes: a failure here returns before the
        // shared encoder is touched, so other pending work is unaffected.
        let (bind_group, status) = self.scoped(|| {
            let uniform = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: params,
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }];
            for &(binding, buf, offset, len) in bindings {
                entries.push(wgpu::BindGroupEntry {
                    binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf.raw(),
                        offset: (offset * 4) as u64,
                        size: wgpu::BufferSize::new((len.max(1) * 4) as u64),
                    }),
                });
            }
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        });
        status?;
        let mut pending = lock(&self.pending);
        // Checked under the lock, so no batch can fail between the check and the recording.
        for (_, buf, _, _) in bindings {
            self.ensure_valid(buf)?;
        }
        let epoch = pending.epoch;
        {
            let encoder = pending.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("convshade"),
                    })
            });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(entry),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
        }
        // Only outputs carry the batch: inputs made earlier stay valid if this batch fails.
        for (binding, buf, _, _) in bindings {
            if written.contains(binding) {
                buf.epoch.store(epoch, Ordering::SeqCst);
            }
        }
        pending.ops += 1;
        if pending.ops >= MAX_PENDING {
            return self.submit_locked(&mut pending);
        }
        Ok(())
    }

    /// Submits the pending work (if any) without waiting for it.
    pub fn flush(&self) -> Result<()> {
        let _serial = self.serial();
        self.submit_locked(&mut lock(&self.pending))
    }

    /// Submits pending work and waits until the device has finished it.
    pub fn sync(&self) -> Result<()> {
        let _serial = self.serial();
        self.submit_locked(&mut lock(&self.pending))?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        self.check()
    }

    /// Copies a buffer back to the host (submits pending work first).
    pub(crate) fn read(&self, buf: &GpuBuffer) -> Result<Vec<f32>> {
        let bytes = (buf.len * 4) as u64;
        let _serial = self.serial();
        let (staging, status) = self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        status?;
        {
            let mut pending = lock(&self.pending);
            // The copy joins the pending batch, so a failure of that batch fails the read.
            let encoder = pending.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("readback"),
                    })
            });
            encoder.copy_buffer_to_buffer(buf.raw(), 0, &staging, 0, bytes);
            self.submit_locked(&mut pending)?;
        }
        self.ensure_valid(buf)?;
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Gpu(format!("map_async: {e}"))),
            None => return Err(Error::Gpu("map_async callback dropped".into())),
        }
        let out = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.check()?;
        Ok(out)
    }
}

/// A device buffer holding `len` f32 values; goes back to the pool when dropped.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pub(crate) len: usize,
    ctx: Arc<GpuContext>,
    /// The last batch that used this buffer (0: none since its host upload).
    epoch: AtomicU64,
}

impl GpuBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
    pub(crate) fn ctx(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.ctx.release(b);
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} f32)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELU: [u32; 4] = [2, 5, 0, 0]; // n = 2, opcode 5

    fn relu(ctx: &GpuContext, x: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
        ctx.dispatch(
            Shader::Unary,
            "unary",
            bytemuck::cast_slice(&RELU),
            &[(1, x), (2, y)],
            &[2],
            [1, 1, 1],
        )
    }

    #[test]
    fn a_failed_batch_fails_the_tensors_it_wrote_and_nothing_else() {
        let Ok(ctx) = GpuContext::new() else {
            eprintln!("!!! SKIPPING GPU CHECK: no GPU adapter !!!");
            return;
        };
        let x = ctx.upload(&[-1.0, 2.0], "test").unwrap();
        let y = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &x, &y).unwrap();
        // A bad bind group (binding 1 missing) is refused before it reaches the shared encoder:
        // the pending relu is unaffected.
        let z = ctx.alloc(2, "test").unwrap();
        let err = ctx
            .dispatch(
                Shader::Unary,
                "unary",
                bytemuck::cast_slice(&RELU),
                &[(2, &z)],
                &[2],
                [1, 1, 1],
            )
            .unwrap_err();
        assert!(matches!(err, Error::Gpu(_)), "{err}");
        assert_eq!(ctx.read(&y).unwrap(), vec![0.0, 2.0]);

        // A command that fails only when the batch is submitted (an out-of-bounds copy) fails
        // the batch: its outputs turn into errors, its inputs stay readable.
        let w = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &y, &w).unwrap();
        lock(&ctx.pending)
            .encoder
            .as_mut()
            .unwrap()
            .copy_buffer_to_buffer(x.raw(), 0, z.raw(), 0, 1 << 20);
        assert!(
            ctx.read(&w).is_err(),
            "an output of the failed batch must not read as data"
        );
        assert_eq!(ctx.read(&y).unwrap(), vec![0.0, 2.0]);
        let v = ctx.alloc(2, "test").unwrap();
        assert!(
            relu(&ctx, &w, &v).is_err(),
            "a failed tensor cannot feed new work"
        );
        // Fresh work afterwards is unaffected.
        let a = ctx.upload(&[-3.0, 4.0], "test").unwrap();
        let b = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &a, &b).unwrap();
        assert_eq!(ctx.read(&b).unwrap(), vec![0.0, 4.0]);
    }
}
