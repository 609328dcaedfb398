//! The pending batch: one command encoder that kernels are recorded into until a readback, an
//! upload, a sync or a full batch submits it, its batch number, the batches that failed, and
//! the uniform ring.

use std::sync::Mutex;

/// Pending dispatches before an automatic submit, to bound the encoder's size; also the uniform
/// ring's slot count.
pub(super) const MAX_PENDING: usize = 512;
/// The largest `params` a ring slot holds; larger ones get a buffer of their own.
pub(super) const MAX_PARAMS: u64 = 256;

/// The encoder that kernels are recorded into, and its batch number. Every buffer a batch
/// writes remembers that number, so when a batch fails (wgpu reports an encoder's errors only
/// when it is finished or submitted) every tensor it wrote turns into an error instead of
/// stale data.
pub(super) struct Pending {
    pub(super) encoder: Option<wgpu::CommandEncoder>,
    pub(super) ops: usize,
    pub(super) epoch: u64,
}

impl Pending {
    /// The batch's encoder, begun on first use.
    pub(super) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("convshade"),
            })
        })
    }
}

/// The pending batch, the batches that failed, and the uniform ring: one slot per dispatch of
/// a batch, written through the queue as the dispatch is recorded, so no uniform buffer is
/// created per dispatch.
pub(crate) struct Batch {
    pub(super) pending: Mutex<Pending>,
    pub(super) poisoned: Mutex<Vec<u64>>,
    pub(super) ring: wgpu::Buffer,
    pub(super) slot: u64,
}

impl Batch {
    pub(super) fn new(device: &wgpu::Device, limits: &wgpu::Limits) -> Self {
        let slot = MAX_PARAMS
            .next_multiple_of(u64::from(limits.min_uniform_buffer_offset_alignment.max(16)));
        Batch {
            pending: Mutex::new(Pending { encoder: None, ops: 0, epoch: 1 }),
            poisoned: Mutex::new(Vec::new()),
            ring: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params ring"),
                size: slot * MAX_PENDING as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            slot,
        }
    }
}
