//! Nearest and bilinear upsampling, forward and backward (gathers over the outputs that read
//! each input).

use super::host::{host_vec, par_chunks};
use crate::backend::{bilinear_src, nearest_src, UpsampleGeom};
use crate::Result;

/// `(n, c, h, w) -> (n, c, oh, ow)`, source index `min(floor(dst * scale), in - 1)`.
pub(super) fn upsample_nearest(x: &[f32], g: &UpsampleGeom) -> Result<Vec<f32>> {
    let g = *g;
    let mut y = host_vec(g.n * g.c * g.oh * g.ow, 0.0, "upsample_nearest")?;
    let cols: Vec<usize> = (0..g.ow).map(|j| nearest_src(j, g.w, g.scale_w)).collect();
    par_chunks(&mut y, g.oh * g.ow, |nc, o| {
        let plane = &x[nc * g.h * g.w..][..g.h * g.w];
        for i in 0..g.oh {
            let row = &plane[nearest_src(i, g.h, g.scale_h) * g.w..][..g.w];
            for (dst, &sw) in o[i * g.ow..][..g.ow].iter_mut().zip(&cols) {
                *dst = row[sw];
            }
        }
    });
    Ok(y)
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`.
pub(super) fn upsample_nearest_backward(grad: &[f32], g: &UpsampleGeom) -> Result<Vec<f32>> {
    let rows: Vec<_> = (0..g.h).map(|ih| nearest_range(ih, g.h, g.oh, g.scale_h)).collect();
    let cols: Vec<_> = (0..g.w).map(|iw| nearest_range(iw, g.w, g.ow, g.scale_w)).collect();
    gather_backward(grad, g, "upsample_nearest_backward", |go, ih, iw| {
        let ((a0, a1), (b0, b1)) = (rows[ih], cols[iw]);
        let mut acc = 0.0;
        for i in a0..a1 {
            for j in b0..b1 {
                acc += go[i * g.ow + j];
            }
        }
        acc
    })
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`: input element `(ih, iw)` of every plane is
/// `cell(go, ih, iw)`, `go` that plane's output gradient.
fn gather_backward(
    grad: &[f32], g: &UpsampleGeom, op: &'static str,
    cell: impl Fn(&[f32], usize, usize) -> f32 + Sync,
) -> Result<Vec<f32>> {
    let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, op)?;
    par_chunks(&mut dx, g.h * g.w, |nc, plane| {
        let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
        for (ih, row) in plane.chunks_exact_mut(g.w).enumerate() {
            for (iw, v) in row.iter_mut().enumerate() {
                *v = cell(go, ih, iw);
            }
        }
    });
    Ok(dx)
}

/// `(n, c, h, w) -> (n, c, oh, ow)` bilinear interpolation.
pub(super) fn upsample_bilinear(x: &[f32], g: &UpsampleGeom) -> Result<Vec<f32>> {
    let g = *g;
    let mut y = host_vec(g.n * g.c * g.oh * g.ow, 0.0, "upsample_bilinear")?;
    // Source columns and weights are the same for every row and plane: compute them once.
    let cols: Vec<_> =
        (0..g.ow).map(|j| bilinear_src(j, g.w, g.scale_w, g.align_corners)).collect();
    par_chunks(&mut y, g.oh * g.ow, |nc, o| {
        let p = &x[nc * g.h * g.w..][..g.h * g.w];
        for i in 0..g.oh {
            let (h0, h1, lh0, lh1) = bilinear_src(i, g.h, g.scale_h, g.align_corners);
            let (r0, r1) = (&p[h0 * g.w..][..g.w], &p[h1 * g.w..][..g.w]);
            for (dst, &(w0, w1, lw0, lw1)) in o[i * g.ow..][..g.ow].iter_mut().zip(&cols) {
                *dst = lh0 * (lw0 * r0[w0] + lw1 * r0[w1]) + lh1 * (lw0 * r1[w0] + lw1 * r1[w1]);
            }
        }
    });
    Ok(y)
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`.
pub(super) fn upsample_bilinear_backward(grad: &[f32], g: &UpsampleGeom) -> Result<Vec<f32>> {
    let ac = g.align_corners;
    gather_backward(grad, g, "upsample_bilinear_backward", |go, ih, iw| {
        let (a0, a1) = bilinear_range(ih, g.h, g.oh, g.scale_h, ac);
        let (b0, b1) = bilinear_range(iw, g.w, g.ow, g.scale_w, ac);
        let mut acc = 0.0;
        for i in a0..a1 {
            let wh = bilinear_weight(ih, i, g.h, g.scale_h, ac);
            if wh == 0.0 {
                continue;
            }
            for j in b0..b1 {
                acc += wh * bilinear_weight(iw, j, g.w, g.scale_w, ac) * go[i * g.ow + j];
            }
        }
        acc
    })
}

/// First `o` in `[0, out)` with `reaches(o)`, for a `reaches` that is monotone in `o`.
fn first_output(out: usize, reaches: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, out);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Outputs `[lo, hi)` of nearest upsampling that read input `i` (`nearest_src(o) == i`).
fn nearest_range(i: usize, input: usize, out: usize, scale: f32) -> (usize, usize) {
    let first = |target| first_output(out, |o| nearest_src(o, input, scale) >= target);
    (first(i), first(i + 1))
}

/// Outputs `[lo, hi)` of bilinear interpolation that may read input `i` (i0 or i1 equal to i).
fn bilinear_range(i: usize, input: usize, out: usize, scale: f32, ac: bool) -> (usize, usize) {
    // i0 is monotone in o and i1 is i0 or i0 + 1: outputs with i0 in [i - 1, i].
    let first = |target| first_output(out, |o| bilinear_src(o, input, scale, ac).0 >= target);
    (first(i.saturating_sub(1)), first(i + 1))
}

/// Weight with which output `o` reads input `i` along one axis.
#[inline]
fn bilinear_weight(i: usize, o: usize, input: usize, scale: f32, align_corners: bool) -> f32 {
    let (i0, i1, l0, l1) = bilinear_src(o, input, scale, align_corners);
    let mut w = 0.0;
    if i0 == i {
        w += l0;
    }
    if i1 == i {
        w += l1;
    }
    w
}
