//! The buffer pool, device buffers, and host uploads.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::context::{lock, GpuContext};
use crate::{Error, Result};

/// Freed buffers by size class, reused by later allocations, and the idle readback (staging)
/// buffers, also by size class.
#[derive(Default)]
pub(super) struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    staging: HashMap<u64, Vec<wgpu::Buffer>>,
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

    /// A readback buffer of at least `bytes` bytes (`MAP_READ | COPY_DST`), from the pool.
    /// The caller holds the serial lock.
    pub(super) fn take_staging(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let class = size_class(bytes);
        let idle = {
            let mut pool = lock(&self.pool);
            let b = pool.staging.get_mut(&class).and_then(|v| v.pop());
            if b.is_some() {
                pool.bytes -= class;
            }
            b
        };
        if let Some(b) = idle {
            return Ok(b);
        }
        lock(&self.stats).created += 1;
        let (b, status) = self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: class,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        status?;
        Ok(b)
    }

    /// Returns an unmapped readback buffer to the pool (or frees it past the pool's size).
    pub(super) fn give_staging(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        let mut pool = lock(&self.pool);
        if pool.bytes + class <= POOL_MAX_BYTES {
            pool.bytes += class;
            pool.staging.entry(class).or_default().push(buffer);
        }
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
