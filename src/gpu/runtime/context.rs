//! [`GpuContext`]: one adapter's device and queue, its limits, and the small owners the kernel
//! families share through its methods (the buffer pool, the pending batch, the pipeline cache,
//! the error state). Its methods live beside what they use: `open` makes it, `memory` holds
//! buffers, `dispatch` records kernels, `readback` reads results, `scope` turns device errors
//! into `Err`s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::adapters::AdapterSummary;
use super::batch::Batch;
use super::errors::ErrorState;
use super::kernel::KernelInfo;
use super::kernel::Pipelines;
use super::lock::lock;
use super::loops::MIN_LOOP_CAP;
use super::memory::GpuBuffer;
use super::options::{Faults, GpuOptions, LOOP_CAP};
use super::pool::{Pool, PoolStats};
use super::scope::Verdict;
use super::tiles::{GemmTiles, GemmTiling};
use super::tune::{Tuner, Tuning};
use crate::{Error, Result};

/// The limits that decide how work is split.
#[derive(Clone, Copy, Debug)]
pub struct GpuLimits {
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest storage buffer binding, in bytes (lowered by `GpuOptions::max_storage_binding`).
    pub max_storage_buffer_binding_size: u64,
    /// Most workgroups per dispatch dimension (lowered by
    /// `GpuOptions::max_workgroups_per_dimension`).
    pub max_workgroups_per_dimension: u32,
    /// Most storage buffers one kernel may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Most invocations in one workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroup memory per workgroup, in bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Alignment of a storage binding's offset, in bytes.
    pub min_storage_buffer_offset_alignment: u32,
    /// Most loop iterations a kernel may run per invocation (see [`LOOP_CAP`]).
    pub loop_cap: usize,
    /// The GEMM kernel's tilings.
    pub gemm: GemmTiling,
}

/// What the self-test found.
#[derive(Clone, Debug)]
pub struct SelfTestReport {
    /// The checks that passed.
    pub passed: Vec<String>,
    /// The first check that failed, with what it got.
    pub failure: Option<String>,
    /// Wall time of the whole test, shader compilation included.
    pub millis: f64,
}

/// Counters of device work, for tests and benchmarks.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) created: AtomicUsize,
    pub(super) reused: AtomicUsize,
    pub(super) submits: AtomicUsize,
    pub(super) dispatches: AtomicUsize,
}

/// One adapter, its device and queue, and the state ops share.
pub struct GpuContext {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) adapter: AdapterSummary,
    pub(super) limits: GpuLimits,
    pub(super) pipelines: Pipelines,
    pub(super) pool: Pool,
    pub(super) batch: Batch,
    pub(super) errors: ErrorState,
    pub(super) counters: Counters,
    pub(super) check: bool,
    pub(super) faults: Faults,
    pub(super) self_test: Mutex<Option<SelfTestReport>>,
    /// Checks deferred to the next readback (shadow mode in a web page): copies of their
    /// buffers, and the verdict on the host copies.
    pub(super) checks: Mutex<Vec<(Vec<GpuBuffer>, Verdict)>>,
    /// The device has `Features::SUBGROUP` enabled.
    pub(super) subgroups: bool,
    /// The GEMM tilings chosen per kernel and shape class.
    pub(super) tuner: Tuner,
    /// Serializes every device call on GL, whose driver context wgpu guards with a lock that
    /// panics after a few seconds of contention (a long llvmpipe wait in one thread would make
    /// another thread's allocation abort).
    pub(super) gl_serial: Option<Mutex<()>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({} via {})", self.adapter.name, self.adapter.backend)
    }
}

impl GpuContext {
    /// The tiling for a launch of GEMM kernel `k` on a product of `(batch, m, n, k)`: tuned
    /// (timing the candidates now through `run` on first use, where tuning is on), else the
    /// default for the product's size.
    pub(crate) fn gemm_tiling(
        &self, k: &KernelInfo, dims: [usize; 4], run: impl FnMut(GemmTiles) -> Result<()>,
    ) -> Result<GemmTiles> {
        let default = self.limits.gemm.pick(dims[1], dims[2]);
        self.tuner.choose(k, dims, default, run, || self.sync())
    }

    /// The GEMM tilings tuning has chosen, by kernel and shape class.
    pub fn tuned(&self) -> Vec<(String, GemmTiles)> {
        self.tuner.chosen()
    }

    /// The GEMM tilings tuning chooses among on this adapter.
    pub fn gemm_candidates(&self) -> &[GemmTiles] {
        self.tuner.candidates()
    }

    /// When tilings are timed, and the cache file.
    pub fn tuning(&self) -> (Tuning, Option<&std::path::Path>) {
        self.tuner.mode()
    }

    /// The self-test's result, once it has run (see [`GpuContext::run_self_test`]).
    pub fn self_test(&self) -> Option<SelfTestReport> {
        lock(&self.self_test).clone()
    }

    /// True in shadow mode: every op is checked against the CPU backend.
    pub fn check_mode(&self) -> bool {
        self.check
    }

    /// The op whose shadow-mode result is corrupted on purpose (a test hook), if any.
    pub(crate) fn fault_op(&self) -> Option<&'static str> {
        self.faults.op
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// How many buffers were created, how many allocations reused a freed one, how many
    /// command buffers were submitted and how many compute dispatches recorded.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            created: self.counters.created.load(Ordering::Relaxed),
            reused: self.counters.reused.load(Ordering::Relaxed),
            submits: self.counters.submits.load(Ordering::Relaxed),
            dispatches: self.counters.dispatches.load(Ordering::Relaxed),
        }
    }

    /// True where the kernels use subgroup operations (the adapter has them and
    /// `GpuOptions::no_subgroups` is off).
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// The adapter limits in force.
    pub fn limits(&self) -> &GpuLimits {
        &self.limits
    }

    /// The device memory limit in force (`GpuOptions::memory_limit`), in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        self.pool.memory_limit()
    }
}

impl GpuLimits {
    pub(super) fn new(
        a: &wgpu::Limits, opts: &GpuOptions, software: bool, subgroups: bool,
    ) -> Result<Self> {
        let gemm = match opts.gemm_tiles {
            Some(t) => GemmTiling::uniform(t),
            None => GemmTiling::for_adapter(software, a),
        };
        gemm.check(a)?;
        // the one place a subgroup tiling can come from without subgroups (candidates and
        // cached choices have them only where the context does)
        if gemm.large.subgroup && !subgroups {
            return Err(Error::Invalid {
                op: "GpuOptions::gemm_tiles",
                msg: format!("{}: the subgroup variant needs subgroup operations", gemm.large),
            });
        }
        Ok(GpuLimits {
            max_buffer_size: a.max_buffer_size,
            max_storage_buffer_binding_size: opts
                .max_storage_binding
                .map_or(a.max_storage_buffer_binding_size, |m| {
                    m.clamp(256, a.max_storage_buffer_binding_size)
                }),
            max_workgroups_per_dimension: opts
                .max_workgroups_per_dimension
                .map_or(a.max_compute_workgroups_per_dimension, |m| {
                    m.clamp(1, a.max_compute_workgroups_per_dimension)
                }),
            max_storage_buffers_per_shader_stage: a.max_storage_buffers_per_shader_stage,
            max_compute_invocations_per_workgroup: a.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: a.max_compute_workgroup_storage_size,
            min_storage_buffer_offset_alignment: a.min_storage_buffer_offset_alignment,
            loop_cap: opts.loop_cap.unwrap_or(LOOP_CAP).max(MIN_LOOP_CAP).max(gemm.min_loop_cap()),
            gemm,
        })
    }
}
