//! Max, average and adaptive average pooling, forward and backward. The max and average
//! backward passes scatter each output's gradient in the order that makes every input's sum
//! bit-identical to the GPU's gather; adaptive pooling's backward is a gather.

use std::ops::Range;

use rayon::prelude::*;

use super::host::{host_vec, host_vec_for_overwrite, par_chunks};
use super::unfold::inside;
use crate::backend::{adaptive_window, AvgPoolOpts};
use crate::shape::WindowGeom;
use crate::Result;

/// `(n, c, h, w) -> (n, c, oh, ow)` maxima and the flat `h*w` index of each (as f32).
pub(super) fn max_pool2d(x: &[f32], g: &WindowGeom) -> Result<(Vec<f32>, Vec<f32>)> {
    let plane_out = g.oh * g.ow;
    // every output row is filled before its taps are compared
    let mut out = host_vec_for_overwrite(g.n * g.c * plane_out, "max_pool2d")?;
    let mut idx = host_vec_for_overwrite(out.len(), "max_pool2d")?;
    let plan = MaxPlan::of(g);
    out.par_chunks_mut(plane_out).zip(idx.par_chunks_mut(plane_out)).enumerate().for_each(
        |(nc, (o, ix))| {
            o.fill(f32::NEG_INFINITY);
            ix.fill(-1.0);
            plan.compare_plane(&x[nc * g.h * g.w..][..g.h * g.w], o, ix, 0);
        },
    );
    Ok((out, idx))
}

/// The taps inside the input per output row, and per column tap the outputs that read inside:
/// the same for every plane.
pub(super) struct MaxPlan {
    g: WindowGeom,
    rows: Vec<Range<usize>>,
    cols: Vec<Range<usize>>,
}

impl MaxPlan {
    pub fn of(g: &WindowGeom) -> Self {
        let rows = (0..g.oh).map(|oh| g.row_taps(oh)).collect();
        let cols = (0..g.kw).map(|kw| inside(g.ow, kw * g.dw, g.pad_left, g.sw, g.w)).collect();
        MaxPlan { g: *g, rows, cols }
    }

    /// Compares the windows of one plane `(h, w)` into the maxima `best (oh, ow)` and their
    /// indices `arg`, flat `h*w` indices plus `base`; one output row at a time, its taps in
    /// (kh, kw) order for every output.
    pub fn compare_plane(&self, plane: &[f32], best: &mut [f32], arg: &mut [f32], base: usize) {
        let g = &self.g;
        for (oh, taps_h) in self.rows.iter().enumerate() {
            let best = &mut best[oh * g.ow..][..g.ow];
            let arg = &mut arg[oh * g.ow..][..g.ow];
            for kh in taps_h.clone() {
                let ih = oh * g.sh + kh * g.dh - g.pad_top;
                let src = &plane[ih * g.w..][..g.w];
                for (kw, outs) in self.cols.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
                    let first = outs.start * g.sw + kw * g.dw - g.pad_left;
                    let taps = src[first..].iter().step_by(g.sw);
                    let at = (base + ih * g.w + first..).step_by(g.sw);
                    let slots = best[outs.clone()].iter_mut().zip(&mut arg[outs.clone()]);
                    for (((b, a), &v), i) in slots.zip(taps).zip(at) {
                        // As PyTorch: NaN propagates, ties keep the first maximum. `|`, not
                        // `||`: no branch to mispredict. Indices are below 2^24.
                        let take = (v > *b) | v.is_nan() | (*a < 0.0);
                        *b = if take { v } else { *b };
                        *a = if take { i as i32 as f32 } else { *a };
                    }
                }
            }
        }
    }
}

/// `grad (n, c, oh, ow)`, `indices` -> `(n, c, h, w)`: each output's gradient added to its
/// argmax, one pass over the outputs.
pub(super) fn max_pool2d_backward(
    grad: &[f32], indices: &[f32], g: &WindowGeom,
) -> Result<Vec<f32>> {
    let planes = (g.n * g.c, g.h * g.w, g.oh * g.ow);
    scatter_argmax(grad, indices, planes, "max_pool2d_backward")
}

/// `grad (planes, outs)`, `indices` -> `(planes, ins)`: each output's gradient added to its
/// argmax in its plane, one pass over the outputs.
pub(super) fn scatter_argmax(
    grad: &[f32], indices: &[f32], (planes, ins, outs): (usize, usize, usize), op: &'static str,
) -> Result<Vec<f32>> {
    // each plane is zeroed by its own task, while it is in cache
    let mut dx = host_vec_for_overwrite(planes * ins, op)?;
    par_chunks(&mut dx, ins, |p, plane| {
        plane.fill(0.0);
        let go = &grad[p * outs..][..outs];
        let ix = &indices[p * outs..][..outs];
        // Outputs in reverse order: an input's windows then arrive in (kh, kw) order (tap kh
        // of input row ih is output row (ih + pad - kh * dh) / sh, which falls as kh rises),
        // the order in which the GPU's gather sums them, so both give the same bits.
        for (&i, &v) in ix.iter().zip(go).rev() {
            if let Some(d) = plane.get_mut(i as usize).filter(|_| i >= 0.0) {
                *d += v;
            }
        }
    });
    Ok(dx)
}

/// `(n, c, h, w) -> (n, c, oh, ow)` window means.
pub(super) fn avg_pool2d(x: &[f32], g: &WindowGeom, opts: AvgPoolOpts) -> Result<Vec<f32>> {
    let g = *g;
    let mut out = host_vec_for_overwrite(g.n * g.c * g.oh * g.ow, "avg_pool2d")?; // every output written
    par_chunks(&mut out, g.oh * g.ow, |nc, o| {
        let plane = &x[nc * g.h * g.w..][..g.h * g.w];
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let w = avg_window(&g, oh, ow, opts);
                let mut acc = 0.0;
                for ih in w.h0..w.h1 {
                    for iw in w.w0..w.w1 {
                        acc += plane[ih * g.w + iw];
                    }
                }
                o[oh * g.ow + ow] = acc / w.divisor;
            }
        }
    });
    Ok(out)
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`: each output's share added to its window, one
/// pass over the outputs.
pub(super) fn avg_pool2d_backward(
    grad: &[f32], g: &WindowGeom, opts: AvgPoolOpts,
) -> Result<Vec<f32>> {
    let g = *g;
    // each plane is zeroed by its own task, while it is in cache
    let mut dx = host_vec_for_overwrite(g.n * g.c * g.h * g.w, "avg_pool2d_backward")?;
    par_chunks(&mut dx, g.h * g.w, |nc, plane| {
        plane.fill(0.0);
        let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
        // Outputs in (oh, ow) order: every input receives its windows' shares in the order
        // the GPU's gather sums them.
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let w = avg_window(&g, oh, ow, opts);
                let share = go[oh * g.ow + ow] / w.divisor;
                for ih in w.h0..w.h1 {
                    for d in &mut plane[ih * g.w..][w.w0..w.w1] {
                        *d += share;
                    }
                }
            }
        }
    });
    Ok(dx)
}

/// `(n, c, h, w) -> (n, c, oh, ow)` over PyTorch's adaptive windows.
pub(super) fn adaptive_avg_pool2d(
    x: &[f32], dims: (usize, usize, usize, usize), out: (usize, usize),
) -> Result<Vec<f32>> {
    let (n, c, h, w) = dims;
    let (oh, ow) = out;
    let mut y = host_vec(n * c * oh * ow, 0.0, "adaptive_avg_pool2d")?;
    par_chunks(&mut y, oh * ow, |nc, o| {
        let plane = &x[nc * h * w..][..h * w];
        for i in 0..oh {
            let (h0, h1) = adaptive_window(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = adaptive_window(j, w, ow);
                let mut acc = 0.0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        acc += plane[ih * w + iw];
                    }
                }
                o[i * ow + j] = acc / ((h1 - h0) * (w1 - w0)) as f32;
            }
        }
    });
    Ok(y)
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`.
pub(super) fn adaptive_avg_pool2d_backward(
    grad: &[f32], dims: (usize, usize, usize, usize), out: (usize, usize),
) -> Result<Vec<f32>> {
    let (n, c, h, w) = dims;
    let (oh, ow) = out;
    let mut dx = host_vec(n * c * h * w, 0.0, "adaptive_avg_pool2d_backward")?;
    par_chunks(&mut dx, h * w, |nc, plane| {
        let go = &grad[nc * oh * ow..][..oh * ow];
        for ih in 0..h {
            let (oh0, oh1) = adaptive_range(ih, h, oh);
            for iw in 0..w {
                let (ow0, ow1) = adaptive_range(iw, w, ow);
                let mut acc = 0.0;
                for i in oh0..oh1 {
                    let (h0, h1) = adaptive_window(i, h, oh);
                    if ih < h0 || ih >= h1 {
                        continue;
                    }
                    for j in ow0..ow1 {
                        let (w0, w1) = adaptive_window(j, w, ow);
                        if iw >= w0 && iw < w1 {
                            acc += go[i * ow + j] / ((h1 - h0) * (w1 - w0)) as f32;
                        }
                    }
                }
                plane[ih * w + iw] = acc;
            }
        }
    });
    Ok(dx)
}

/// `(n, c, h, w) -> (n, c, oh, ow)` maxima over PyTorch's adaptive windows and the flat `h*w`
/// index of each (as f32), taps in raster order as `max_pool2d`.
pub(super) fn adaptive_max_pool2d(
    x: &[f32], dims: (usize, usize, usize, usize), out: (usize, usize),
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (n, c, h, w) = dims;
    let (oh, ow) = out;
    let mut y = host_vec_for_overwrite(n * c * oh * ow, "adaptive_max_pool2d")?;
    let mut idx = host_vec_for_overwrite(y.len(), "adaptive_max_pool2d")?;
    let work = |nc: usize, o: &mut [f32], ix: &mut [f32]| {
        let plane = &x[nc * h * w..][..h * w];
        for i in 0..oh {
            let (h0, h1) = adaptive_window(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = adaptive_window(j, w, ow);
                let (mut best, mut arg) = (f32::NEG_INFINITY, -1i64);
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let v = plane[ih * w + iw];
                        // as PyTorch: NaN propagates, ties keep the first maximum
                        if v > best || v.is_nan() || arg < 0 {
                            best = v;
                            arg = (ih * w + iw) as i64;
                        }
                    }
                }
                o[i * ow + j] = best;
                ix[i * ow + j] = arg as f32;
            }
        }
    };
    let chunk = (oh * ow).max(1);
    y.par_chunks_mut(chunk)
        .zip(idx.par_chunks_mut(chunk))
        .enumerate()
        .for_each(|(nc, (o, ix))| work(nc, o, ix));
    Ok((y, idx))
}

/// `grad (n, c, oh, ow), indices -> (n, c, h, w)`: each input sums the gradients of the windows
/// whose maximum it is.
pub(super) fn adaptive_max_pool2d_backward(
    grad: &[f32], indices: &[f32], dims: (usize, usize, usize, usize), out: (usize, usize),
) -> Result<Vec<f32>> {
    let (n, c, h, w) = dims;
    let (oh, ow) = out;
    let mut dx = host_vec(n * c * h * w, 0.0, "adaptive_max_pool2d_backward")?;
    par_chunks(&mut dx, h * w, |nc, plane| {
        let go = &grad[nc * oh * ow..][..oh * ow];
        let gi = &indices[nc * oh * ow..][..oh * ow];
        for ih in 0..h {
            let (oh0, oh1) = adaptive_range(ih, h, oh);
            for iw in 0..w {
                let (ow0, ow1) = adaptive_range(iw, w, ow);
                let me = (ih * w + iw) as f32;
                let mut acc = 0.0;
                for i in oh0..oh1 {
                    for j in ow0..ow1 {
                        if gi[i * ow + j] == me {
                            acc += go[i * ow + j];
                        }
                    }
                }
                plane[ih * w + iw] = acc;
            }
        }
    });
    Ok(dx)
}

/// An average-pooling window clipped to the input, and its divisor.
struct AvgWindow {
    h0: usize,
    h1: usize,
    w0: usize,
    w1: usize,
    divisor: f32,
}

/// PyTorch's avg_pool2d window: the divisor counts padding (clipped to `in + pad`) when
/// `count_include_pad`, else only real input elements; `divisor_override` replaces both.
#[inline]
fn avg_window(g: &WindowGeom, oh: usize, ow: usize, opts: AvgPoolOpts) -> AvgWindow {
    let hs = (oh * g.sh) as isize - g.pad_top as isize;
    let ws = (ow * g.sw) as isize - g.pad_left as isize;
    let he = (hs + g.kh as isize).min((g.h + g.pad_top) as isize);
    let we = (ws + g.kw as isize).min((g.w + g.pad_left) as isize);
    let pool_size = (he - hs) * (we - ws);
    let h0 = hs.max(0) as usize;
    let w0 = ws.max(0) as usize;
    let h1 = (he.min(g.h as isize)).max(0) as usize;
    let w1 = (we.min(g.w as isize)).max(0) as usize;
    let divisor = match opts.divisor_override {
        Some(d) => d as f32,
        None if opts.count_include_pad => pool_size as f32,
        None => ((h1 - h0) * (w1 - w0)) as f32,
    };
    AvgWindow { h0, h1: h1.max(h0), w0, w1: w1.max(w0), divisor }
}

/// Adaptive-pool outputs whose window may contain input `i`.
#[inline]
fn adaptive_range(i: usize, input: usize, out: usize) -> (usize, usize) {
    let lo = (i * out) / input;
    let hi = (((i + 1) * out).div_ceil(input)).min(out);
    (lo.saturating_sub(1), hi)
}
