//! The GPU runtime, below every kernel family: one adapter's device and queue, and the small
//! owners the families share through [`GpuContext`]'s methods: the buffer pool (`pool`), the
//! pending batch (`batch`), the pipeline cache (`kernel`) and the error state (`errors`), their
//! fields private to this folder. None of them knows the context; the context's methods sit beside what
//! they use (`open`, `memory`, `dispatch`, `readback`, `scope`, `launch`), so no file here
//! imports one that imports it back.

mod adapters;
mod batch;
mod context;
mod dispatch;
mod errors;
pub(crate) mod kernel;
pub(crate) mod launch;
mod lock;
pub(crate) mod loops;
mod memory;
mod open;
mod options;
mod pool;
mod readback;
mod scope;
pub(crate) mod selftest;
pub(crate) mod tiles;
mod tune;
pub(crate) mod uniforms;

pub use adapters::{enumerate_adapters, AdapterSummary};
pub use context::{GpuContext, GpuLimits, SelfTestReport};
pub(crate) use kernel::{Bind, Kernel, Module, WG};
pub use memory::GpuBuffer;
#[cfg(test)]
pub(crate) use open::test_context;
pub(crate) use options::Faults;
pub use options::{GpuOptions, LOOP_CAP};
pub use pool::PoolStats;
pub(crate) use readback::block_on;
pub use tiles::{GemmTiles, GemmTiling};
pub use tune::Tuning;
