//! Work past one storage binding, split into pieces that fit: a tensor larger than one binding
//! is stored in parts (`GpuContext::alloc_any`), and an op on it runs its usual kernel once per
//! piece. Each piece's operands are copied out of the parts into buffers of their own (a buffer
//! copy, no kernel), and each piece's output is copied into the parts of the result.
//!
//! Two shapes of split cover the kernels: by rows (a leading axis, each row reading a fixed
//! range of every operand: batches, planes, flat elements) and by a strided view (broadcast
//! and permuted reads, `split_strided`).

use std::sync::atomic::Ordering;

use super::context::lock;
use super::{GpuBackend, GpuBuffer, GpuContext};
use crate::backend::{BinaryOp, BroadcastSpec};
use crate::{Error, Result};

impl GpuContext {
    /// Records a copy of `len` elements from `src[src_at..]` to `dst[dst_at..]`, across the parts
    /// of either.
    pub(super) fn copy_range(
        &self,
        (src, src_at): (&GpuBuffer, usize),
        (dst, dst_at): (&GpuBuffer, usize),
        len: usize,
    ) -> Result<()> {
        let _serial = self.serial();
        let mut pending = lock(&self.pending);
        let (srcs, dsts) = (src.pieces(), dst.pieces());
        let mut done = 0;
        while done < len {
            let (s, s0) = piece_at(&srcs, src_at + done);
            let (d, d0) = piece_at(&dsts, dst_at + done);
            let (s_off, d_off) = (src_at + done - s0, dst_at + done - d0);
            let n = (len - done).min(s.len - s_off).min(d.len - d_off);
            self.ensure_valid(s)?;
            let epoch = pending.epoch;
            let bytes = |e: usize| (e * 4) as u64;
            pending.encoder(&self.device).copy_buffer_to_buffer(
                s.raw(),
                bytes(s_off),
                d.raw(),
                bytes(d_off),
                bytes(n),
            );
            d.epoch.store(epoch, Ordering::SeqCst);
            pending.ops += 1;
            if pending.ops >= super::batch::MAX_PENDING {
                self.submit_locked(&mut pending)?;
            }
            done += n;
        }
        Ok(())
    }
}

impl GpuBackend {
    /// Copies `rows` runs of `len` elements: run `r` from `src` at `from + r * from_stride` to
    /// `dst` at `to + r * to_stride`, as one copy where the runs are back to back on both sides.
    pub(super) fn copy_rows(
        &self,
        (src, from, from_stride): (&GpuBuffer, usize, usize),
        (dst, to, to_stride): (&GpuBuffer, usize, usize),
        rows: usize,
        len: usize,
    ) -> Result<()> {
        if from_stride == len && to_stride == len {
            return self.ctx.copy_range((src, from), (dst, to), rows * len);
        }
        for r in 0..rows {
            let (f, t) = (from + r * from_stride, to + r * to_stride);
            self.ctx.copy_range((src, f), (dst, t), len)?;
        }
        Ok(())
    }
}

/// The piece holding element `at`, and the index its first element has.
fn piece_at<'a>(pieces: &[(&'a GpuBuffer, usize)], at: usize) -> (&'a GpuBuffer, usize) {
    let i = pieces.partition_point(|&(_, start)| start <= at) - 1;
    pieces[i]
}

/// What one row of split work reads of an operand: rows `[r0, r1)` read the elements
/// `[r0 * stride, (r1 - 1) * stride + extent)`; with `stride` 0, the same `extent` elements
/// for every row (a weight, a bias).
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    pub buf: &'a GpuBuffer,
    pub stride: usize,
    pub extent: usize,
}

impl<'a> Rows<'a> {
    /// `per` elements per row, rows back to back.
    pub fn per(buf: &'a GpuBuffer, per: usize) -> Self {
        Rows {
            buf,
            stride: per,
            extent: per,
        }
    }
    /// The whole buffer, for every row.
    pub fn whole(buf: &'a GpuBuffer) -> Self {
        Rows {
            buf,
            stride: 0,
            extent: buf.len,
        }
    }
    /// Elements that `rows` consecutive rows read.
    fn span(&self, rows: usize) -> usize {
        match (self.stride, rows) {
            (0, _) => self.extent,
            (_, 0) => 0,
            (stride, _) => (rows - 1) * stride + self.extent,
        }
    }
}

impl GpuBackend {
    /// The most elements one kernel operand may hold.
    pub(super) fn binding_len(&self) -> usize {
        self.ctx.binding_len()
    }

    /// True when every input is one buffer and every output length fits one binding.
    pub(super) fn fits(&self, inputs: &[&GpuBuffer], outputs: &[usize]) -> bool {
        let max = self.binding_len();
        inputs.iter().all(|b| !b.is_split()) && outputs.iter().all(|&n| n <= max)
    }

    /// An `Err` naming `op` when one of `lens` (an operand read whole, a whole output) is past
    /// one binding: no split reaches inside it.
    pub(super) fn each_fits(&self, op: &'static str, lens: &[usize]) -> Result<()> {
        let max = self.binding_len();
        match lens.iter().find(|&&n| n > max) {
            Some(&n) => Err(too_large(op, n, max)),
            None => Ok(()),
        }
    }

    /// How many rows one piece takes: every operand's span and every output within a binding.
    pub(super) fn rows_per_piece(
        &self,
        op: &'static str,
        rows: usize,
        ins: &[Rows],
        out_rows: &[usize],
    ) -> Result<usize> {
        let max = self.binding_len();
        let mut c = rows.max(1);
        for r in ins {
            if r.extent > max {
                return Err(too_large(op, r.extent, max));
            }
            if let Some(q) = (max - r.extent).checked_div(r.stride) {
                c = c.min(q + 1);
            }
        }
        for &o in out_rows.iter().filter(|&&o| o > 0) {
            if o > max {
                return Err(too_large(op, o, max));
            }
            c = c.min(max / o);
        }
        Ok(c)
    }

    /// Each operand's elements for rows `[r0, r1)`: the buffer itself where it is read whole,
    /// else a copy of the range into a buffer of its own.
    fn gather(&self, ins: &[Rows], r0: usize, r1: usize) -> Result<Vec<Gathered>> {
        ins.iter()
            .map(|r| self.gather_range(r.buf, r0 * r.stride, r.span(r1 - r0)))
            .collect()
    }

    /// `len` elements of `buf` from `at`, as one buffer (`buf` itself where that is all of it).
    pub(super) fn gather_range(&self, buf: &GpuBuffer, at: usize, len: usize) -> Result<Gathered> {
        if !buf.is_split() && at == 0 && len == buf.len {
            return Ok(Gathered::Same);
        }
        let piece = self.ctx.alloc(len, "split")?;
        self.ctx.copy_range((buf, at), (&piece, 0), len)?;
        Ok(Gathered::Copy(piece))
    }

    /// Calls `each(pieces, r0, r1)` on runs of `rows` rows, each run's operands within one
    /// binding (`out_rows`: the outputs' elements per row, which bound the run too).
    fn each_piece(
        &self,
        op: &'static str,
        rows: usize,
        ins: &[Rows],
        out_rows: &[usize],
        mut each: impl FnMut(&[&GpuBuffer], usize, usize) -> Result<()>,
    ) -> Result<()> {
        let per = self.rows_per_piece(op, rows, ins, out_rows)?;
        // at least one run, so that zero rows still reach the op's own zero-row result
        for r0 in (0..rows.max(1)).step_by(per) {
            let r1 = (r0 + per).min(rows);
            let got = self.gather(ins, r0, r1)?;
            each(&resolve(ins.iter().map(|r| r.buf), &got), r0, r1)?;
        }
        Ok(())
    }

    /// Runs `run(pieces, rows)` on runs of `rows` rows, each within one binding, and puts its
    /// outputs (`out_rows[j]` elements per row for output `j`) together in row order. Where one
    /// run takes every row, its outputs are the result, uncopied.
    fn split_rows(
        &self,
        op: &'static str,
        rows: usize,
        ins: &[Rows],
        out_rows: &[usize],
        run: impl Fn(&[&GpuBuffer], usize) -> Result<Vec<GpuBuffer>>,
    ) -> Result<Vec<GpuBuffer>> {
        if self.rows_per_piece(op, rows, ins, out_rows)? >= rows {
            let got = self.gather(ins, 0, rows)?;
            return run(&resolve(ins.iter().map(|r| r.buf), &got), rows);
        }
        let outs = out_rows
            .iter()
            .map(|&o| self.ctx.alloc_any(rows * o, op))
            .collect::<Result<Vec<_>>>()?;
        self.each_piece(op, rows, ins, out_rows, |p, r0, r1| {
            for ((out, piece), &o) in outs.iter().zip(&run(p, r1 - r0)?).zip(out_rows) {
                self.ctx
                    .copy_range((piece, 0), (out, r0 * o), (r1 - r0) * o)?;
            }
            Ok(())
        })?;
        Ok(outs)
    }

    /// `a + b`, elementwise over `len` elements, split where they are past one binding.
    pub(super) fn add_same(&self, a: &GpuBuffer, b: &GpuBuffer, len: usize) -> Result<GpuBuffer> {
        let spec = BroadcastSpec {
            out: vec![len],
            a_strides: vec![1],
            b_strides: vec![1],
        };
        self.binary_any(a, b, BinaryOp::Add, &spec)
    }

    /// An op over `n` items (a batch, planes) whose `ins` are read per item (or whole) and whose
    /// output has `out_item` elements per item: `run(inputs, items)` on all of them where they
    /// fit one binding, else on runs of items.
    pub(super) fn by_items(
        &self,
        op: &'static str,
        n: usize,
        ins: &[Rows],
        out_item: usize,
        run: impl Fn(&[&GpuBuffer], usize) -> Result<GpuBuffer>,
    ) -> Result<GpuBuffer> {
        let mut outs = self.split_rows(op, n, ins, &[out_item], |p, n| Ok(vec![run(p, n)?]))?;
        Ok(outs.remove(0))
    }

    /// [`GpuBackend::by_items`] for two outputs (a pool's values and indices).
    pub(super) fn by_items2(
        &self,
        op: &'static str,
        n: usize,
        ins: &[Rows],
        out_item: usize,
        run: impl Fn(&[&GpuBuffer], usize) -> Result<(GpuBuffer, GpuBuffer)>,
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let outs = self.split_rows(op, n, ins, &[out_item; 2], |p, n| {
            let (a, b) = run(p, n)?;
            Ok(vec![a, b])
        })?;
        let [a, b]: [GpuBuffer; 2] = outs
            .try_into()
            .map_err(|_| Error::Gpu(format!("{op}: split lost an output")))?;
        Ok((a, b))
    }

    /// [`GpuBackend::by_items`] for an op whose items each add into one `len`-element result
    /// (a weight gradient over a batch): the runs' partials are summed in order.
    pub(super) fn by_items_summed(
        &self,
        op: &'static str,
        n: usize,
        ins: &[Rows],
        len: usize,
        run: impl Fn(&[&GpuBuffer], usize) -> Result<GpuBuffer>,
    ) -> Result<GpuBuffer> {
        self.each_fits(op, &[len])?;
        let mut sum: Option<GpuBuffer> = None;
        self.each_piece(op, n, ins, &[], |p, r0, r1| {
            let part = run(p, r1 - r0)?;
            sum = Some(match sum.take() {
                None => part,
                Some(s) => self.add_same(&s, &part, len)?,
            });
            Ok(())
        })?;
        sum.map_or_else(|| self.full(len, 0.0), Ok)
    }
}

/// An operand of one piece: the original buffer, or a copy of the range the piece reads.
pub(super) enum Gathered {
    Same,
    Copy(GpuBuffer),
}

/// The buffers a piece binds: each original where it was not copied.
pub(super) fn resolve<'a>(
    orig: impl Iterator<Item = &'a GpuBuffer>,
    got: &'a [Gathered],
) -> Vec<&'a GpuBuffer> {
    orig.zip(got)
        .map(|(b, g)| match g {
            Gathered::Same => b,
            Gathered::Copy(c) => c,
        })
        .collect()
}

pub(super) fn too_large(op: &'static str, n: usize, max: usize) -> Error {
    Error::Invalid {
        op,
        msg: format!(
            "one indivisible piece of this op needs {n} elements in one storage binding, past the adapter's {max}"
        ),
    }
}
