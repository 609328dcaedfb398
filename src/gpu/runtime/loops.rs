//! The per-invocation loop budget. Some drivers (Mesa's llvmpipe and lavapipe before Mesa 23)
//! end every loop of a shader silently once 65,535 iterations have run in all, so no kernel may
//! run more than `GpuLimits::loop_cap` loop iterations per invocation. Each kernel's worst-case
//! count (every loop's iterations, nested ones included) is computed here from its geometry;
//! work needing more is split into passes, each resuming where the last one stopped, so a split
//! result is bit-identical to an unsplit one.

use super::tiles::GemmTiles;
use crate::{Error, Result};

/// The smallest budget a context accepts: every kernel's fixed loops (the reduction tree, the
/// GEMM tile, the binary searches) must fit.
pub(crate) const MIN_LOOP_CAP: usize = 160;

/// Iterations of an upsample backward kernel's four binary searches over an axis of `out`.
pub(crate) fn search_trips(oh: usize, ow: usize) -> usize {
    let bits = |n: usize| (usize::BITS - n.leading_zeros()) as usize + 1;
    2 * bits(oh) + 2 * bits(ow)
}

/// Passes `[r0, r1)` over the `rows` iterations of a kernel's outer loop, each of whose
/// iterations runs an inner loop of at most `inner` iterations, so that every pass runs at most
/// `cap` iterations in all (`fixed` of them outside the two loops).
pub(crate) fn row_passes(
    op: &'static str, rows: usize, inner: usize, fixed: usize, cap: usize,
) -> Result<Vec<(u32, u32)>> {
    let per_row = inner.saturating_add(1);
    let per_pass = cap.saturating_sub(fixed) / per_row;
    if per_pass == 0 {
        return Err(Error::TooLarge {
            op,
            msg: format!(
                "a window row of {inner} taps exceeds the GPU kernels' budget of {cap} loop \
                 iterations per invocation; run this op on the CPU device"
            ),
        });
    }
    let rows = u32::try_from(rows).map_err(|_| Error::TooLarge {
        op,
        msg: format!("{rows} window rows do not fit the GPU's 32-bit indices"),
    })?;
    let step = u32::try_from(per_pass).unwrap_or(u32::MAX);
    let mut passes = Vec::new();
    let mut r0 = 0u32;
    loop {
        let r1 = r0.saturating_add(step).min(rows);
        passes.push((r0, r1));
        if r1 >= rows {
            return Ok(passes);
        }
        r0 = r1;
    }
}

/// Elements per thread of one pass of a workgroup reduction (256 threads striding over a
/// chunk, then an 8-step tree), within `cap`.
pub(crate) fn reduce_stride_trips(cap: usize) -> usize {
    // 80 left for the tree (8) or the subgroups' butterfly (at most 7) and in-order pass (at
    // most 63)
    cap.saturating_sub(80).clamp(1, 64)
}

/// The GEMM's K range per dispatch within `cap` (at least one K tile: a context's cap is never
/// below the GEMM's `fixed + per_tile`, see `GpuLimits`).
pub(crate) fn gemm_k_chunk(cap: usize, t: &GemmTiles) -> usize {
    let (fixed, per_tile) = t.trips();
    t.bk as usize * (cap.saturating_sub(fixed) / per_tile).max(1)
}

#[cfg(test)]
mod tests {
    use super::super::tiles::GemmTiling;
    use super::*;

    #[test]
    fn passes_cover_the_rows_in_order_within_the_cap() {
        let p = row_passes("t", 10, 3, 4, 20).unwrap();
        // 16 iterations left per pass, 4 per row: 4 rows a pass
        assert_eq!(p, vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(row_passes("t", 3, 3, 0, 100).unwrap(), vec![(0, 3)]);
        assert_eq!(row_passes("t", 0, 3, 0, 100).unwrap(), vec![(0, 0)]);
        let e = row_passes("max_pool2d", 2, 100, 0, 50).unwrap_err();
        assert!(e.to_string().starts_with("max_pool2d: a window row of 100 taps"), "{e}");
    }

    #[test]
    fn chunks_fit_the_cap() {
        for cap in [MIN_LOOP_CAP, 1000, 16384, 65535] {
            assert!(reduce_stride_trips(cap) + 80 <= cap);
            for t in
                [GemmTiling::HARDWARE, GemmTiling::SOFTWARE].iter().flat_map(|t| [t.large, t.small])
            {
                let (fixed, per_tile) = t.trips();
                let cap = cap.max(fixed + per_tile);
                let k = gemm_k_chunk(cap, &t);
                assert!(k.is_multiple_of(t.bk as usize) && k > 0);
                assert!(k / t.bk as usize * per_tile + fixed <= cap, "cap {cap}: k chunk {k}");
            }
            assert!(search_trips(1 << 31, 1 << 31) < cap);
        }
    }
}
