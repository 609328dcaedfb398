//! Convolution as one GEMM per (image, group) over that image's im2col columns, built in a
//! per-thread scratch buffer that is reused across calls and small enough to stay in cache: no
//! column matrix of the whole batch exists. Images run in parallel. The weight gradient sums
//! fixed chunks of images (chosen by the shape alone) into partials added in order, so results
//! never depend on the thread count.

use rayon::prelude::*;

use super::gemm::{sgemm, Mat, Threads};
use super::host::{host_vec, host_vec_for_overwrite, transpose_runs, with_scratch};
use super::unfold::{col2im_image, im2col_image};
use crate::backend::{ConvSpec, UnaryOp};
use crate::Result;

/// The most partial weight gradients, and the most elements they may hold together.
const MAX_PARTIALS: usize = 16;
const PARTIALS_BUDGET: usize = 1 << 24;

/// Fixed chunks of `items` consecutive products summing into partial weight gradients of
/// `wlen` elements, chosen by the shape alone: `(items per chunk, chunks)`.
pub(super) fn partial_chunks(items: usize, wlen: usize) -> (usize, usize) {
    let per = items.div_ceil((PARTIALS_BUDGET / wlen).clamp(1, MAX_PARTIALS.min(items)));
    (per, items.div_ceil(per))
}

/// The partial weight gradients `(chunks, groups, k, dg)` added in chunk order, each group's
/// `(k, dg)` then transposed to `(dg, k)`: the products write the weight gradient
/// column-major, which the GEMM kernels run several times faster than row-major when the sum
/// runs over the columns' rows.
pub(super) fn sum_partials(
    partials: Vec<f32>, (groups, k, dg): (usize, usize, usize), op: &'static str,
) -> Result<Vec<f32>> {
    let sum = sum_in_order(partials, groups * k * dg, op)?;
    let dw = transpose_runs(&sum, (k, dg), 1, op)?;
    super::recycle::give(sum);
    Ok(dw)
}

/// The partials `(chunks, wlen)` added in chunk order.
fn sum_in_order(partials: Vec<f32>, wlen: usize, op: &'static str) -> Result<Vec<f32>> {
    if partials.len() == wlen {
        return Ok(partials);
    }
    let mut dw = host_vec(wlen, 0.0, op)?;
    const BLOCK: usize = 1 << 12;
    dw.par_chunks_mut(BLOCK).enumerate().for_each(|(b, out)| {
        for part in partials.chunks_exact(wlen) {
            for (o, p) in out.iter_mut().zip(&part[b * BLOCK..]) {
                *o += p;
            }
        }
    });
    Ok(dw)
}

/// The sizes every loop below uses.
struct Dims {
    /// Elements of one input image `(c, h, w)` and of one input plane.
    chw: usize,
    hw: usize,
    ohw: usize,
    dg: usize,
    cg: usize,
    cgkk: usize,
    /// A 1x1 window with stride 1 and no padding: the input is its own column matrix.
    pointwise: bool,
    /// Elements of one image's columns `(cgkk, ohw)` (0 when pointwise).
    scratch: usize,
}

impl Dims {
    fn of(s: &ConvSpec) -> Self {
        let g = &s.g;
        let pointwise = g.kh == 1
            && g.kw == 1
            && g.sh == 1
            && g.sw == 1
            && g.pad_top == 0
            && g.pad_left == 0
            && (g.oh, g.ow) == (g.h, g.w);
        let (ohw, cgkk) = (s.ohw(), s.cgkk());
        Dims {
            chw: g.c * g.h * g.w,
            hw: g.h * g.w,
            ohw,
            dg: s.dg(),
            cg: s.cg(),
            cgkk,
            pointwise,
            scratch: if pointwise { 0 } else { cgkk * ohw },
        }
    }

    /// Group `grp`'s channels of one image `x (c, h, w)`: `(cg, h, w)`.
    fn group<'a>(&self, x: &'a [f32], grp: usize) -> &'a [f32] {
        &x[grp * self.cg * self.hw..][..self.cg * self.hw]
    }

    /// The column matrix `(cgkk, ohw)` of one image's group: the input itself when pointwise,
    /// else its im2col in `cols`.
    fn columns<'a>(&self, s: &ConvSpec, xg: &'a [f32], cols: &'a mut [f32]) -> &'a [f32] {
        if self.pointwise {
            xg
        } else {
            im2col_image(xg, &s.g, cols);
            cols
        }
    }
}

/// `x (n, c, h, w)`, `w (d, c/groups, kh, kw)`, `bias (d)` -> `(n, d, oh, ow)`, then a ReLU
/// where `relu` is set (per image, while its output is in cache).
pub(super) fn conv2d(
    x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &ConvSpec, relu: bool,
) -> Result<Vec<f32>> {
    const OP: &str = "conv2d";
    let z = Dims::of(s);
    // every row is written: filled with the bias, or overwritten by its group's product
    let mut y = host_vec_for_overwrite(s.out_len(), OP)?;
    if y.is_empty() {
        return Ok(y);
    }
    let threads = Threads::for_tasks(s.g.n);
    y.par_chunks_mut(s.d * z.ohw).enumerate().try_for_each(|(n, yn)| {
        // yn: (d, oh, ow) of image n, starting from the bias
        if let Some(b) = bias {
            for (row, &bv) in yn.chunks_exact_mut(z.ohw).zip(b) {
                row.fill(bv);
            }
        }
        with_scratch(z.scratch, OP, |scratch| {
            for grp in 0..s.groups {
                let cols = z.columns(s, z.group(&x[n * z.chw..], grp), scratch);
                // y_{n, g} (dg, ohw) (+)= W_g (dg, cgkk) x cols (cgkk, ohw)
                // SAFETY: each operand spans exactly the slice it is made from.
                unsafe {
                    sgemm(
                        (z.dg, z.ohw, z.cgkk),
                        Mat::rows(&w[grp * z.dg * z.cgkk..], z.cgkk),
                        Mat::rows(cols, z.ohw),
                        Mat::rows_mut(&mut yn[grp * z.dg * z.ohw..], z.ohw),
                        bias.is_some(),
                        threads,
                    );
                }
            }
            if relu {
                yn.iter_mut().for_each(|v| *v = UnaryOp::Relu.apply(*v));
            }
        })
    })?;
    Ok(y)
}

/// `grad (n, d, oh, ow)`, `w (d, c/groups, kh, kw)` -> the input gradient `(n, c, h, w)`:
/// per (image, group) `W_g^T x grad` into columns, then col2im.
pub(super) fn conv2d_backward_input(grad: &[f32], w: &[f32], s: &ConvSpec) -> Result<Vec<f32>> {
    const OP: &str = "conv2d_backward_input";
    let z = Dims::of(s);
    let mut dx = host_vec_for_overwrite(s.g.n * z.chw, OP)?;
    if dx.is_empty() || s.out_len() == 0 {
        dx.fill(0.0);
        return Ok(dx);
    }
    let threads = Threads::for_tasks(s.g.n);
    dx.par_chunks_mut(z.chw).enumerate().try_for_each(|(n, dxn)| {
        if !z.pointwise {
            dxn.fill(0.0); // col2im adds into it
        }
        with_scratch(z.scratch, OP, |cols| {
            for grp in 0..s.groups {
                let go = Mat::rows(&grad[(n * s.d + grp * z.dg) * z.ohw..], z.ohw); // (dg, ohw)
                let wt = Mat::rows(&w[grp * z.dg * z.cgkk..], z.cgkk).t(); // (cgkk, dg)
                let dxg = &mut dxn[grp * z.cg * z.hw..][..z.cg * z.hw];
                // pointwise: the product is the gradient itself (cgkk = cg); else columns
                let dst = if z.pointwise { &mut *dxg } else { &mut *cols };
                // SAFETY: each operand spans exactly the slice it is made from.
                unsafe {
                    sgemm((z.cgkk, z.ohw, z.dg), wt, go, Mat::rows_mut(dst, z.ohw), false, threads);
                }
                if !z.pointwise {
                    col2im_image(cols, &s.g, dxg);
                }
            }
        })
    })?;
    Ok(dx)
}

/// `x (n, c, h, w)`, `grad (n, d, oh, ow)` -> the weight gradient `(d, c/groups, kh, kw)`:
/// per group the sum over images of `grad_{n, g} x cols_{n, g}^T`.
pub(super) fn conv2d_backward_weight(x: &[f32], grad: &[f32], s: &ConvSpec) -> Result<Vec<f32>> {
    const OP: &str = "conv2d_backward_weight";
    let z = Dims::of(s);
    let (n_img, wlen) = (s.g.n, s.d * z.cgkk);
    if wlen == 0 || n_img == 0 || z.ohw == 0 {
        return host_vec(wlen, 0.0, OP);
    }
    // Fixed chunks of consecutive images, by the shape alone: each sums into its own partial.
    let (per, chunks) = partial_chunks(n_img, wlen);
    let threads = Threads::for_tasks(chunks);
    // each partial is overwritten by its first image's product
    let mut partials = host_vec_for_overwrite(chunks * wlen, OP)?;
    partials.par_chunks_mut(wlen).enumerate().try_for_each(|(j, part)| {
        with_scratch(z.scratch, OP, |scratch| {
            for (i, n) in (j * per..((j + 1) * per).min(n_img)).enumerate() {
                for grp in 0..s.groups {
                    let cols = z.columns(s, z.group(&x[n * z.chw..], grp), scratch);
                    // dW_g (dg, cgkk) (+)= grad_{n, g} (dg, ohw) x cols^T (ohw, cgkk),
                    // column-major
                    // SAFETY: each operand spans exactly the slice it is made from.
                    unsafe {
                        sgemm(
                            (z.dg, z.cgkk, z.ohw),
                            Mat::rows(&grad[(n * s.d + grp * z.dg) * z.ohw..], z.ohw),
                            Mat::rows(cols, z.ohw).t(),
                            Mat::cols_mut(&mut part[grp * z.dg * z.cgkk..], z.dg),
                            i > 0,
                            threads,
                        );
                    }
                }
            }
        })
    })?;
    sum_partials(partials, (s.groups, z.cgkk, z.dg), OP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::conv::{forward_by_im2col, input_grad_by_col2im, weight_grad_by_im2col};
    use crate::cpu::CpuBackend;
    use crate::shape::WindowGeom;

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs {w}");
        }
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// The per-image kernels (shifted "same" copies, pointwise, strided rows, one image or
    /// many, groups) against the whole-batch im2col-GEMM default on the same backend.
    #[test]
    fn per_image_convolution_matches_the_im2col_gemm_default() {
        // (n, c, h, w), d, (kh, kw), stride, [top, bottom, left, right], dilation, groups
        type Case =
            ([usize; 4], usize, (usize, usize), (usize, usize), [usize; 4], (usize, usize), usize);
        let cases: [Case; 7] = [
            ([3, 4, 7, 9], 6, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 1),
            ([2, 3, 7, 9], 4, (3, 2), (1, 1), [2, 2, 0, 1], (2, 1), 1),
            ([2, 4, 7, 9], 6, (2, 3), (1, 1), [0, 1, 2, 0], (1, 1), 2),
            ([2, 5, 6, 5], 3, (1, 1), (1, 1), [0, 0, 0, 0], (1, 1), 1),
            ([3, 3, 11, 10], 5, (3, 3), (2, 2), [1, 1, 1, 1], (1, 1), 1),
            ([1, 6, 12, 12], 4, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 1),
            ([2, 2, 2, 3], 3, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 1),
        ];
        for (x, d, k, stride, pads, dil, groups) in cases {
            let [n, c, h, w] = x;
            let g = WindowGeom::conv("test", (n, c, h, w), k, stride, pads, dil).unwrap();
            let s = ConvSpec { g, groups, d };
            let xs = values(n * c * h * w, 1);
            let ws = values(d * (c / groups) * k.0 * k.1, 2);
            let bs = values(d, 3);
            let up = values(s.out_len(), 4);
            let what =
                format!("{x:?} d {d} k {k:?} s {stride:?} p {pads:?} dil {dil:?} g {groups}");
            let want = forward_by_im2col(&CpuBackend, &xs, &ws, Some(&bs), &s).unwrap();
            close(&conv2d(&xs, &ws, Some(&bs), &s, false).unwrap(), &want, &format!("y {what}"));
            let want = input_grad_by_col2im(&CpuBackend, &up, &ws, &s).unwrap();
            close(&conv2d_backward_input(&up, &ws, &s).unwrap(), &want, &format!("dx {what}"));
            let want = weight_grad_by_im2col(&CpuBackend, &xs, &up, &s).unwrap();
            close(&conv2d_backward_weight(&xs, &up, &s).unwrap(), &want, &format!("dw {what}"));
        }
    }
}
