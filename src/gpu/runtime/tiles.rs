//! The GEMM kernel's tiling (pipeline constants of shaders/gemm.wgsl), picked per adapter and,
//! between a large and a small tile, per product: one kernel, sized for the hardware it runs on.

use crate::gpu::gemm_direct::BLOCKS;
use crate::gpu::gemm_subgroup::ROW_LANES;
use crate::{Error, Result};

/// A workgroup of `tx` x `ty` threads computes a `(rows ty) x (cols tx)` tile of C, each thread
/// a `rows x cols` block (8 or 4 each way), from operand tiles staged `bk` deep in workgroup
/// memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GemmTiles {
    /// Threads of the workgroup along C's columns.
    pub tx: u32,
    /// Threads of the workgroup along C's rows.
    pub ty: u32,
    /// Depth of the operand tiles staged in workgroup memory.
    pub bk: u32,
    /// Rows of C each thread computes: 8 or 4 (staged), 8, 16 or 32 (direct).
    pub rows: u32,
    /// Columns of C each thread computes: 8 or 4 (staged), 8 or 16 (direct).
    pub cols: u32,
    /// The direct variant: no staging; each thread reads its operands as vec4s (or gathers a
    /// convolution's), 4 deep (`bk` is then 4), into an 8x8, 16x16 or 32x16 block. Products
    /// whose operands do not allow it run a staged tiling of the same workgroup instead.
    #[serde(default)]
    pub direct: bool,
    /// The direct variant with A shared through the subgroup (contexts with subgroup
    /// operations): each subgroup of `tx` lanes (8 or more) computes the same `rows` rows of C,
    /// its first 8 lanes loading a row's vec4 each (of every 8) and broadcasting them, instead
    /// of every lane loading every row. Where the subgroups are not `tx` lanes each, every lane
    /// loads its own, as the direct variant does.
    #[serde(default)]
    pub subgroup: bool,
}

/// `tx` x `ty` threads, each an `r` x `c` block, staged `bk` deep.
const fn t(tx: u32, ty: u32, bk: u32, r: u32, c: u32) -> GemmTiles {
    GemmTiles { tx, ty, bk, rows: r, cols: c, direct: false, subgroup: false }
}

/// The direct variant: `tx` x `ty` threads, each an `r` x `c` block.
const fn d(tx: u32, ty: u32, r: u32, c: u32) -> GemmTiles {
    GemmTiles { tx, ty, bk: 4, rows: r, cols: c, direct: true, subgroup: false }
}

/// The subgroup variant: `ty` subgroups of `lanes`, each thread an `r` x `c` block.
const fn s(lanes: u32, ty: u32, r: u32, c: u32) -> GemmTiles {
    GemmTiles { tx: lanes, ty, bk: 4, rows: r, cols: c, direct: true, subgroup: true }
}

/// The register arrays' capacity in the kernel (`MAX_LOADS`): tile elements each thread stages
/// per operand.
pub(crate) const MAX_LOADS: u32 = 32;

/// An adapter's two tilings: `large` for products with at least two of its tiles each way per
/// batch entry, `small` for the rest (convolutions' per-image products, narrow layers), whose
/// large tiles would be mostly padding or too few to fill the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmTiling {
    /// The tiles of products with at least two of them each way per batch entry.
    pub large: GemmTiles,
    /// The tiles of every other product.
    pub small: GemmTiles,
}

impl GemmTiling {
    /// Hardware GPUs: 128x128 tiles of 256 threads, and 64x64 ones of 64.
    pub const HARDWARE: GemmTiling =
        GemmTiling { large: t(16, 16, 8, 8, 8), small: t(8, 8, 8, 8, 8) };
    /// Software adapters (lavapipe, llvmpipe) run a workgroup's invocations in SIMD batches on
    /// one CPU thread, switching between them at every barrier, and load per lane: 64x128 tiles
    /// 16 deep and 32x64 ones 8 deep, the best of about 15 tilings measured on lavapipe (Mesa
    /// 22.3) for
    /// gemm_1024, conv_S3_fwd_bwd, conv_S4_fwd_bwd and train_step (8 deep fits the least loop
    /// budget a context accepts; 16 deep was no faster).
    pub const SOFTWARE: GemmTiling =
        GemmTiling { large: t(16, 8, 16, 8, 8), small: t(8, 4, 8, 8, 8) };

    /// One tiling for every product.
    pub fn uniform(t: GemmTiles) -> GemmTiling {
        GemmTiling { large: t, small: t }
    }

    /// The tiling for an adapter: the software one on CPU adapters, else the hardware one,
    /// each tile shrunk until it fits the adapter's limits.
    pub(crate) fn for_adapter(software: bool, limits: &wgpu::Limits) -> GemmTiling {
        if software {
            return GemmTiling::SOFTWARE;
        }
        let fit = |mut t: GemmTiles| {
            while t.check(limits).is_err() && t.tx * t.ty > 16 {
                // halve the threads along the longer edge
                if t.tx >= t.ty {
                    t.tx /= 2;
                } else {
                    t.ty /= 2;
                }
            }
            t
        };
        GemmTiling {
            large: fit(GemmTiling::HARDWARE.large),
            small: fit(GemmTiling::HARDWARE.small),
        }
    }

    /// The tilings tuning times on an adapter: this tiling's two, and more around them (wider or
    /// narrower workgroups, shallower or deeper staging, smaller blocks per thread, the direct
    /// variant, and where the context uses subgroups of a fixed size `lanes`, the subgroup
    /// variant), each kept only within the adapter's limits and the loop budget `cap`. Software
    /// adapters get one staged block smaller than 8x8: on lavapipe (Mesa 25) it won only a
    /// product of 2 outputs.
    pub(crate) fn candidates(
        &self, software: bool, limits: &wgpu::Limits, cap: usize, lanes: Option<u32>,
    ) -> Vec<GemmTiles> {
        // the fifth of each: a narrow tile for products only a few columns wide (a weight
        // gradient of few input channels, a classifier's logits)
        let more: &[GemmTiles] = match software {
            true => &[
                t(16, 16, 8, 8, 8),
                t(8, 8, 8, 8, 8),
                t(16, 8, 8, 8, 8),
                t(8, 8, 16, 8, 8),
                t(2, 8, 8, 8, 8),
                t(16, 16, 8, 4, 4),
                d(32, 2, 8, 8),
                d(16, 4, 16, 16),
                d(16, 1, 32, 16),
                d(4, 4, 16, 16),
                d(2, 4, 8, 8),
            ],
            false => &[
                t(16, 8, 8, 8, 8),
                t(8, 16, 8, 8, 8),
                t(16, 16, 16, 8, 8),
                t(8, 8, 16, 8, 8),
                t(4, 16, 8, 8, 8),
                t(16, 16, 8, 4, 4),
                t(16, 16, 8, 8, 4),
                t(16, 16, 8, 4, 8),
                d(16, 16, 8, 8),
                d(8, 8, 8, 8),
            ],
        };
        // one subgroup per workgroup, and four, each block (on software adapters the largest
        // only: the others never won on lavapipe, and each costs a compile while tuning)
        let blocks = &BLOCKS[if software { BLOCKS.len() - 1 } else { 0 }..];
        let shared = lanes
            .filter(|&l| l >= ROW_LANES)
            .into_iter()
            .flat_map(|l| blocks.iter().flat_map(move |&(r, c)| [s(l, 1, r, c), s(l, 4, r, c)]));
        let mut out: Vec<GemmTiles> = Vec::new();
        let all = [self.large, self.small].into_iter().chain(more.iter().copied()).chain(shared);
        for c in all {
            let fits = c.check(limits).is_ok() && c.trips().0 + c.trips().1 <= cap;
            if fits && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// `Err` unless the kernel can run both tilings on an adapter with `limits`.
    pub(crate) fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        self.large.check(limits)?;
        self.small.check(limits)
    }

    /// The tiles for an `m x n` product per batch entry.
    pub(crate) fn pick(&self, m: usize, n: usize) -> GemmTiles {
        let (bm, bn) = self.large.tile();
        if m >= 2 * bm && n >= 2 * bn {
            self.large
        } else {
            self.small
        }
    }

    /// The loop budget both tilings need for one K tile (see [`GemmTiles::trips`]).
    pub(crate) fn min_loop_cap(&self) -> usize {
        [self.large, self.small].iter().map(|t| t.trips().0 + t.trips().1).max().unwrap_or(0)
    }
}

impl std::fmt::Display for GemmTiles {
    /// `64x128/16 (8x8)`: the workgroup's tile of C, the staging depth, each thread's block.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (m, n) = self.tile();
        match (self.direct, self.subgroup) {
            (true, true) => write!(f, "{m}x{n} subgroup ({}x{})", self.rows, self.cols),
            (true, false) => write!(f, "{m}x{n} direct ({}x{})", self.rows, self.cols),
            _ => write!(f, "{m}x{n}/{} ({}x{})", self.bk, self.rows, self.cols),
        }
    }
}

impl GemmTiles {
    /// `tx` x `ty` threads, each an 8x8 block, staged `bk` deep.
    pub const fn new(tx: u32, ty: u32, bk: u32) -> GemmTiles {
        t(tx, ty, bk, 8, 8)
    }

    /// These tiles with each thread computing a `rows x cols` block (8 or 4 each way).
    pub const fn block(self, rows: u32, cols: u32) -> GemmTiles {
        GemmTiles { rows, cols, ..self }
    }

    /// The direct variant of these tiles (no staging, operands read 4 deep).
    pub const fn direct(self) -> GemmTiles {
        GemmTiles { direct: true, bk: 4, ..self }
    }

    /// The subgroup variant of these tiles (the direct one with A's rows broadcast through
    /// subgroups of `tx` lanes).
    pub const fn subgroup(self) -> GemmTiles {
        GemmTiles { direct: true, subgroup: true, bk: 4, ..self }
    }

    /// The staged tiling a product runs where the direct variant cannot: the same workgroup
    /// and block staged 8 deep, or 64x64 tiles where that would not fit every adapter and the
    /// least loop budget.
    pub(crate) fn staged(self) -> GemmTiles {
        if !self.direct {
            return self;
        }
        let same = GemmTiles { direct: false, subgroup: false, bk: 8, ..self };
        let (fixed, per_tile) = same.trips();
        let fits_budget = fixed + per_tile <= super::loops::MIN_LOOP_CAP;
        match same.check(&wgpu::Limits::downlevel_defaults()) {
            Ok(()) if fits_budget => same,
            _ => GemmTiles::new(8, 8, 8),
        }
    }

    /// Rows and columns of C per workgroup.
    pub fn tile(&self) -> (usize, usize) {
        ((self.ty * self.rows) as usize, (self.tx * self.cols) as usize)
    }

    fn threads(&self) -> u32 {
        self.tx * self.ty
    }

    /// Bytes of workgroup memory the two staged tiles take (each k row padded by one vec4).
    fn workgroup_bytes(&self) -> u32 {
        if self.direct {
            return 0;
        }
        let (bm, bn) = self.tile();
        16 * self.bk * ((bm / 4 + 1) + (bn / 4 + 1)) as u32
    }

    /// Tile elements each thread stages per operand.
    fn loads(&self) -> (u32, u32) {
        let (bm, bn) = self.tile();
        (self.bk * bm as u32 / self.threads(), self.bk * bn as u32 / self.threads())
    }

    /// `Err` unless the kernel can run this tiling on an adapter with `limits`.
    pub(crate) fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        let bad = |msg: String| Err(Error::Invalid { op: "GpuOptions::gemm_tiles", msg });
        if self.tx == 0 || self.ty == 0 || self.bk == 0 {
            return bad(format!("{self:?}: tx, ty and bk must be positive"));
        }
        if self.direct {
            if !BLOCKS.contains(&(self.rows, self.cols)) {
                return bad(format!("{self:?}: the direct variant's blocks are {BLOCKS:?}"));
            }
        } else if ![4, 8].contains(&self.rows) || ![4, 8].contains(&self.cols) {
            return bad(format!("{self:?}: each thread's block must be 4 or 8 each way"));
        }
        let (bm, bn) = self.tile();
        let (la, lb) = self.loads();
        let even = |tile: usize| (self.bk as usize * tile).is_multiple_of(self.threads() as usize);
        if self.direct && self.bk != 4 {
            return bad(format!("{self:?}: the direct variant reads 4 deep"));
        }
        if self.subgroup && (!self.direct || self.tx < ROW_LANES) {
            return bad(format!(
                "{self:?}: the subgroup variant is direct, on rows of {ROW_LANES} threads or more"
            ));
        }
        let staged_ok =
            even(bm) && even(bn) && la > 0 && lb > 0 && la <= MAX_LOADS && lb <= MAX_LOADS;
        if !self.direct && !staged_ok {
            return bad(format!(
                "{self:?}: each thread must stage 1 to {MAX_LOADS} elements of each tile"
            ));
        }
        // the subgroup variant's workgroup is one row of tx * ty
        let x = if self.subgroup { self.threads() } else { self.tx };
        if self.threads() > limits.max_compute_invocations_per_workgroup
            || x > limits.max_compute_workgroup_size_x
            || self.ty > limits.max_compute_workgroup_size_y
        {
            return bad(format!(
                "{self:?}: {} x {} threads exceed the adapter's workgroup limits",
                self.tx, self.ty
            ));
        }
        if self.workgroup_bytes() > limits.max_compute_workgroup_storage_size {
            return bad(format!(
                "{self:?}: {} bytes of workgroup memory exceed the adapter's {}",
                self.workgroup_bytes(),
                limits.max_compute_workgroup_storage_size
            ));
        }
        Ok(())
    }

    /// Loop iterations per invocation, counting every loop of the kernel (nested ones
    /// included): `(fixed, per K tile)`.
    pub(crate) fn trips(&self) -> (usize, usize) {
        if self.direct {
            // C's block read and written in loops of one vec4 each; one loop over K, 4 deep,
            // its body unrolled
            let block = (self.rows * self.cols / 4) as usize;
            return (2 * block, 1);
        }
        let (la, lb) = self.loads();
        let (la, lb) = (la as usize, lb as usize);
        // the first tile's loads (resuming from C and the epilogue run no loops)
        let fixed = la + lb;
        // the tile loop, its stores and next loads, and the multiply loop (unrolled inside)
        let per_tile = 1 + 2 * (la + lb) + self.bk as usize;
        (fixed, per_tile)
    }

    /// The pipeline constants of shaders/gemm.wgsl.
    pub(crate) fn constants(&self) -> [(&'static str, f64); 5] {
        [
            ("GEMM_TX", self.tx as f64),
            ("GEMM_TY", self.ty as f64),
            ("GEMM_BK", self.bk as f64),
            ("BLOCK_ROWS", self.rows as f64),
            ("BLOCK_VECS", (self.cols / 4) as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_tilings_fit_the_default_limits() {
        let limits = wgpu::Limits::default();
        for t in [GemmTiling::HARDWARE, GemmTiling::SOFTWARE] {
            t.check(&limits).unwrap();
        }
        assert_eq!(GemmTiling::HARDWARE.large.tile(), (128, 128));
        assert_eq!(GemmTiling::for_adapter(false, &limits), GemmTiling::HARDWARE);
        // a downlevel adapter (16 KiB workgroup memory, 256 invocations) still gets a tiling
        let small = wgpu::Limits::downlevel_defaults();
        GemmTiling::for_adapter(false, &small).check(&small).unwrap();
    }

    #[test]
    fn large_tiles_only_for_products_of_two_tiles_each_way() {
        let t = GemmTiling::HARDWARE;
        assert_eq!(t.pick(1024, 1024), t.large);
        assert_eq!(t.pick(256, 256), t.large);
        assert_eq!(t.pick(255, 4096), t.small);
        assert_eq!(t.pick(64, 196), t.small);
    }

    #[test]
    fn bad_tilings_are_refused() {
        let limits = wgpu::Limits::default();
        let bad = [
            GemmTiles::new(0, 8, 8),
            // 64 elements per thread
            GemmTiles::new(16, 16, 64),
            // 1,024 threads
            GemmTiles::new(32, 32, 8),
            // a block the kernel has no code for
            GemmTiles::new(8, 8, 8).block(2, 8),
        ];
        for t in bad {
            assert!(t.check(&limits).is_err(), "{t:?}");
        }
    }
}
