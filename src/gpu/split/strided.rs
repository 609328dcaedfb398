//! The strided cut: an op that reads its operands through strides over an output shape
//! (broadcasting, permuting, flipping) runs on pieces of that shape: the outer axes one index
//! at a time, the first axis whose inner block fits a binding in runs of indices. Each piece
//! reads one range of each operand, copied into a buffer of its own.

use super::{gather_range, resolve, too_large, Ctx};
use crate::gpu::runtime::GpuBuffer;
use crate::Result;

/// An operand read through strides over an output shape, from `offset`.
pub(crate) struct View<'a> {
    pub buf: &'a GpuBuffer,
    pub strides: Vec<isize>,
    pub offset: usize,
}

/// One piece of a strided op: its output shape, and per operand its strides and offset within
/// the piece's copy.
pub(crate) type StridedPiece<'a> = (&'a [usize], &'a [(Vec<isize>, usize)]);

/// Runs `run(operands, piece)` over pieces of `out`, each within one binding, and puts the
/// pieces' outputs together.
pub(crate) fn split_strided(
    ctx: &Ctx, op: &'static str, out: &[usize], views: &[View],
    mut run: impl FnMut(&[&GpuBuffer], StridedPiece) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    let max = ctx.binding_len();
    let total: usize = out.iter().product();
    let result = ctx.alloc_any(total, op)?;
    if total == 0 {
        return Ok(result);
    }
    // elements one index of axis k reads of a view past axis k
    let inner_span = |v: &View, k: usize| {
        1 + (k + 1..out.len()).map(|j| (out[j] - 1) * v.strides[j].unsigned_abs()).sum::<usize>()
    };
    let inner_len = |k: usize| out[k + 1..].iter().product::<usize>();
    let k = (0..out.len())
        .find(|&k| inner_len(k) <= max && views.iter().all(|v| inner_span(v, k) <= max))
        .ok_or_else(|| too_large(op, total, max))?;
    let inner = inner_len(k);
    let mut per = (max / inner).min(out[k]);
    for v in views {
        let st = v.strides[k].unsigned_abs();
        if let Some(q) = (max - inner_span(v, k)).checked_div(st) {
            per = per.min(q + 1);
        }
    }
    let outer: usize = out[..k].iter().product();
    for o in 0..outer {
        // the outer multi-index, last axis fastest
        let mut rest = o;
        let mut idx = vec![0; k];
        for j in (0..k).rev() {
            idx[j] = rest % out[j];
            rest /= out[j];
        }
        for a in (0..out[k]).step_by(per) {
            let c = per.min(out[k] - a);
            let mut shape = vec![c];
            shape.extend_from_slice(&out[k + 1..]);
            let mut got = Vec::new();
            let mut strides = Vec::new();
            for v in views {
                let base = v.offset as isize
                    + (0..k).map(|j| idx[j] as isize * v.strides[j]).sum::<isize>()
                    + a as isize * v.strides[k];
                let low = (c as isize - 1) * v.strides[k].min(0)
                    + (k + 1..out.len())
                        .map(|j| (out[j] as isize - 1) * v.strides[j].min(0))
                        .sum::<isize>();
                let lo = (base + low) as usize;
                let span = (c - 1) * v.strides[k].unsigned_abs() + inner_span(v, k);
                got.push(gather_range(ctx, v.buf, lo, span)?);
                strides.push((v.strides[k..].to_vec(), (base as usize) - lo));
            }
            let pieces = resolve(views.iter().map(|v| v.buf), &got);
            let part = run(&pieces, (&shape, &strides))?;
            let at = (o * out[k] + a) * inner;
            ctx.copy_range((&part, 0), (&result, at), c * inner)?;
        }
    }
    Ok(result)
}
