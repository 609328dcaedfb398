//! The GEMM kernel's tiling (pipeline constants of shaders/gemm.wgsl), picked per adapter and,
//! between a large and a small tile, per product: one kernel, sized for the hardware it runs on.

use crate::{Error, Result};

/// A workgroup of `tx` x `ty` threads computes a `(8 ty) x (8 tx)` tile of C, each thread an
/// 8x8 block, from operand tiles staged `bk` deep in workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GemmTiles {
    /// Threads of the workgroup along C's columns.
    pub tx: u32,
    /// Threads of the workgroup along C's rows.
    pub ty: u32,
    /// Depth of the operand tiles staged in workgroup memory.
    pub bk: u32,
}

/// Rows and columns of C each thread computes (fixed in the kernel).
const BLOCK: u32 = 8;

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
    pub const HARDWARE: GemmTiling = GemmTiling {
        large: GemmTiles { tx: 16, ty: 16, bk: 8 },
        small: GemmTiles { tx: 8, ty: 8, bk: 8 },
    };
    /// Software adapters (lavapipe, llvmpipe) run a workgroup's invocations in SIMD batches on
    /// one CPU thread, switching between them at every barrier, and load per lane: 64x128 tiles
    /// 16 deep and 32x64 ones 8 deep, the best of about 15 tilings measured on lavapipe (Mesa
    /// 22.3) for
    /// gemm_1024, conv_S3_fwd_bwd, conv_S4_fwd_bwd and train_step (8 deep fits the least loop
    /// budget a context accepts; 16 deep was no faster).
    pub const SOFTWARE: GemmTiling = GemmTiling {
        large: GemmTiles { tx: 16, ty: 8, bk: 16 },
        small: GemmTiles { tx: 8, ty: 4, bk: 8 },
    };

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

    /// The tilings tuning times on an adapter: this tiling's two, and five more around them
    /// (wider or narrower workgroups, shallower or deeper staging), each kept only within the
    /// adapter's limits and the loop budget `cap`.
    pub(crate) fn candidates(
        &self, software: bool, limits: &wgpu::Limits, cap: usize,
    ) -> Vec<GemmTiles> {
        let t = |tx, ty, bk| GemmTiles { tx, ty, bk };
        // the last of each: a narrow tile for products only a few columns wide (a weight
        // gradient of few input channels, a classifier's logits)
        let more = match software {
            true => [t(16, 16, 8), t(8, 8, 8), t(16, 8, 8), t(8, 8, 16), t(2, 8, 8)],
            false => [t(16, 8, 8), t(8, 16, 8), t(16, 16, 16), t(8, 8, 16), t(4, 16, 8)],
        };
        let mut out: Vec<GemmTiles> = Vec::new();
        for c in [self.large, self.small].into_iter().chain(more) {
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

impl GemmTiles {
    /// Rows and columns of C per workgroup.
    pub fn tile(&self) -> (usize, usize) {
        ((self.ty * BLOCK) as usize, (self.tx * BLOCK) as usize)
    }

    fn threads(&self) -> u32 {
        self.tx * self.ty
    }

    /// Bytes of workgroup memory the two staged tiles take (each k row padded by one vec4).
    fn workgroup_bytes(&self) -> u32 {
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
        let (bm, bn) = self.tile();
        let (la, lb) = self.loads();
        let even = |tile: usize| (self.bk as usize * tile).is_multiple_of(self.threads() as usize);
        if !even(bm) || !even(bn) || la == 0 || lb == 0 || la > MAX_LOADS || lb > MAX_LOADS {
            return bad(format!(
                "{self:?}: each thread must stage 1 to {MAX_LOADS} elements of each tile"
            ));
        }
        if self.threads() > limits.max_compute_invocations_per_workgroup
            || self.tx > limits.max_compute_workgroup_size_x
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
        let (la, lb) = self.loads();
        let (la, lb) = (la as usize, lb as usize);
        // the first tile's loads (resuming from C and the epilogue run no loops)
        let fixed = la + lb;
        // the tile loop, its stores and next loads, and the multiply loop (unrolled inside)
        let per_tile = 1 + 2 * (la + lb) + self.bk as usize;
        (fixed, per_tile)
    }

    /// The pipeline constants of shaders/gemm.wgsl.
    pub(crate) fn constants(&self) -> [(&'static str, f64); 3] {
        [("GEMM_TX", self.tx as f64), ("GEMM_TY", self.ty as f64), ("GEMM_BK", self.bk as f64)]
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
            GemmTiles { tx: 0, ty: 8, bk: 8 },
            // 64 elements per thread
            GemmTiles { tx: 16, ty: 16, bk: 64 },
            // 1,024 threads
            GemmTiles { tx: 32, ty: 32, bk: 8 },
        ];
        for t in bad {
            assert!(t.check(&limits).is_err(), "{t:?}");
        }
    }
}
