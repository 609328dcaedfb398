//! Work past one storage binding, split into pieces that fit. A tensor larger than one binding
//! is stored in parts (`GpuContext::alloc_any`), and an op on it runs its usual kernel once per
//! piece: each piece's operands are copied out of the parts into buffers of their own (a buffer
//! copy, no kernel), and each piece's output is copied into the parts of the result.
//!
//! One mechanism, three cuts, which the families choose: by items (a leading axis such as the
//! batch or the planes, each item reading a fixed range of every operand: [`by_items`] and its
//! two- and summed-output forms), by a strided view (broadcast and permuted reads:
//! [`strided::split_strided`]), and a convolution's image in bands of output rows
//! ([`bands`]). Where everything fits, the family's kernel runs once, uncopied.

pub(crate) mod bands;
pub(crate) mod strided;

use std::sync::Arc;

use super::elementwise;
use super::runtime::{GpuBuffer, GpuContext};
use crate::{Error, Result};

/// The GPU context the families and the split mechanism work on.
pub(crate) type Ctx = Arc<GpuContext>;

/// Copies `rows` runs of `len` elements: run `r` from `src` at `from + r * from_stride` to
/// `dst` at `to + r * to_stride`, as one copy where the runs are back to back on both sides.
pub(crate) fn copy_rows(
    ctx: &Ctx, (src, from, from_stride): (&GpuBuffer, usize, usize),
    (dst, to, to_stride): (&GpuBuffer, usize, usize), rows: usize, len: usize,
) -> Result<()> {
    if from_stride == len && to_stride == len {
        return ctx.copy_range((src, from), (dst, to), rows * len);
    }
    for r in 0..rows {
        let (f, t) = (from + r * from_stride, to + r * to_stride);
        ctx.copy_range((src, f), (dst, t), len)?;
    }
    Ok(())
}

/// What one item of split work reads of an operand: items `[r0, r1)` read the elements
/// `[r0 * stride, (r1 - 1) * stride + extent)`; with `stride` 0, the same `extent` elements
/// for every item (a weight, a bias).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub buf: &'a GpuBuffer,
    pub stride: usize,
    pub extent: usize,
}

impl<'a> Rows<'a> {
    /// `per` elements per item, items back to back.
    pub fn per(buf: &'a GpuBuffer, per: usize) -> Self {
        Rows { buf, stride: per, extent: per }
    }
    /// The whole buffer, for every item.
    pub fn whole(buf: &'a GpuBuffer) -> Self {
        Rows { buf, stride: 0, extent: buf.len }
    }
    /// Elements that `rows` consecutive items read.
    fn span(&self, rows: usize) -> usize {
        match (self.stride, rows) {
            (0, _) => self.extent,
            (_, 0) => 0,
            (stride, _) => (rows - 1) * stride + self.extent,
        }
    }
}

/// True when every input is one buffer and every output length fits one binding.
pub(crate) fn fits(ctx: &Ctx, inputs: &[&GpuBuffer], outputs: &[usize]) -> bool {
    let max = ctx.binding_len();
    inputs.iter().all(|b| !b.is_split()) && outputs.iter().all(|&n| n <= max)
}

/// An `Err` naming `op` when one of `lens` (an operand read whole, a whole output) is past
/// one binding: no split reaches inside it.
pub(crate) fn each_fits(ctx: &Ctx, op: &'static str, lens: &[usize]) -> Result<()> {
    let max = ctx.binding_len();
    match lens.iter().find(|&&n| n > max) {
        Some(&n) => Err(too_large(op, n, max)),
        None => Ok(()),
    }
}

/// How many items one piece takes: every operand's span and every output within a binding.
pub(crate) fn items_per_piece(
    ctx: &Ctx, op: &'static str, items: usize, ins: &[Rows], out_item: &[usize],
) -> Result<usize> {
    let max = ctx.binding_len();
    let mut c = items.max(1);
    for r in ins {
        if r.extent > max {
            return Err(too_large(op, r.extent, max));
        }
        if let Some(q) = (max - r.extent).checked_div(r.stride) {
            c = c.min(q + 1);
        }
    }
    for &o in out_item.iter().filter(|&&o| o > 0) {
        if o > max {
            return Err(too_large(op, o, max));
        }
        c = c.min(max / o);
    }
    Ok(c)
}

/// An operand of one piece: the original buffer, or a copy of the range the piece reads.
pub(crate) enum Gathered {
    Same,
    Copy(GpuBuffer),
}

/// `len` elements of `buf` from `at`, as one buffer (`buf` itself where that is all of it).
pub(crate) fn gather_range(ctx: &Ctx, buf: &GpuBuffer, at: usize, len: usize) -> Result<Gathered> {
    if !buf.is_split() && at == 0 && len == buf.len {
        return Ok(Gathered::Same);
    }
    Ok(Gathered::Copy(owned_range(ctx, buf, at, len)?))
}

/// `len` elements of `x` from `at` as one buffer of its own.
pub(crate) fn owned_range(ctx: &Ctx, x: &GpuBuffer, at: usize, len: usize) -> Result<GpuBuffer> {
    let piece = ctx.alloc(len, "split")?;
    ctx.copy_range((x, at), (&piece, 0), len)?;
    Ok(piece)
}

/// The buffers a piece binds: each original where it was not copied.
pub(crate) fn resolve<'a>(
    orig: impl Iterator<Item = &'a GpuBuffer>, got: &'a [Gathered],
) -> Vec<&'a GpuBuffer> {
    orig.zip(got)
        .map(|(b, g)| match g {
            Gathered::Same => b,
            Gathered::Copy(c) => c,
        })
        .collect()
}

/// Each operand's elements for items `[r0, r1)`.
fn gather(ctx: &Ctx, ins: &[Rows], r0: usize, r1: usize) -> Result<Vec<Gathered>> {
    ins.iter().map(|r| gather_range(ctx, r.buf, r0 * r.stride, r.span(r1 - r0))).collect()
}

/// Calls `each(pieces, r0, r1)` on runs of `items` items, each run's operands within one
/// binding (`out_item`: the outputs' elements per item, which bound the run too).
fn each_piece(
    ctx: &Ctx, op: &'static str, items: usize, ins: &[Rows], out_item: &[usize],
    mut each: impl FnMut(&[&GpuBuffer], usize, usize) -> Result<()>,
) -> Result<()> {
    let per = items_per_piece(ctx, op, items, ins, out_item)?;
    // at least one run, so that zero items still reach the op's own zero-item result
    for r0 in (0..items.max(1)).step_by(per) {
        let r1 = (r0 + per).min(items);
        let got = gather(ctx, ins, r0, r1)?;
        each(&resolve(ins.iter().map(|r| r.buf), &got), r0, r1)?;
    }
    Ok(())
}

/// Runs `run(pieces, items)` on runs of items, each within one binding, and puts its outputs
/// (`out_item[j]` elements per item for output `j`) together in item order. Where one run
/// takes every item, its outputs are the result, uncopied.
fn split_items<const N: usize>(
    ctx: &Ctx, op: &'static str, items: usize, ins: &[Rows], out_item: [usize; N],
    run: impl Fn(&[&GpuBuffer], usize) -> Result<[GpuBuffer; N]>,
) -> Result<[GpuBuffer; N]> {
    if items_per_piece(ctx, op, items, ins, &out_item)? >= items {
        let got = gather(ctx, ins, 0, items)?;
        return run(&resolve(ins.iter().map(|r| r.buf), &got), items);
    }
    let outs =
        out_item.iter().map(|&o| ctx.alloc_any(items * o, op)).collect::<Result<Vec<_>>>()?;
    each_piece(ctx, op, items, ins, &out_item, |p, r0, r1| {
        for ((out, piece), &o) in outs.iter().zip(&run(p, r1 - r0)?).zip(&out_item) {
            ctx.copy_range((piece, 0), (out, r0 * o), (r1 - r0) * o)?;
        }
        Ok(())
    })?;
    outs.try_into().map_err(|_| Error::Gpu(format!("{op}: split lost an output")))
}

/// An op over `n` items (a batch, planes) whose `ins` are read per item (or whole) and whose
/// output has `out_item` elements per item: `run(inputs, items)` on all of them where they
/// fit one binding, else on runs of items.
pub(crate) fn by_items(
    ctx: &Ctx, op: &'static str, n: usize, ins: &[Rows], out_item: usize,
    run: impl Fn(&[&GpuBuffer], usize) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    let [out] = split_items(ctx, op, n, ins, [out_item], |p, n| Ok([run(p, n)?]))?;
    Ok(out)
}

/// [`by_items`] for two outputs (a pool's values and indices).
pub(crate) fn by_items2(
    ctx: &Ctx, op: &'static str, n: usize, ins: &[Rows], out_item: usize,
    run: impl Fn(&[&GpuBuffer], usize) -> Result<(GpuBuffer, GpuBuffer)>,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let [a, b] = split_items(ctx, op, n, ins, [out_item; 2], |p, n| {
        let (a, b) = run(p, n)?;
        Ok([a, b])
    })?;
    Ok((a, b))
}

/// A sum of `len`-element partials, in the order they come (weight gradients over pieces).
pub(crate) struct Partials {
    sum: Option<GpuBuffer>,
    len: usize,
}

impl Partials {
    pub(crate) fn new(len: usize) -> Self {
        Partials { sum: None, len }
    }
    pub(crate) fn add(&mut self, ctx: &Ctx, part: GpuBuffer) -> Result<()> {
        self.sum = Some(match self.sum.take() {
            None => part,
            Some(s) => elementwise::add_same(ctx, &s, &part, self.len)?,
        });
        Ok(())
    }
    /// The sum, or zeros where nothing was added.
    pub(crate) fn finish(self, ctx: &Ctx) -> Result<GpuBuffer> {
        self.sum.map_or_else(|| elementwise::full(ctx, self.len, 0.0), Ok)
    }
}

/// [`by_items`] for an op whose items each add into one `len`-element result (a weight
/// gradient over a batch): the runs' partials are summed in order.
pub(crate) fn by_items_summed(
    ctx: &Ctx, op: &'static str, n: usize, ins: &[Rows], len: usize,
    run: impl Fn(&[&GpuBuffer], usize) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    each_fits(ctx, op, &[len])?;
    let mut sum = Partials::new(len);
    each_piece(ctx, op, n, ins, &[], |p, r0, r1| sum.add(ctx, run(p, r1 - r0)?))?;
    sum.finish(ctx)
}

/// The refusal of a piece that cannot be cut further.
pub(crate) fn too_large(op: &'static str, n: usize, max: usize) -> Error {
    Error::TooLarge {
        op,
        msg: format!(
            "one indivisible piece of this op needs {n} elements in one storage binding, past the adapter's {max}"
        ),
    }
}
