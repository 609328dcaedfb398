//! What a program may ask of a GPU context beyond the adapter's own settings, and the faults
//! the test hooks inject.

use std::path::PathBuf;

use super::tiles::GemmTiles;
use super::tune::Tuning;

/// Settings of a GPU context beyond the adapter's own.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use at most this many workgroups per dispatch dimension (below the adapter's limit), so
    /// the paths that split large work can be exercised on small inputs.
    pub max_workgroups_per_dimension: Option<u32>,
    /// Most loop iterations any kernel runs per invocation (default [`LOOP_CAP`]); work needing
    /// more is split into passes. Lower it to exercise the split paths on small inputs. The
    /// self-test checks that the adapter runs a loop of this many iterations.
    pub loop_cap: Option<usize>,
    /// Shadow mode: every GPU op is also run on the CPU backend and compared; a mismatch is an
    /// `Err`. `CONVSHADE_CHECK=1` turns it on for every context.
    pub check: bool,
    /// One GEMM tiling for every product (default: a large and a small one by adapter type
    /// and limits, `GemmTiling::for_adapter`).
    pub gemm_tiles: Option<GemmTiles>,
    /// The adapter to open, as an index into [`enumerate_adapters`](super::enumerate_adapters) (default: the best one).
    pub adapter: Option<usize>,
    /// Bind at most this many bytes of one tensor (below the adapter's largest storage
    /// binding; at least 256). Tensors past it are stored in parts and the ops on them are split
    /// into pieces that fit, so those paths can be exercised on small inputs.
    pub max_storage_binding: Option<u64>,
    /// Most bytes of device memory the context's buffers may hold; an allocation past it frees
    /// the idle pool, then is refused with [`Error::OutOfMemory`](crate::Error::OutOfMemory). Default: none on hardware,
    /// whose driver reports its own out-of-memory (it comes back as the same `Err`); on a
    /// software adapter, which takes its memory from the host and crashes when that runs out
    /// (lavapipe), 7/8 of the host memory available when the context is made.
    pub memory_limit: Option<u64>,
    /// Skip the self-test (for `convshade info`, which reports it instead of refusing).
    pub skip_self_test: bool,
    /// Run the plain kernels even where the adapter has subgroup operations (to test and
    /// compare both paths). `CONVSHADE_SUBGROUPS=0` turns them off for every context.
    pub no_subgroups: bool,
    /// When the GEMM's tilings are timed (default: `CONVSHADE_TUNE`, else
    /// [`Tuning::OnFirstUse`] on hardware and [`Tuning::Cached`] on software adapters, which
    /// only prove the GPU path right). Off where `gemm_tiles` fixes the tiling.
    pub tuning: Option<Tuning>,
    /// The tuning cache file (default: `CONVSHADE_TUNE_CACHE`, else `convshade/tuning.json` in
    /// the user's cache folder).
    pub tune_cache: Option<PathBuf>,
}

/// Faults injected on purpose, to prove the refusal and mismatch paths (`crate::testing`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    /// Corrupt this self-test canary's device result.
    pub self_test: Option<&'static str>,
    /// Corrupt this op's GPU result in shadow mode.
    pub op: Option<&'static str>,
}

/// Default per-invocation loop budget of every kernel. Mesa's llvmpipe and lavapipe before
/// Mesa 23 stop every loop of a shader after 65,535 iterations in all (one counter shared by all
/// loops of the shader), silently; this leaves a margin of 4x below that.
pub const LOOP_CAP: usize = 16384;
