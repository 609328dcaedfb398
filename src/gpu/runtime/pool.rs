//! The buffer pool: freed device buffers by size class, reused by later allocations, and the
//! bytes of device memory in use, within the context's limit.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock::lock;
use crate::{Error, Result};

/// Freed buffers by size class and kind (storage, or readback when the flag is set), reused by
/// later allocations, and the bytes of device memory in use, within the context's limit.
pub(crate) struct Pool {
    state: Mutex<PoolState>,
    memory_limit: Option<u64>,
}

#[derive(Default)]
struct PoolState {
    free: HashMap<(u64, bool), Vec<wgpu::Buffer>>,
    /// bytes of the idle buffers in `free`
    idle: u64,
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
    /// Compute dispatches recorded (buffer copies not included).
    pub dispatches: usize,
}

pub(super) fn size_class(bytes: u64) -> u64 {
    // Quarter-power-of-two classes: at most 25% waste, good reuse across similar sizes.
    let bytes = bytes.max(16);
    let p = bytes.next_power_of_two();
    let step = (p / 8).max(16);
    bytes.div_ceil(step) * step
}

impl Pool {
    pub(super) fn new(memory_limit: Option<u64>) -> Self {
        Pool { state: Mutex::new(PoolState::default()), memory_limit }
    }

    pub(super) fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// An idle buffer of this class and kind.
    pub(super) fn take_idle(&self, class: u64, readback: bool) -> Option<wgpu::Buffer> {
        let mut s = lock(&self.state);
        let b = s.free.get_mut(&(class, readback)).and_then(|v| v.pop());
        if b.is_some() {
            s.idle -= class;
        }
        b
    }

    /// Counts `bytes` more of device memory, within the limit: past it, the idle pool is freed
    /// first, then the allocation is refused.
    pub(super) fn reserve(&self, bytes: u64, op: &'static str) -> Result<()> {
        let mut s = lock(&self.state);
        if let Some(limit) = self.memory_limit {
            if s.live + bytes > limit && s.idle > 0 {
                let idle: Vec<wgpu::Buffer> = s.free.drain().flat_map(|(_, v)| v).collect();
                s.live -= s.idle;
                s.idle = 0;
                drop(idle);
            }
            if s.live + bytes > limit {
                return Err(Error::OutOfMemory {
                    op,
                    msg: format!(
                        "{bytes} more bytes would pass the device memory limit of {limit} bytes ({} in use)",
                        s.live
                    ),
                });
            }
        }
        s.live += bytes;
        Ok(())
    }

    pub(super) fn unreserve(&self, bytes: u64) {
        lock(&self.state).live -= bytes;
    }

    /// Keeps an idle buffer, or hands it back past the pool's size (the caller destroys it).
    pub(super) fn keep(&self, buffer: wgpu::Buffer, readback: bool) -> Option<wgpu::Buffer> {
        let class = buffer.size();
        let mut s = lock(&self.state);
        if s.idle + class > POOL_MAX_BYTES {
            s.live -= class;
            return Some(buffer);
        }
        s.idle += class;
        s.free.entry((class, readback)).or_default().push(buffer);
        None
    }
}
