//! The split paths of the elementwise, copy, reduction and GEMM kernels: each runs its kernel
//! directly where every operand fits one storage binding, else on pieces that do (`split`).

use super::split::{resolve, too_large, Rows};
use super::split_window::batch;
use super::{GpuBackend, GpuBuffer};
use crate::backend::{
    BinaryOp, BroadcastSpec, GemmSpec, MatLayout, ReduceOp, StridedSpec, UnaryOp,
};
use crate::shape::WindowGeom;
use crate::{Error, Result};

/// An operand read through strides over an output shape, from `offset`.
struct View<'a> {
    buf: &'a GpuBuffer,
    strides: Vec<isize>,
    offset: usize,
}

/// One piece of a strided op: its output shape, and per operand its strides and offset within
/// the piece's copy.
type StridedPiece<'a> = (&'a [usize], &'a [(Vec<isize>, usize)]);

impl GpuBackend {
    pub(super) fn unary_any(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        self.by_items("unary", n, &[Rows::per(x, 1)], 1, |p, n| {
            self.unary_op(p[0], n, op)
        })
    }

    pub(super) fn binary_any(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<GpuBuffer> {
        if self.fits(&[a, b], &[spec.len()]) {
            return self.binary_op(a, b, op, spec);
        }
        let view = |buf, st: &[usize]| View {
            buf,
            strides: st.iter().map(|&s| s as isize).collect(),
            offset: 0,
        };
        let views = [view(a, &spec.a_strides), view(b, &spec.b_strides)];
        self.split_strided("binary", &spec.out, &views, |p, (out, st)| {
            // strides are not negative here, so every piece starts at its copy's first element
            let piece = BroadcastSpec {
                out: out.to_vec(),
                a_strides: st[0].0.iter().map(|&s| s as usize).collect(),
                b_strides: st[1].0.iter().map(|&s| s as usize).collect(),
            };
            self.binary_op(p[0], p[1], op, &piece)
        })
    }

    pub(super) fn copy_any(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        let len = spec.out.iter().product();
        if self.fits(&[x], &[len]) {
            return self.copy(x, spec);
        }
        let views = [View {
            buf: x,
            strides: spec.strides.clone(),
            offset: spec.offset,
        }];
        self.split_strided("copy", &spec.out, &views, |p, (out, st)| {
            let piece = StridedSpec {
                out: out.to_vec(),
                strides: st[0].0.clone(),
                offset: st[0].1,
            };
            self.copy(p[0], &piece)
        })
    }

    /// A strided op over `out` in pieces: the outer axes one index at a time, the first axis
    /// whose inner block fits a binding in runs of indices. Each piece reads one range of each
    /// operand, copied into a buffer of its own.
    fn split_strided(
        &self,
        op: &'static str,
        out: &[usize],
        views: &[View],
        mut run: impl FnMut(&[&GpuBuffer], StridedPiece) -> Result<GpuBuffer>,
    ) -> Result<GpuBuffer> {
        let max = self.binding_len();
        let total: usize = out.iter().product();
        let result = self.ctx.alloc_any(total, op)?;
        if total == 0 {
            return Ok(result);
        }
        // elements one index of axis k reads of a view past axis k
        let inner_span = |v: &View, k: usize| {
            1 + (k + 1..out.len())
                .map(|j| (out[j] - 1) * v.strides[j].unsigned_abs())
                .sum::<usize>()
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
                        + (0..k)
                            .map(|j| idx[j] as isize * v.strides[j])
                            .sum::<isize>()
                        + a as isize * v.strides[k];
                    let low = (c as isize - 1) * v.strides[k].min(0)
                        + (k + 1..out.len())
                            .map(|j| (out[j] as isize - 1) * v.strides[j].min(0))
                            .sum::<isize>();
                    let lo = (base + low) as usize;
                    let span = (c - 1) * v.strides[k].unsigned_abs() + inner_span(v, k);
                    got.push(self.gather_range(v.buf, lo, span)?);
                    strides.push((v.strides[k..].to_vec(), (base as usize) - lo));
                }
                let pieces = resolve(views.iter().map(|v| v.buf), &got);
                let part = run(&pieces, (&shape, &strides))?;
                let at = (o * out[k] + a) * inner;
                self.ctx.copy_range((&part, 0), (&result, at), c * inner)?;
            }
        }
        Ok(result)
    }

    /// `(outer, len, inner) -> (outer, inner)`, split by outer rows, by runs of the reduced
    /// axis (partial results reduced again), or for a very long inner axis by column blocks.
    pub(super) fn reduce_any(
        &self,
        x: &GpuBuffer,
        (outer, len, inner): (usize, usize, usize),
        op: ReduceOp,
    ) -> Result<GpuBuffer> {
        let max = self.binding_len();
        if self.fits(&[x], &[outer * inner]) {
            return self.reduce(x, (outer, len, inner), op);
        }
        if len * inner <= max {
            return self.by_items(
                "reduce",
                outer,
                &[Rows::per(x, len * inner)],
                inner,
                |p, o| self.reduce(p[0], (o, len, inner), op),
            );
        }
        let run = max / inner.max(1);
        if run >= 2 {
            // partials (outer, runs, inner), each reducing `run` rows of the axis in order
            let runs = len.div_ceil(run);
            let partial = self.ctx.alloc_any(outer * runs * inner, "reduce")?;
            for o in 0..outer {
                for r in 0..runs {
                    let l = run.min(len - r * run);
                    let at = (o * len + r * run) * inner;
                    let piece = self.owned_range(x, at, l * inner)?;
                    let y = self.reduce(&piece, (1, l, inner), op)?;
                    let to = (o * runs + r) * inner;
                    self.ctx.copy_range((&y, 0), (&partial, to), inner)?;
                }
            }
            return self.reduce_any(&partial, (outer, runs, inner), op);
        }
        // inner past half a binding: blocks of columns, each gathered row by row
        if len > max {
            return Err(too_large("reduce", len, max));
        }
        let cols = (max / len).max(1);
        let y = self.ctx.alloc_any(outer * inner, "reduce")?;
        for o in 0..outer {
            for c0 in (0..inner).step_by(cols) {
                let c = cols.min(inner - c0);
                let piece = self.ctx.alloc(len * c, "reduce")?;
                let from = o * len * inner + c0;
                self.copy_rows((x, from, inner), (&piece, 0, c), len, c)?;
                let part = self.reduce(&piece, (1, len, c), op)?;
                self.ctx.copy_range((&part, 0), (&y, o * inner + c0), c)?;
            }
        }
        Ok(y)
    }

    /// `len` elements of `x` from `at` as one buffer of its own.
    pub(super) fn owned_range(&self, x: &GpuBuffer, at: usize, len: usize) -> Result<GpuBuffer> {
        let piece = self.ctx.alloc(len, "split")?;
        self.ctx.copy_range((x, at), (&piece, 0), len)?;
        Ok(piece)
    }

    /// A batched GEMM in blocks: batches, rows, columns and K ranges whose operand ranges fit
    /// a binding each; a block's K ranges are summed in order, then its rows copied into C.
    pub(super) fn gemm_any(&self, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
        if self.fits(&[a, b], &[s.c_len]) {
            return self.gemm_strided(a, b, s);
        }
        let max = self.binding_len();
        if (s.c.col_stride != 1 && s.n > 1) || s.k == 0 || s.m == 0 || s.n == 0 {
            return Err(too_large("matmul", s.c_len, max));
        }
        let (bb, mi, nj, kk) = gemm_blocks(s, max);
        let c = self.ctx.alloc_any(s.c_len, "matmul")?;
        for b0 in (0..s.batch).step_by(bb) {
            let nb = bb.min(s.batch - b0);
            for i0 in (0..s.m).step_by(mi) {
                let m = mi.min(s.m - i0);
                for j0 in (0..s.n).step_by(nj) {
                    let n = nj.min(s.n - j0);
                    let block = self.gemm_block((a, b), s, (b0, nb), (i0, m), (j0, n), kk)?;
                    for bi in 0..nb {
                        let to = s.c.base(b0 + bi, s.batch_inner) + i0 * s.c.row_stride + j0;
                        let rows = (&c, to, s.c.row_stride);
                        self.copy_rows((&block, bi * m * n, n), rows, m, n)?;
                    }
                }
            }
        }
        Ok(c)
    }

    /// One block of C, `(nb, m, n)` row-major: batches `b0..`, rows `i0..`, columns `j0..`, its K
    /// ranges of `kk` summed in order.
    fn gemm_block(
        &self,
        (a, b): (&GpuBuffer, &GpuBuffer),
        s: &GemmSpec,
        (b0, nb): (usize, usize),
        (i0, m): (usize, usize),
        (j0, n): (usize, usize),
        kk: usize,
    ) -> Result<GpuBuffer> {
        // where a layout's sub-block starts, and how many elements it spans
        let range = |l: &MatLayout, r0: usize, c0: usize, r: usize, cc: usize| {
            let at = l.base(b0, s.batch_inner) + r0 * l.row_stride + c0 * l.col_stride;
            (at, (nb - 1) * l.batch_outer_stride + span(l, r, cc))
        };
        let local = |l: &MatLayout| MatLayout {
            offset: 0,
            batch_inner_stride: 0,
            ..*l
        };
        let mut sum: Option<GpuBuffer> = None;
        for k0 in (0..s.k).step_by(kk) {
            let k = kk.min(s.k - k0);
            let (a_at, a_len) = range(&s.a, i0, k0, m, k);
            let (b_at, b_len) = range(&s.b, k0, j0, k, n);
            let got = [
                self.gather_range(a, a_at, a_len)?,
                self.gather_range(b, b_at, b_len)?,
            ];
            let p = resolve([a, b].into_iter(), &got);
            let piece = GemmSpec {
                batch: nb,
                batch_inner: 1,
                m,
                n,
                k,
                a: local(&s.a),
                b: local(&s.b),
                c: MatLayout::row_major(m, n),
                c_len: nb * m * n,
            };
            let part = self.gemm_strided(p[0], p[1], &piece)?;
            sum = Some(match sum {
                None => part,
                Some(acc) => self.add_same(&acc, &part, nb * m * n)?,
            });
        }
        // s.k > 0: at least one K range ran
        sum.ok_or_else(|| Error::Gpu("matmul: a block without a K range".into()))
    }
}

/// Elements a layout's `(r, c)` sub-block spans, first to last.
fn span(l: &MatLayout, r: usize, c: usize) -> usize {
    1 + (r - 1) * l.row_stride + (c - 1) * l.col_stride
}

/// GEMM blocks within one binding `max`: `(batches, rows, columns, K)` per block. Halves the
/// dimension that adds the most to an operand's span until all three operands fit; with whole
/// matrices, takes as many batches as fit.
fn gemm_blocks(s: &GemmSpec, max: usize) -> (usize, usize, usize, usize) {
    let (mut mi, mut nj, mut kk) = (s.m, s.n, s.k);
    let halve = |d: &mut usize| *d = d.div_ceil(2);
    loop {
        if span(&s.a, mi, kk) > max {
            if (mi - 1) * s.a.row_stride >= (kk - 1) * s.a.col_stride {
                halve(&mut mi)
            } else {
                halve(&mut kk)
            }
        } else if span(&s.b, kk, nj) > max {
            if (kk - 1) * s.b.row_stride >= (nj - 1) * s.b.col_stride {
                halve(&mut kk)
            } else {
                halve(&mut nj)
            }
        } else if mi * nj > max {
            if mi >= nj {
                halve(&mut mi)
            } else {
                halve(&mut nj)
            }
        } else {
            break;
        }
    }
    let mut bb = 1;
    if (mi, nj, kk) == (s.m, s.n, s.k) && s.batch_inner == 1 {
        let fit = |l: &MatLayout, sp: usize| {
            (max - sp)
                .checked_div(l.batch_outer_stride)
                .unwrap_or(s.batch)
                + 1
        };
        bb = fit(&s.a, span(&s.a, mi, kk))
            .min(fit(&s.b, span(&s.b, kk, nj)))
            .min(max / (mi * nj))
            .clamp(1, s.batch);
    }
    (bb, mi, nj, kk)
}

/// im2col's columns `(c*kh*kw, n*oh*ow)` hold each image in a block of columns: pieces of the
/// batch are copied out and in row by row.
impl GpuBackend {
    pub(super) fn im2col_any(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        let (taps, ohw, chw) = (g.c * g.kh * g.kw, g.oh * g.ow, g.c * g.h * g.w);
        if self.fits(&[x], &[taps * g.n * ohw]) {
            return self.im2col_op(x, g);
        }
        let per = self.rows_per_piece("im2col", g.n, &[Rows::per(x, chw)], &[taps * ohw])?;
        let cols = self.ctx.alloc_any(taps * g.n * ohw, "im2col")?;
        for n0 in (0..g.n).step_by(per) {
            let nc = per.min(g.n - n0);
            let piece = self.owned_range(x, n0 * chw, nc * chw)?;
            let part = self.im2col_op(&piece, &batch(g, nc))?;
            let run = nc * ohw;
            self.copy_rows((&part, 0, run), (&cols, n0 * ohw, g.n * ohw), taps, run)?;
        }
        Ok(cols)
    }

    pub(super) fn col2im_any(&self, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        let (taps, ohw, chw) = (g.c * g.kh * g.kw, g.oh * g.ow, g.c * g.h * g.w);
        if self.fits(&[cols], &[g.n * chw]) {
            return self.col2im_passes(cols, g);
        }
        let per = self.rows_per_piece("col2im", g.n, &[], &[taps * ohw, chw])?;
        let out = self.ctx.alloc_any(g.n * chw, "col2im")?;
        for n0 in (0..g.n).step_by(per) {
            let nc = per.min(g.n - n0);
            let run = nc * ohw;
            let piece = self.ctx.alloc(taps * run, "col2im")?;
            self.copy_rows((cols, n0 * ohw, g.n * ohw), (&piece, 0, run), taps, run)?;
            let part = self.col2im_passes(&piece, &batch(g, nc))?;
            self.ctx
                .copy_range((&part, 0), (&out, n0 * chw), nc * chw)?;
        }
        Ok(out)
    }
}
