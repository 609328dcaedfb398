//! The reduction family (shaders/reduce.wgsl, and reduce_subgroups.wgsl where the adapter has
//! subgroups): one axis of `(outer, len, inner)`, in as many passes as the loop budget needs,
//! split past one binding by outer rows, runs of the axis, or blocks of columns.

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::u32_of;
use super::runtime::loops;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer, WG};
use super::split::{by_items, copy_rows, fits, owned_range, too_large, Ctx, Rows};
use crate::backend::ReduceOp;
use crate::Result;

kernels! { REDUCE_WGSL = ("reduce", include_str!("../../shaders/reduce.wgsl"), XY): ReduceParams;
    SUM_NARROW = ("sum_narrow", "sum", Bind::MAP);
    SUM_WIDE = ("sum_wide", "sum", Bind::MAP);
}

kernels! { REDUCE_SUBGROUPS_WGSL = ("reduce_subgroups", concat!(include_str!("../../shaders/reduce.wgsl"), "\n", include_str!("../../shaders/reduce_subgroups.wgsl")), XY): ReduceParams;
    SUM_WIDE_SUBGROUPS = ("sum_wide_subgroups", "sum", Bind::MAP);
}

uniform! {
    ReduceParams as "Params" {
        outer: u32,
        len: u32,
        inner: u32,
        op: u32,
        /// sum_wide: axis elements per workgroup, and workgroups per output
        chunk: u32,
        chunks: u32,
        _pad: [u32; 2],
    }
}

// reduce.wgsl with its subgroup entry point (adapters with `Features::SUBGROUP` only)

const XY: &[Buffer] = &[Buffer::read("x"), Buffer::write("y")];

/// Axis length from which a reduction uses whole workgroups (shorter axes: one thread each).
const WIDE_REDUCE_MIN: usize = 128;
/// On software adapters, axes up to this long (and within the loop budget) take one thread
/// per output too: there a workgroup's barriers switch between its lanes and every lane loads
/// on its own, so a bias gradient's 196-long planes summed 8x faster on lavapipe. Longer axes
/// with few outputs still gain from whole workgroups.
const SOFTWARE_NARROW_MAX: usize = 4096;

/// `(outer, len, inner) -> (outer, inner)`, split by outer rows, by runs of the reduced axis
/// (partial results reduced again), or for a very long inner axis by column blocks.
pub(crate) fn reduce(
    ctx: &Ctx, x: &GpuBuffer, (outer, len, inner): (usize, usize, usize), op: ReduceOp,
) -> Result<GpuBuffer> {
    let max = ctx.binding_len();
    if fits(ctx, &[x], &[outer * inner]) {
        return reduce_kernel(ctx, x, (outer, len, inner), op);
    }
    if len * inner <= max {
        let ins = [Rows::per(x, len * inner)];
        return by_items(ctx, "reduce", outer, &ins, inner, |p, o| {
            reduce_kernel(ctx, p[0], (o, len, inner), op)
        });
    }
    let run = max / inner.max(1);
    if run >= 2 {
        // partials (outer, runs, inner), each reducing `run` rows of the axis in order
        let runs = len.div_ceil(run);
        let partial = ctx.alloc_any(outer * runs * inner, "reduce")?;
        for o in 0..outer {
            for r in 0..runs {
                let l = run.min(len - r * run);
                let at = (o * len + r * run) * inner;
                let piece = owned_range(ctx, x, at, l * inner)?;
                let y = reduce_kernel(ctx, &piece, (1, l, inner), op)?;
                let to = (o * runs + r) * inner;
                ctx.copy_range((&y, 0), (&partial, to), inner)?;
            }
        }
        return reduce(ctx, &partial, (outer, runs, inner), op);
    }
    // inner past half a binding: blocks of columns, each gathered row by row
    if len > max {
        return Err(too_large("reduce", len, max));
    }
    let cols = (max / len).max(1);
    let y = ctx.alloc_any(outer * inner, "reduce")?;
    for o in 0..outer {
        for c0 in (0..inner).step_by(cols) {
            let c = cols.min(inner - c0);
            let piece = ctx.alloc(len * c, "reduce")?;
            let from = o * len * inner + c0;
            copy_rows(ctx, (x, from, inner), (&piece, 0, c), len, c)?;
            let part = reduce_kernel(ctx, &piece, (1, len, c), op)?;
            ctx.copy_range((&part, 0), (&y, o * inner + c0), c)?;
        }
    }
    Ok(y)
}

/// `(outer, len, inner) -> (outer, inner)` within one binding. Long axes go in chunks of a
/// fixed size (one workgroup each) into `(outer, chunks, inner)`, which is reduced again, so
/// no invocation loops past the budget and the order depends on the shape alone.
pub(crate) fn reduce_kernel(
    ctx: &Ctx, x: &GpuBuffer, (outer, len, inner): (usize, usize, usize), op: ReduceOp,
) -> Result<GpuBuffer> {
    // (MIN_LOOP_CAP > WIDE_REDUCE_MIN: the narrow loop always fits.) The order differs from the
    // tree's, but is fixed per adapter and shape.
    let mut p = ReduceParams {
        outer: u32_of(outer, "sum")?,
        len: u32_of(len, "sum")?,
        inner: u32_of(inner, "sum")?,
        op: op.code(),
        chunk: 0,
        chunks: 1,
        _pad: [0; 2],
    };
    let short_on_software = ctx.adapter().is_software && len <= SOFTWARE_NARROW_MAX.min(ctx.cap());
    if len < WIDE_REDUCE_MIN || short_on_software {
        return ctx.map(&SUM_NARROW, &p, &[x], outer * inner);
    }
    let chunk = WG * loops::reduce_stride_trips(ctx.cap());
    let chunks = len.div_ceil(chunk);
    p.chunk = u32_of(chunk, "sum")?;
    p.chunks = u32_of(chunks, "sum")?;
    let groups = outer * chunks * inner;
    let out = ctx.alloc(groups, "sum")?;
    let kernel = match ctx.uses_subgroups() {
        true => &SUM_WIDE_SUBGROUPS,
        false => &SUM_WIDE,
    };
    ctx.launch(kernel, &p, &[x, &out], ctx.groups("sum", groups)?)?;
    if chunks == 1 {
        return Ok(out);
    }
    // (outer, chunks, inner)
    reduce_kernel(ctx, &out, (outer, chunks, inner), op)
}
