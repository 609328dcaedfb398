//! Recording kernels: each launch binds its buffers to the kernel's bindings, writes its
//! params into the uniform ring, and records one dispatch into the pending batch; a batch that
//! fails poisons the buffers it wrote. The pipeline cache compiles each kernel once.

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use super::batch::{Pending, MAX_PARAMS, MAX_PENDING};
use super::context::GpuContext;
use super::kernel::{constants, Kernel, KernelInfo};
use super::lock::lock;
use super::memory::GpuBuffer;
use super::tiles::GemmTiles;
use crate::{Error, Result};

/// A storage binding's range: `(buffer, offset, len)`, in elements.
pub(crate) type Range<'a> = (&'a GpuBuffer, usize, usize);

impl GpuContext {
    /// An error if `buf` was written by a batch that failed.
    pub(super) fn ensure_valid(&self, buf: &GpuBuffer) -> Result<()> {
        if buf.is_split() {
            return buf.pieces().iter().try_for_each(|(p, _)| self.ensure_valid(p));
        }
        let e = buf.epoch();
        if e != 0 && lock(&self.batch.poisoned).contains(&e) {
            return Err(Error::Gpu(
                "this tensor was computed by GPU work that failed (see the earlier error)".into(),
            ));
        }
        Ok(())
    }

    /// Submits the pending encoder. Callers hold the pending lock, so submits and host writes
    /// happen in the order they were recorded.
    pub(super) fn submit_locked(&self, pending: &mut Pending) -> Result<()> {
        pending.ops = 0;
        let Some(enc) = pending.encoder.take() else {
            return self.check();
        };
        let epoch = pending.epoch;
        pending.epoch += 1;
        // Recording errors surface when the encoder is finished: they fail this batch.
        let (_, status) = self.scoped("submit", || self.queue.submit(Some(enc.finish())));
        self.counters.submits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        status.inspect_err(|_| lock(&self.batch.poisoned).push(epoch))
    }

    /// Submits the pending work, then runs `f` before any other thread can record or submit
    /// (host writes into pooled buffers that recorded work may still read).
    pub(super) fn with_batch_submitted<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut pending = lock(&self.batch.pending);
        self.submit_locked(&mut pending)?;
        f()
    }

    /// Launches kernel `k` over `groups` workgroups: `params` at binding 0, `bufs` whole at the
    /// kernel's storage bindings, in their order.
    pub(crate) fn launch<P: Pod>(
        &self, k: &Kernel<P>, params: &P, bufs: &[&GpuBuffer], groups: [u32; 3],
    ) -> Result<()> {
        self.launch_tiled(k, self.limits.gemm.large, params, bufs, groups)
    }

    /// [`GpuContext::launch`] of a pipeline compiled for the GEMM tiling `tiles`.
    pub(crate) fn launch_tiled<P: Pod>(
        &self, k: &Kernel<P>, tiles: GemmTiles, params: &P, bufs: &[&GpuBuffer], groups: [u32; 3],
    ) -> Result<()> {
        let whole: Vec<Range> = bufs.iter().map(|&b| (b, 0, b.len)).collect();
        self.launch_ranges(&k.info, tiles, bytemuck::bytes_of(params), &whole, groups)
    }

    /// Records one dispatch of kernel `k` into the pending batch, each storage binding a range
    /// of its buffer (offsets meet the adapter's alignment).
    pub(crate) fn launch_ranges(
        &self, k: &KernelInfo, tiles: GemmTiles, params: &[u8], ranges: &[Range], groups: [u32; 3],
    ) -> Result<()> {
        let max = self.limits.max_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::TooLarge {
                op: k.op,
                msg: format!(
                    "{}: dispatch {groups:?} exceeds {max} workgroups per dimension",
                    k.entry
                ),
            });
        }
        if ranges.len() != k.bindings.len() || params.len() != k.uniform_size {
            return Err(Error::Gpu(format!(
                "{}: {} buffers for {} bindings, {} bytes of params for {}",
                k.entry,
                ranges.len(),
                k.bindings.len(),
                params.len(),
                k.uniform_size
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        // The split paths bind pieces; a tensor in parts reaching a kernel is refused.
        if let Some((b, _, _)) = ranges.iter().find(|(b, _, _)| b.is_split()) {
            return Err(Error::TooLarge {
                op: k.op,
                msg: format!(
                    "a tensor of {} elements is past one storage binding, and this op does not split it",
                    b.len
                ),
            });
        }
        let _serial = self.serial();
        let pipeline = self.pipeline(k, tiles)?;
        let mut pending = lock(&self.batch.pending);
        // Resources first, in this thread's error scopes: a failure here returns before the
        // shared encoder is touched, so other pending work is unaffected. The params go to this
        // dispatch's ring slot: the queue writes them before the batch runs, and after the
        // batches submitted earlier, which used the same slots.
        let slot = pending.ops as u64 * self.batch.slot;
        let (bind_group, status) =
            self.scoped(k.op, || self.bind_group(&pipeline, k, (params, slot), ranges));
        status?;
        // Checked under the lock, so no batch can fail between the check and the recording.
        for (buf, _, _) in ranges {
            self.ensure_valid(buf)?;
        }
        let epoch = pending.epoch;
        {
            let mut pass =
                pending.encoder(&self.device).begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(k.entry),
                    timestamp_writes: None,
                });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        self.counters.dispatches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Only outputs carry the batch: inputs made earlier stay valid if this batch fails.
        for (bind, (buf, _, _)) in k.bindings.iter().zip(ranges) {
            if bind.written() {
                buf.set_epoch(epoch);
            }
        }
        self.count_op(&mut pending)
    }

    /// One more command in the pending batch; a full batch is submitted.
    pub(super) fn count_op(&self, pending: &mut Pending) -> Result<()> {
        pending.ops += 1;
        if pending.ops >= MAX_PENDING {
            return self.submit_locked(pending);
        }
        Ok(())
    }

    /// The uniform `params` at binding 0 and the storage ranges at the kernel's bindings.
    fn bind_group(
        &self, pipeline: &wgpu::ComputePipeline, k: &KernelInfo, (params, slot): (&[u8], u64),
        ranges: &[Range],
    ) -> wgpu::BindGroup {
        let own;
        let uniform = if params.len() as u64 <= MAX_PARAMS && !params.is_empty() {
            self.queue.write_buffer(&self.batch.ring, slot, params);
            wgpu::BufferBinding {
                buffer: &self.batch.ring,
                offset: slot,
                size: wgpu::BufferSize::new(params.len() as u64),
            }
        } else {
            // no uniform struct is this large today; counted like every created buffer
            self.counters.created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            own = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: params,
                usage: wgpu::BufferUsages::UNIFORM,
            });
            own.as_entire_buffer_binding()
        };
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(uniform),
        }];
        for (bind, &(buf, offset, len)) in k.bindings.iter().zip(ranges) {
            // every range is of a one-buffer tensor (checked by the caller)
            let Some(raw) = buf.raw() else { continue };
            entries.push(wgpu::BindGroupEntry {
                binding: bind.slot(),
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: raw,
                    offset: (offset * 4) as u64,
                    size: wgpu::BufferSize::new((len.max(1) * 4) as u64),
                }),
            });
        }
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(k.entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// The compute pipeline of kernel `k` with GEMM tiling `tiles`, compiled once.
    pub(super) fn pipeline(
        &self, k: &KernelInfo, tiles: GemmTiles,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (k.module.name, k.entry, tiles, k.constants);
        if let Some(p) = lock(&self.pipelines.pipelines).get(&key) {
            return Ok(p.clone());
        }
        let mut constants = constants(&tiles);
        constants.extend(k.constants.iter().map(|&(name, v)| (name, f64::from(v))));
        // the module's compilation inside the scopes too, so its errors name the op
        let (pipeline, status) = self.scoped(k.op, || {
            let module = lock(&self.pipelines.modules)
                .entry(k.module.name)
                .or_insert_with(|| {
                    self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.module.name),
                        source: wgpu::ShaderSource::Wgsl(k.module.source().into()),
                    })
                })
                .clone();
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(k.op),
                layout: None,
                module: &module,
                entry_point: Some(k.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            })
        });
        status?;
        lock(&self.pipelines.pipelines).insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::backend::UnaryOp;
    use crate::gpu::elementwise::UnaryParams;
    use crate::gpu::elementwise::UNARY;

    /// Unary params for relu over 2 elements.
    fn relu_params() -> UnaryParams {
        UnaryParams { n: 2, op: UnaryOp::Relu.code().0, alpha: 0.0, _pad: 0 }
    }

    fn relu(ctx: &GpuContext, x: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
        ctx.launch(&UNARY, &relu_params(), &[x, y], [1, 1, 1])
    }

    #[test]
    fn a_failed_batch_fails_the_tensors_it_wrote_and_nothing_else() {
        let Some(ctx) = super::super::test_context() else {
            return;
        };
        let x = ctx.upload(&[-1.0, 2.0], "test").unwrap();
        let y = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &x, &y).unwrap();
        // A bad bind group (a binding at an offset the adapter cannot align) is refused before
        // it reaches the shared encoder: the pending relu is unaffected.
        let z = ctx.alloc(2, "test").unwrap();
        let p = relu_params();
        let params = bytemuck::bytes_of(&p);
        let tiles = ctx.limits.gemm.large;
        let err = ctx
            .launch_ranges(&UNARY.info, tiles, params, &[(&x, 1, 1), (&z, 0, 2)], [1, 1, 1])
            .unwrap_err();
        assert!(matches!(err, Error::Gpu(_)), "{err}");
        assert_eq!(ctx.read(&y).unwrap(), vec![0.0, 2.0]);

        // A command that fails only when the batch is submitted (an out-of-bounds copy) fails
        // the batch: its outputs turn into errors, its inputs stay readable.
        let w = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &y, &w).unwrap();
        lock(&ctx.batch.pending).encoder.as_mut().unwrap().copy_buffer_to_buffer(
            x.raw().unwrap(),
            0,
            z.raw().unwrap(),
            0,
            1 << 20,
        );
        assert!(ctx.read(&w).is_err(), "an output of the failed batch must not read as data");
        assert_eq!(ctx.read(&y).unwrap(), vec![0.0, 2.0]);
        let v = ctx.alloc(2, "test").unwrap();
        assert!(relu(&ctx, &w, &v).is_err(), "a failed tensor cannot feed new work");
        // Fresh work afterwards is unaffected.
        let a = ctx.upload(&[-3.0, 4.0], "test").unwrap();
        let b = ctx.alloc(2, "test").unwrap();
        relu(&ctx, &a, &b).unwrap();
        assert_eq!(ctx.read(&b).unwrap(), vec![0.0, 4.0]);
    }
}
