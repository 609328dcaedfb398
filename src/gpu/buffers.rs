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
    bytes: u64,
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
        let _serial = self.serial();
        let (buffer, reused) = self.take_buffer(size_class(bytes), false)?;
        if reused {
            lock(&self.stats).reused += 1;
        }
        Ok(GpuBuffer {
            buffer: Some(buffer),
            len,
            ctx: self.clone(),
            epoch: AtomicU64::new(0),
        })
    }

    /// A buffer of size class `class` from the pool, or a new one (counted): a storage buffer,
    /// or with `readback` a `MAP_READ | COPY_DST` one. `true` when it was pooled. The caller
    /// holds the serial lock.
    fn take_buffer(&self, class: u64, readback: bool) -> Result<(wgpu::Buffer, bool)> {
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
        status?;
        Ok((b, false))
    }

    /// Keeps an idle buffer in the pool, or hands it back past the pool's size.
    fn keep_buffer(&self, buffer: wgpu::Buffer, readback: bool) -> Option<wgpu::Buffer> {
        let class = buffer.size();
        let mut pool = lock(&self.pool);
        if pool.bytes + class > POOL_MAX_BYTES {
            return Some(buffer);
        }
        pool.bytes += class;
        pool.free.entry((class, readback)).or_default().push(buffer);
        None
    }

    /// A readback buffer of at least `bytes` bytes, from the pool. The caller holds the serial
    /// lock.
    pub(super) fn take_staging(&self, bytes: u64) -> Result<wgpu::Buffer> {
        Ok(self.take_buffer(size_class(bytes), true)?.0)
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
}

/// A device buffer holding `len` f32 values; goes back to the pool when dropped.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pub(crate) len: usize,
    ctx: Arc<GpuContext>,
    /// The last batch that used this buffer (0: none since its host upload).
    pub(super) epoch: AtomicU64,
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
