//! Device buffers: a tensor's memory, one buffer or parts past one binding, taken from the pool
//! and given back to it on drop; host uploads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::context::GpuContext;
use super::pool::size_class;
use crate::{Error, Result};

impl GpuContext {
    /// The most elements one storage binding (and so one kernel operand) holds.
    pub(crate) fn binding_len(&self) -> usize {
        let bytes = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        (bytes / 4) as usize
    }

    /// A tensor of `len` elements: one buffer when it fits one binding, else parts of
    /// [`GpuContext::binding_len`] elements (the last one shorter), which kernels never bind:
    /// the split paths copy the pieces they need.
    pub(crate) fn alloc_any(self: &Arc<Self>, len: usize, op: &'static str) -> Result<GpuBuffer> {
        let part = self.binding_len();
        if len <= part {
            return self.alloc(len, op);
        }
        let parts = (0..len)
            .step_by(part)
            .map(|start| self.alloc((len - start).min(part), op))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuBuffer::new(Memory::Parts(parts), len, self))
    }

    /// A buffer of `len` f32 elements from the pool (contents undefined), within one binding.
    pub(crate) fn alloc(self: &Arc<Self>, len: usize, op: &'static str) -> Result<GpuBuffer> {
        self.alloc_upto(len, op, self.binding_len() as u64 * 4)
    }

    /// [`GpuContext::alloc`] within the device's own binding limit, whatever
    /// `GpuOptions::max_storage_binding` says (the self-test's fixed sizes).
    pub(crate) fn alloc_device(
        self: &Arc<Self>, len: usize, op: &'static str,
    ) -> Result<GpuBuffer> {
        let d = self.device.limits();
        let max = d.max_storage_buffer_binding_size.min(d.max_buffer_size);
        self.alloc_upto(len, op, max)
    }

    fn alloc_upto(self: &Arc<Self>, len: usize, op: &'static str, max: u64) -> Result<GpuBuffer> {
        let bytes = (len as u64) * 4;
        if bytes > max {
            return Err(Error::TooLarge {
                op,
                msg: format!(
                    "a tensor of {len} elements ({bytes} bytes) exceeds the adapter's largest storage binding ({max} bytes)"
                ),
            });
        }
        let _serial = self.serial();
        let (buffer, reused) = self.take_buffer(size_class(bytes), false, op)?;
        if reused {
            self.counters.reused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(GpuBuffer::new(Memory::One(buffer), len, self))
    }

    /// A buffer of size class `class` from the pool, or a new one (counted): a storage buffer,
    /// or with `readback` a `MAP_READ | COPY_DST` one. `true` when it was pooled. The caller
    /// holds the serial lock.
    fn take_buffer(
        &self, class: u64, readback: bool, op: &'static str,
    ) -> Result<(wgpu::Buffer, bool)> {
        if let Some(b) = self.pool.take_idle(class, readback) {
            return Ok((b, true));
        }
        self.pool.reserve(class, op)?;
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        let usage = if readback {
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST
        } else {
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
        };
        let (b, status) = self.scoped(op, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: readback.then_some("readback"),
                size: class,
                usage,
                mapped_at_creation: false,
            })
        });
        if let Err(e) = status {
            self.pool.unreserve(class);
            return Err(e);
        }
        Ok((b, false))
    }

    /// A readback buffer of at least `bytes` bytes, from the pool. The caller holds the serial
    /// lock.
    pub(super) fn take_staging(&self, bytes: u64) -> Result<wgpu::Buffer> {
        Ok(self.take_buffer(size_class(bytes), true, "read")?.0)
    }

    /// Returns an unmapped readback buffer to the pool (or frees it past the pool's size). The
    /// caller holds the serial lock.
    pub(super) fn give_staging(&self, buffer: wgpu::Buffer) {
        drop(self.pool.keep(buffer, true));
    }

    fn release(&self, buffer: wgpu::Buffer) {
        if let Some(surplus) = self.pool.keep(buffer, false) {
            // Destroying a buffer is a device call: serialize it like the others (GL).
            let _serial = self.serial();
            drop(surplus);
        }
    }

    /// Copies host data into a new buffer.
    pub(crate) fn upload(self: &Arc<Self>, data: &[f32], op: &'static str) -> Result<GpuBuffer> {
        self.write_new(self.alloc_any(data.len(), op)?, data)
    }

    /// [`GpuContext::upload`] into one buffer within the device's own binding limit (the
    /// self-test's fixed sizes).
    pub(super) fn upload_device(
        self: &Arc<Self>, data: &[f32], op: &'static str,
    ) -> Result<GpuBuffer> {
        self.write_new(self.alloc_device(data.len(), op)?, data)
    }

    /// Writes `data` into the new buffer `buf`.
    fn write_new(&self, buf: GpuBuffer, data: &[f32]) -> Result<GpuBuffer> {
        // A pooled buffer may still be read by recorded work, and write_buffer lands before the
        // next submit: submit that work first, and let no other thread submit in between.
        let _serial = self.serial();
        self.with_batch_submitted(|| {
            for (part, start) in buf.pieces() {
                let Memory::One(raw) = &part.mem else {
                    continue;
                };
                let src = &data[start..start + part.len];
                self.scoped("upload", || {
                    self.queue.write_buffer(raw, 0, bytemuck::cast_slice(src))
                })
                .1?;
            }
            Ok(())
        })?;
        Ok(buf)
    }
}

/// Where a tensor's values live: one buffer, or parts of one binding each.
enum Memory {
    One(wgpu::Buffer),
    Parts(Vec<GpuBuffer>),
}

/// A device buffer holding `len` f32 values; goes back to the pool when dropped. A tensor past
/// one storage binding is a list of parts instead, which kernels never bind: the ops on it run
/// in pieces.
pub struct GpuBuffer {
    mem: Memory,
    pub(crate) len: usize,
    ctx: Arc<GpuContext>,
    /// The last batch that wrote this buffer (0: none since its host upload).
    epoch: AtomicU64,
}

impl GpuBuffer {
    fn new(mem: Memory, len: usize, ctx: &Arc<GpuContext>) -> Self {
        GpuBuffer { mem, len, ctx: ctx.clone(), epoch: AtomicU64::new(0) }
    }
    /// The one buffer of a tensor within one binding; `None` for a tensor in parts.
    pub(crate) fn raw(&self) -> Option<&wgpu::Buffer> {
        match &self.mem {
            Memory::One(b) => Some(b),
            Memory::Parts(_) => None,
        }
    }
    /// True for a tensor stored in parts, past one binding.
    pub(crate) fn is_split(&self) -> bool {
        matches!(self.mem, Memory::Parts(_))
    }
    /// Its one-buffer pieces and the element index each starts at.
    pub(crate) fn pieces(&self) -> Vec<(&GpuBuffer, usize)> {
        let Memory::Parts(parts) = &self.mem else {
            return vec![(self, 0)];
        };
        let mut start = 0;
        parts
            .iter()
            .map(|p| {
                start += p.len;
                (p, start - p.len)
            })
            .collect()
    }
    pub(crate) fn ctx(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
    pub(super) fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Memory::One(b) = &self.mem {
            // wgpu buffers are handles: the pool keeps this one alive for reuse
            self.ctx.release(b.clone());
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} f32)", self.len)
    }
}
