//! Reductions over the middle axis of `(outer, len, inner)`.

use rayon::prelude::*;

use super::host::{host_vec, par_chunks};
use crate::backend::ReduceOp;
use crate::Result;

/// Elements per parallel block of a long sum.
const SUM_BLOCK: usize = 1 << 14;
/// Up to this many outputs, a long sum is split into blocks across threads.
const FEW_OUTPUTS: usize = 16;
/// Rows per task when reducing contiguous rows.
const ROWS_PER_TASK: usize = 64;

/// `(outer, len, inner) -> (outer, inner)`, combining in index order; sums go through
/// `sum_axis`.
pub(super) fn reduce_axis(
    x: &[f32], outer: usize, len: usize, inner: usize, op: ReduceOp,
) -> Result<Vec<f32>> {
    if op == ReduceOp::Sum {
        return sum_axis(x, outer, len, inner);
    }
    let mut out = host_vec(outer * inner, op.identity(), "reduce_axis")?;
    par_chunks(&mut out, inner, |o, row| {
        let base = o * len * inner;
        for k in 0..len {
            let src = &x[base + k * inner..base + (k + 1) * inner];
            for (r, s) in row.iter_mut().zip(src) {
                *r = op.combine(*r, *s);
            }
        }
    });
    Ok(out)
}

/// Sums the middle axis of `(outer, len, inner)` with f64 accumulators, so long sums keep
/// float32 accuracy (a plain f32 running sum stops growing at 2^24). Few outputs over a long
/// axis are summed in parallel blocks.
fn sum_axis(x: &[f32], outer: usize, len: usize, inner: usize) -> Result<Vec<f32>> {
    let outputs = outer * inner;
    // The path depends on the shape only (never on the thread count), so results do too.
    if outputs < FEW_OUTPUTS && len >= 2 * SUM_BLOCK {
        // Fixed blocks summed in parallel, then the block sums in order: the same result
        // whatever the thread count or scheduling.
        return Ok((0..outputs)
            .map(|o| {
                let base = (o / inner) * len * inner + o % inner;
                let blocks: Vec<f64> = (0..len.div_ceil(SUM_BLOCK))
                    .into_par_iter()
                    .map(|b| {
                        (b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(len))
                            .map(|k| x[base + k * inner] as f64)
                            .sum::<f64>()
                    })
                    .collect();
                blocks.iter().sum::<f64>() as f32
            })
            .collect());
    }
    let mut out = host_vec(outputs, 0.0, "sum")?;
    if inner == 1 {
        // contiguous rows (a conv bias gradient's planes): tasks of many rows, each summed in
        // order as below
        out.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(t, sums)| {
            for (j, r) in sums.iter_mut().enumerate() {
                let row = &x[(t * ROWS_PER_TASK + j) * len..][..len];
                *r = row.iter().fold(0.0f64, |a, &v| a + v as f64) as f32;
            }
        });
        return Ok(out);
    }
    par_chunks(&mut out, inner, |o, row| {
        let base = o * len * inner;
        let mut acc = vec![0.0f64; inner];
        for k in 0..len {
            for (a, &v) in acc.iter_mut().zip(&x[base + k * inner..base + (k + 1) * inner]) {
                *a += v as f64;
            }
        }
        for (r, a) in row.iter_mut().zip(acc) {
            *r = a as f32;
        }
    });
    Ok(out)
}
