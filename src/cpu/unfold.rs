//! im2col and its adjoint col2im, one tap row at a time: the whole-batch primitives and the
//! per-image columns the convolution builds in its scratch buffers share the same row loops.

use std::ops::Range;

use super::host::{host_vec, par_chunks};
use crate::shape::WindowGeom;
use crate::Result;

/// `(n, c, h, w) -> cols (c*kh*kw, n*oh*ow)`, zeros for padding.
pub(super) fn im2col(x: &[f32], g: &WindowGeom) -> Result<Vec<f32>> {
    let g = *g;
    let (windows, ohw, hw) = (g.row_count(), g.oh * g.ow, g.h * g.w);
    let mut cols = host_vec(g.row_len() * windows, 0.0, "im2col")?;
    par_chunks(&mut cols, windows, |row, out| {
        // row = (c, kh, kw); out: that tap for every (n, oh, ow)
        let (c, kh, kw) = (row / (g.kw * g.kh), (row / g.kw) % g.kh, row % g.kw);
        for n in 0..g.n {
            let plane = &x[(n * g.c + c) * hw..][..hw];
            unfold_row(plane, &g, (kh, kw), &mut out[n * ohw..][..ohw]);
        }
    });
    Ok(cols)
}

/// Adjoint of im2col: `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`.
pub(super) fn col2im(cols: &[f32], g: &WindowGeom) -> Result<Vec<f32>> {
    let g = *g;
    let (windows, ohw) = (g.row_count(), g.oh * g.ow);
    let mut x = host_vec(g.n * g.c * g.h * g.w, 0.0, "col2im")?;
    // One task per input plane adds its taps in (kh, kw, oh, ow) order: every element
    // receives its contributions in (kh, kw) order, the order of the GPU's gather.
    par_chunks(&mut x, g.h * g.w, |nc, plane| {
        let (n, c) = (nc / g.c, nc % g.c);
        for kh in 0..g.kh {
            for kw in 0..g.kw {
                let row = ((c * g.kh + kh) * g.kw + kw) * windows + n * ohw;
                fold_row(&cols[row..][..ohw], &g, (kh, kw), plane);
            }
        }
    });
    Ok(x)
}

/// The columns of one image's channels `x (cg, h, w)` -> `cols (cg*kh*kw, oh*ow)`; every
/// element of `cols` is written.
pub(super) fn im2col_image(x: &[f32], g: &WindowGeom, cols: &mut [f32]) {
    let (hw, ohw, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    for (row, dst) in cols.chunks_exact_mut(ohw).enumerate() {
        let (c, t) = (row / taps, row % taps);
        unfold_row(&x[c * hw..][..hw], g, (t / g.kw, t % g.kw), dst);
    }
}

/// Adds one image's columns `cols (cg*kh*kw, oh*ow)` into its channels `x (cg, h, w)`, each
/// element's taps in (kh, kw) order.
/// `cols` is scratch: its padding taps may be zeroed on the way.
pub(super) fn col2im_image(cols: &mut [f32], g: &WindowGeom, x: &mut [f32]) {
    let (hw, ohw, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let shifted = Shifted::applies(g);
    for (row, src) in cols.chunks_exact_mut(ohw).enumerate() {
        let (c, t) = (row / taps, row % taps);
        let (tap, plane) = ((t / g.kw, t % g.kw), &mut x[c * hw..][..hw]);
        if shifted {
            fold_shifted(src, g, tap, plane);
        } else {
            fold_row(src, g, tap, plane);
        }
    }
}

/// Tap `(kh, kw)` of every window over one plane `(h, w)` -> `dst (oh, ow)`, zeros where the
/// tap reads padding.
fn unfold_row(plane: &[f32], g: &WindowGeom, (kh, kw): (usize, usize), dst: &mut [f32]) {
    if Shifted::applies(g) {
        return unfold_shifted(plane, g, (kh, kw), dst);
    }
    let cols = inside(g.ow, kw * g.dw, g.pad_left, g.sw, g.w);
    for (oh, out) in dst.chunks_exact_mut(g.ow).enumerate() {
        let Some(ih) = g.input_row(oh, kh).filter(|_| !cols.is_empty()) else {
            out.fill(0.0);
            continue;
        };
        out[..cols.start].fill(0.0);
        out[cols.end..].fill(0.0);
        let src = &plane[ih * g.w..][..g.w];
        let first = cols.start * g.sw + kw * g.dw - g.pad_left;
        let inner = &mut out[cols.clone()];
        if g.sw == 1 {
            inner.copy_from_slice(&src[first..][..inner.len()]);
        } else {
            for (o, s) in inner.iter_mut().zip(src[first..].iter().step_by(g.sw)) {
                *o = *s;
            }
        }
    }
}

/// A tap's block at stride 1 with as many output as input columns ("same" padding): the tap
/// reads the plane shifted by a constant, so windows `d0..d1` (row-major over `(oh, ow)`) read
/// the plane from `s0` on, except the padding between rows. `None` when the tap reads only
/// padding.
struct Shifted {
    rows: Range<usize>,
    cols: Range<usize>,
    d0: usize,
    d1: usize,
    s0: usize,
}

impl Shifted {
    /// Stride 1 with as many output as input columns.
    fn applies(g: &WindowGeom) -> bool {
        g.sh == 1 && g.sw == 1 && g.ow == g.w
    }

    fn of(g: &WindowGeom, (kh, kw): (usize, usize)) -> Option<Self> {
        let cols = inside(g.ow, kw * g.dw, g.pad_left, 1, g.w);
        let rows = inside(g.oh, kh * g.dh, g.pad_top, 1, g.h);
        if rows.is_empty() || cols.is_empty() {
            return None;
        }
        let (d0, d1) = (rows.start * g.ow + cols.start, (rows.end - 1) * g.ow + cols.end);
        let s0 = (rows.start + kh * g.dh - g.pad_top) * g.w + cols.start + kw * g.dw - g.pad_left;
        Some(Shifted { rows, cols, d0, d1, s0 })
    }

    /// Zeroes the windows between rows that read padding: `ow - cols.len()` after each row but
    /// the last, usually one (a single store, not a library call).
    fn zero_between_rows(&self, ow: usize, buf: &mut [f32]) {
        let gap = ow - self.cols.len();
        for oh in self.rows.start..self.rows.end - 1 {
            let p = oh * ow + self.cols.end;
            match gap {
                0 => {}
                1 => buf[p] = 0.0,
                _ => buf[p..p + gap].fill(0.0),
            }
        }
    }
}

/// `unfold_row` where `Shifted` applies: one copy fills every row, then the padding is
/// zeroed. With short rows, per-row copies and fills (each a library call) were the larger
/// part of im2col.
fn unfold_shifted(plane: &[f32], g: &WindowGeom, tap: (usize, usize), dst: &mut [f32]) {
    let Some(b) = Shifted::of(g, tap) else {
        dst.fill(0.0);
        return;
    };
    dst[..b.d0].fill(0.0);
    dst[b.d1..].fill(0.0);
    dst[b.d0..b.d1].copy_from_slice(&plane[b.s0..][..b.d1 - b.d0]);
    b.zero_between_rows(g.ow, dst);
}

/// The adjoint of `unfold_row`: adds `src (oh, ow)` into the plane `(h, w)` at tap `(kh, kw)`.
fn fold_row(src: &[f32], g: &WindowGeom, (kh, kw): (usize, usize), plane: &mut [f32]) {
    let cols = inside(g.ow, kw * g.dw, g.pad_left, g.sw, g.w);
    if cols.is_empty() {
        return;
    }
    for (oh, row) in src.chunks_exact(g.ow).enumerate() {
        let Some(ih) = g.input_row(oh, kh) else {
            continue;
        };
        let first = cols.start * g.sw + kw * g.dw - g.pad_left;
        let dst = &mut plane[ih * g.w..][first..];
        let row = &row[cols.clone()];
        if g.sw == 1 {
            for (d, v) in dst.iter_mut().zip(row) {
                *d += v;
            }
        } else {
            for (d, v) in dst.iter_mut().step_by(g.sw).zip(row) {
                *d += v;
            }
        }
    }
}

/// `fold_row` where `Shifted` applies: the taps that read padding between rows are zeroed in
/// `src`, then one add over the shifted block serves every row (each element still receives
/// its taps in (kh, kw) order).
fn fold_shifted(src: &mut [f32], g: &WindowGeom, tap: (usize, usize), plane: &mut [f32]) {
    let Some(b) = Shifted::of(g, tap) else {
        return;
    };
    b.zero_between_rows(g.ow, src);
    for (d, v) in plane[b.s0..][..b.d1 - b.d0].iter_mut().zip(&src[b.d0..b.d1]) {
        *d += v;
    }
}

/// The outputs `o < outs` whose tap at offset `tap` (`k * dilation`) reads inside an input
/// of `len`: `0 <= o * stride + tap - pad < len`.
pub(super) fn inside(
    outs: usize, tap: usize, pad: usize, stride: usize, len: usize,
) -> Range<usize> {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = if len + pad > tap { ((len + pad - tap - 1) / stride + 1).min(outs) } else { 0 };
    lo.min(hi)..hi
}
