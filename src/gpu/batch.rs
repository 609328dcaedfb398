//! Batched execution: ops record dispatches into one pending encoder, which a readback, an
//! upload, a sync or a full batch submits. A batch that fails poisons the buffers it wrote.

use std::sync::atomic::Ordering;

use wgpu::util::DeviceExt;

use super::buffers::GpuBuffer;
use super::context::{lock, GpuContext};
use super::kernels::Shader;
use super::tiles::GemmTiles;
use crate::{Error, Result};

/// Pending dispatches before an automatic submit, to bound the encoder's size; also the uniform
/// ring's slot count.
pub(super) const MAX_PENDING: usize = 512;
/// The largest `params` a ring slot holds; larger ones get a buffer of their own.
pub(super) const MAX_PARAMS: u64 = 256;

/// The encoder that ops record into, and its batch number. Every buffer a batch touches
/// remembers that number, so when a batch fails (wgpu reports an encoder's errors only when it is
/// finished or submitted) every tensor it touched turns into an error instead of stale data.
pub(super) struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    pub(super) ops: usize,
    pub(super) epoch: u64,
}

impl Pending {
    pub(super) fn new() -> Self {
        Pending {
            encoder: None,
            ops: 0,
            epoch: 1,
        }
    }

    /// The batch's encoder, begun on first use.
    pub(super) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("convshade"),
            })
        })
    }
}

/// A storage binding: `(binding, buffer, offset, len)`, offset and length in elements.
pub(crate) type BindingRange<'a> = (u32, &'a GpuBuffer, usize, usize);

impl GpuContext {
    /// An error if `buf` was touched by a batch that failed.
    pub(super) fn ensure_valid(&self, buf: &GpuBuffer) -> Result<()> {
        if buf.is_split() {
            return buf
                .pieces()
                .iter()
                .try_for_each(|(p, _)| self.ensure_valid(p));
        }
        let e = buf.epoch.load(Ordering::SeqCst);
        if e != 0 && lock(&self.poisoned).contains(&e) {
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
        let (_, status) = self.scoped(|| self.queue.submit(Some(enc.finish())));
        lock(&self.stats).submits += 1;
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
        let whole: Vec<BindingRange> = bindings.iter().map(|&(i, b)| (i, b, 0, b.len)).collect();
        let tiles = self.limits.gemm.large;
        self.dispatch_ranges((shader, entry, tiles), params, &whole, written, groups)
    }

    /// [`GpuContext::dispatch`] with the GEMM tiling of the pipeline named, and each storage
    /// binding a range `(binding, buffer, offset, len)` of its buffer, in elements; offsets must
    /// meet the adapter's alignment.
    pub(crate) fn dispatch_ranges(
        &self,
        (shader, entry, tiles): (Shader, &'static str, GemmTiles),
        params: &[u8],
        bindings: &[BindingRange],
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
        // The split paths (`split`) bind pieces; a tensor in parts reaching a kernel is refused.
        if let Some((_, b, _, _)) = bindings.iter().find(|(_, b, _, _)| b.is_split()) {
            return Err(Error::Invalid {
                op: entry,
                msg: format!(
                    "a tensor of {} elements is past one storage binding, and this op does not split it",
                    b.len
                ),
            });
        }
        let _serial = self.serial();
        let pipeline = self.pipeline(shader, entry, tiles)?;
        let mut pending = lock(&self.pending);
        // Resources first, in this thread's error scopes: a failure here returns before the
        // shared encoder is touched, so other pending work is unaffected. The params go to this
        // dispatch's ring slot: the queue writes them before the batch runs, and after the
        // batches submitted earlier, which used the same slots.
        let slot = pending.ops as u64 * self.uniform_slot;
        let (bind_group, status) =
            self.scoped(|| self.bind_group(&pipeline, entry, (params, slot), bindings));
        status?;
        // Checked under the lock, so no batch can fail between the check and the recording.
        for (_, buf, _, _) in bindings {
            self.ensure_valid(buf)?;
        }
        let epoch = pending.epoch;
        let encoder = pending.encoder(&self.device);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
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

    /// The uniform `params` at binding 0 and the storage ranges after it.
    fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        entry: &'static str,
        (params, slot): (&[u8], u64),
        bindings: &[BindingRange],
    ) -> wgpu::BindGroup {
        let own;
        let uniform = if params.len() as u64 <= MAX_PARAMS && !params.is_empty() {
            self.queue.write_buffer(&self.uniforms, slot, params);
            wgpu::BufferBinding {
                buffer: &self.uniforms,
                offset: slot,
                size: wgpu::BufferSize::new(params.len() as u64),
            }
        } else {
            // no uniform struct is this large today; counted like every created buffer
            lock(&self.stats).created += 1;
            own = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
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
        if buf.is_split() {
            let mut out = Vec::new();
            out.try_reserve_exact(buf.len).map_err(|_| Error::Invalid {
                op: "read",
                msg: format!("no host memory for {} elements", buf.len),
            })?;
            for (part, _) in buf.pieces() {
                out.extend(self.read(part)?);
            }
            return Ok(out);
        }
        let bytes = (buf.len * 4) as u64;
        if bytes == 0 {
            // an empty tensor: nothing to copy, but the work before it still reports its errors
            self.sync()?;
            self.ensure_valid(buf)?;
            return Ok(Vec::new());
        }
        let _serial = self.serial();
        let staging = self.take_staging(bytes)?;
        {
            let mut pending = lock(&self.pending);
            // The copy joins the pending batch, so a failure of that batch fails the read.
            pending
                .encoder(&self.device)
                .copy_buffer_to_buffer(buf.raw(), 0, &staging, 0, bytes);
            self.submit_locked(&mut pending)?;
        }
        self.ensure_valid(buf)?;
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
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
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.give_staging(staging);
        self.check()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::backend::UnaryOp;

    /// Unary params for relu over 2 elements.
    fn relu_params() -> [u32; 4] {
        [2, UnaryOp::Relu.code().0, 0, 0]
    }

    fn relu(ctx: &GpuContext, x: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
        ctx.dispatch(
            Shader::Unary,
            "unary",
            bytemuck::cast_slice(&relu_params()),
            &[(1, x), (2, y)],
            &[2],
            [1, 1, 1],
        )
    }

    #[test]
    fn a_failed_batch_fails_the_tensors_it_wrote_and_nothing_else() {
        let Some(ctx) = super::super::context::test_context() else {
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
                bytemuck::cast_slice(&relu_params()),
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
