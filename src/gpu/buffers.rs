//! The buffer pool, device buffers, and host uploads.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::context::{lock, GpuContext};
use crate::{Error, Result};

/// Freed buffers by size class and kind (storage, or readback when the flag is set), reused by
/// later allocations.
#[derive(Default)]
pub(super) struct BufferPool {
    free: HashMap<(u64, bool), Vec<wgpu::Buffer>>,
    /// bytes of the idle buffers in `free`
    bytes: u64,
    /// bytes of every storage and readback buffer created and not yet destroyed, idle or not
    live: u64,
}

/// The pool keeps at most this many bytes of idle buffers.
const POOL_MAX_BYTES: u64 = 1 << 30;

/// Buffer pool counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created on the device: storage, readback (staging) and uniform buffers alike.
    pub created: usize,
    /// Allocations served by a freed buffer.
    pub reused: usize,
    /// Command buffers submitted to the queue.
    pub submits: usize,
}

fn size_class(bytes: u64) -> u64 {
    // Quarter-power-of-two classes: at most 25% waste, good reuse across similar sizes.
    let bytes = bytes.max(16);
    let p = bytes.next_power_of_two();
    let step = (p / 8).max(16);
    bytes.div_ceil(step) * step
}

impl GpuContext {
    /// The most elements one storage binding (and so one kernel operand) holds.
    pub(crate) fn binding_len(&self) -> usize {
        let bytes = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        (bytes / 4) as usize
    }

    /// A tensor of `len` elements: one buffer when it fits one binding, else parts of
    /// [`GpuContext::binding_len`] elements (the last one shorter), which kernels never bind:
    /// the split paths (`split`) copy the pieces they need.
    pub(crate) fn alloc_any(self: &Arc<Self>, len: usize, op: &'static str) -> Result<GpuBuffer> {
        let part = self.binding_len();
        if len <= part {
            return self.alloc(len, op);
        }
        let parts = (0..len)
            .step_by(part)
            .map(|start| self.alloc((len - start).min(part), op))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuBuffer {
            buffer: None,
            parts,
            len,
            ctx: self.clone(),
            epoch: AtomicU64::new(0),
        })
    }

    /// A buffer of `len` f32 elements from the pool (contents undefined), within one binding.
    pub(crate) fn alloc(self: &Arc<Self>, len: usize, op: &'static str) -> Result<GpuBuffer> {
        self.alloc_upto(len, op, self.binding_len() as u64 * 4)
    }

    /// [`GpuContext::alloc`] within the device's own binding limit, whatever
    /// `GpuOptions::max_storage_binding` says (the self-test's fixed sizes).
    pub(super) fn alloc_device(
        self: &Arc<Self>,
        len: usize,
        op: &'static str,
    ) -> Result<GpuBuffer> {
        let d = self.device.limits();
        self.alloc_upto(
            len,
            op,
            d.max_storage_buffer_binding_size.min(d.max_buffer_size),
        )
    }

    fn alloc_upto(self: &Arc<Self>, len: usize, op: &'static str, max: u64) -> Result<GpuBuffer> {
        let bytes = (len as u64) * 4;
        if bytes > max {
            return Err(Error::Invalid {
                op,
                msg: format!(
                    "a tensor of {len} elements ({bytes} bytes) exceeds the adapter's largest storage binding ({max} bytes)"
                ),
            });
        }
        let _serial = self.serial();
        let (buffer, reused) = self.take_buffer(size_class(bytes), false, op)?;
        if reused {
            lock(&self.stats).reused += 1;
        }
        Ok(GpuBuffer {
            buffer: Some(buffer),
            parts: Vec::new(),
            len,
            ctx: self.clone(),
            epoch: AtomicU64::new(0),
        })
    }

    /// A buffer of size class `class` from the pool, or a new one (counted): a storage buffer,
    /// or with `readback` a `MAP_READ | COPY_DST` one. `true` when it was pooled. The caller
    /// holds the serial lock.
    fn take_buffer(
        &self,
        class: u64,
        readback: bool,
        op: &'static str,
    ) -> Result<(wgpu::Buffer, bool)> {
        let idle = {
            let mut pool = lock(&self.pool);
            let b = pool.free.get_mut(&(class, readback)).and_then(|v| v.pop());
            if b.is_some() {
                pool.bytes -= class;
            }
            b
        };
        if let Some(b) = idle {
            return Ok((b, true));
        }
        self.reserve(class, op)?;
        lock(&self.stats).created += 1;
        let usage = if readback {
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST
        } else {
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
        };
        let (b, status) = self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: readback.then_some("readback"),
                size: class,
                usage,
                mapped_at_creation: false,
            })
        });
        if let Err(e) = status {
            lock(&self.pool).live -= class;
            return Err(e);
        }
        Ok((b, false))
    }

    /// Counts `bytes` more of device memory, within `GpuOptions::memory_limit`: past it, the idle
    /// pool is freed first, then the allocation is refused with an out-of-memory `Err`.
    fn reserve(&self, bytes: u64, op: &'static str) -> Result<()> {
        let mut pool = lock(&self.pool);
        if let Some(limit) = self.memory_limit {
            if pool.live + bytes > limit && pool.bytes > 0 {
                let idle: Vec<wgpu::Buffer> = pool.free.drain().flat_map(|(_, v)| v).collect();
                pool.live -= pool.bytes;
                pool.bytes = 0;
                drop(idle);
            }
            if pool.live + bytes > limit {
                return Err(Error::Gpu(format!(
                    "{op}: out of memory: {bytes} more bytes would pass the device memory limit of {limit} bytes ({} in use)",
                    pool.live
                )));
            }
        }
        pool.live += bytes;
        Ok(())
    }

    /// Keeps an idle buffer in the pool, or hands it back past the pool's size.
    fn keep_buffer(&self, buffer: wgpu::Buffer, readback: bool) -> Option<wgpu::Buffer> {
        let class = buffer.size();
        let mut pool = lock(&self.pool);
        if pool.bytes + class > POOL_MAX_BYTES {
            // the caller destroys it
            pool.live -= class;
            return Some(buffer);
        }
        pool.bytes += class;
        pool.free.entry((class, readback)).or_default().push(buffer);
        None
    }

    /// A readback buffer of at least `bytes` bytes, from the pool. The caller holds the serial
    /// lock.
    pub(super) fn take_staging(&self, bytes: u64) -> Result<wgpu::Buffer> {
        Ok(self.take_buffer(size_class(bytes), true, "read")?.0)
    }

    /// Returns an unmapped readback buffer to the pool (or frees it past the pool's size). The
    /// caller holds the serial lock.
    pub(super) fn give_staging(&self, buffer: wgpu::Buffer) {
        drop(self.keep_buffer(buffer, true));
    }

    fn release(&self, buffer: wgpu::Buffer) {
        if let Some(surplus) = self.keep_buffer(buffer, false) {
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
        self: &Arc<Self>,
        data: &[f32],
        op: &'static str,
    ) -> Result<GpuBuffer> {
        self.write_new(self.alloc_device(data.len(), op)?, data)
    }

    /// Writes `data` into the new buffer `buf`.
    fn write_new(&self, buf: GpuBuffer, data: &[f32]) -> Result<GpuBuffer> {
        // A pooled buffer may still be read by recorded work, and write_buffer lands before the
        // next submit: submit that work first, and let no other thread submit in between.
        {
            let _serial = self.serial();
            let mut pending = lock(&self.pending);
            self.submit_locked(&mut pending)?;
            for (part, start) in buf.pieces() {
                let src = &data[start..start + part.len];
                self.scoped(|| {
                    self.queue
                        .write_buffer(part.raw(), 0, bytemuck::cast_slice(src))
                })
                .1?;
            }
        }
        Ok(buf)
    }
}

/// A device buffer holding `len` f32 values; goes back to the pool when dropped. A tensor past
/// one storage binding is a list of parts instead (see [`GpuContext::alloc_any`]).
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    parts: Vec<GpuBuffer>,
    pub(crate) len: usize,
    ctx: Arc<GpuContext>,
    /// The last batch that used this buffer (0: none since its host upload).
    pub(super) epoch: AtomicU64,
}

impl GpuBuffer {
    /// The one buffer of a tensor within one binding (callers check `is_split` first).
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a one-buffer tensor, present until drop")
    }
    /// True for a tensor stored in parts, past one binding.
    pub(crate) fn is_split(&self) -> bool {
        self.buffer.is_none()
    }
    /// Its one-buffer pieces and the element index each starts at.
    pub(crate) fn pieces(&self) -> Vec<(&GpuBuffer, usize)> {
        if !self.is_split() {
            return vec![(self, 0)];
        }
        let mut start = 0;
        self.parts
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
