//! Data-parallel training over MPI (feature `mpi`), with PyTorch DDP's semantics on any device:
//! every rank holds a replica of the model and trains on its share of each batch; after each
//! backward the gradients are averaged over the ranks, so every replica takes the same step.
//!
//! - [`World`]: MPI's processes (`mpirun -np N`), this one's rank, and a device per local rank.
//! - [`DistributedDataParallel`]: wraps a [`Module`](crate::nn::Module); parameters and buffers
//!   broadcast from rank 0 when wrapped, gradients averaged in buckets by all-reduce, plans
//!   compared across ranks first (a mismatch is an `Err` on every rank, never a hang), and an
//!   optional replica check.
//! - [`DistributedSampler`]: PyTorch's: each rank a disjoint share of the epoch's permutation.
//! - [`SyncBatchNorm2d`]: batch norm with the batch statistics taken over every rank.
//!
//! Built on MPI through the `mpi` crate (rsmpi): Open MPI or MPICH, with libclang for the
//! bindings.

mod ddp;
mod sampler;
mod sync_bn;
mod world;

pub use ddp::{DdpOptions, DistributedDataParallel, GradientSync};
pub use sampler::DistributedSampler;
pub use sync_bn::SyncBatchNorm2d;
pub use world::World;
