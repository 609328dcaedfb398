//! Direct depthwise convolution (groups = channels) and its gradients, without im2col.

use super::host::{host_vec, par_chunks};
use crate::shape::WindowGeom;
use crate::Result;

/// `x (n, c, h, w)`, `w (c*mult, 1, kh, kw)` -> `(n, c*mult, oh, ow)`.
pub(super) fn depthwise_conv2d(
    x: &[f32], w: &[f32], g: &WindowGeom, mult: usize,
) -> Result<Vec<f32>> {
    let g = *g;
    let d = g.c * mult;
    let mut y = host_vec(g.n * d * g.oh * g.ow, 0.0, "depthwise_conv2d")?;
    par_chunks(&mut y, g.oh * g.ow, |nd, out| {
        // nd = (n, d); channel d reads input channel d / mult
        let (n, dd) = (nd / d, nd % d);
        let plane = &x[(n * g.c + dd / mult) * g.h * g.w..][..g.h * g.w];
        let k = &w[dd * g.kh * g.kw..][..g.kh * g.kw];
        for kh in 0..g.kh {
            for kw in 0..g.kw {
                let wv = k[kh * g.kw + kw];
                for oh in 0..g.oh {
                    let Some(ih) = g.input_row(oh, kh) else {
                        continue;
                    };
                    let src = &plane[ih * g.w..][..g.w];
                    for (ow, o) in out[oh * g.ow..][..g.ow].iter_mut().enumerate() {
                        if let Some(iw) = g.input_col(ow, kw) {
                            *o += src[iw] * wv;
                        }
                    }
                }
            }
        }
    });
    Ok(y)
}

/// `grad (n, c*mult, oh, ow)`, `w` -> `(n, c, h, w)`, a gather summing over (m, kh, kw).
pub(super) fn depthwise_conv2d_backward_input(
    grad: &[f32], w: &[f32], g: &WindowGeom, mult: usize,
) -> Result<Vec<f32>> {
    let g = *g;
    let d = g.c * mult;
    let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, "depthwise_conv2d_backward_input")?;
    par_chunks(&mut dx, g.h * g.w, |nc, plane| {
        let (n, c) = (nc / g.c, nc % g.c);
        for ih in 0..g.h {
            for iw in 0..g.w {
                let mut acc = 0.0;
                for m in 0..mult {
                    let dd = c * mult + m;
                    let go = &grad[(n * d + dd) * g.oh * g.ow..][..g.oh * g.ow];
                    taps_reading(&g, ih, iw, |kh, kw, oh, ow| {
                        acc += go[oh * g.ow + ow] * w[(dd * g.kh + kh) * g.kw + kw];
                    });
                }
                plane[ih * g.w + iw] = acc;
            }
        }
    });
    Ok(dx)
}

/// `x`, `grad (n, c*mult, oh, ow)` -> `(c*mult, 1, kh, kw)`, summed in f64 over
/// (n, oh, ow).
pub(super) fn depthwise_conv2d_backward_weight(
    x: &[f32], grad: &[f32], g: &WindowGeom, mult: usize,
) -> Result<Vec<f32>> {
    let g = *g;
    let d = g.c * mult;
    let mut dw = host_vec(d * g.kh * g.kw, 0.0, "depthwise_conv2d_backward_weight")?;
    par_chunks(&mut dw, g.kh * g.kw, |dd, taps| {
        for (t, out) in taps.iter_mut().enumerate() {
            let (kh, kw) = (t / g.kw, t % g.kw);
            let mut acc = 0.0f64;
            for n in 0..g.n {
                let plane = &x[(n * g.c + dd / mult) * g.h * g.w..][..g.h * g.w];
                let go = &grad[(n * d + dd) * g.oh * g.ow..][..g.oh * g.ow];
                for oh in 0..g.oh {
                    let Some(ih) = g.input_row(oh, kh) else {
                        continue;
                    };
                    for ow in 0..g.ow {
                        if let Some(iw) = g.input_col(ow, kw) {
                            acc += (plane[ih * g.w + iw] * go[oh * g.ow + ow]) as f64;
                        }
                    }
                }
            }
            *out = acc as f32;
        }
    });
    Ok(dw)
}

/// Calls `f(kh, kw, oh, ow)` for every window tap of `g` that reads input `(ih, iw)`, in
/// (kh, kw) order: the order in which both backends' gathers sum.
#[inline]
fn taps_reading(
    g: &WindowGeom, ih: usize, iw: usize, mut f: impl FnMut(usize, usize, usize, usize),
) {
    for kh in 0..g.kh {
        let Some(oh) = conv_src(ih, kh, g.pad_top, g.dh, g.sh, g.oh) else {
            continue;
        };
        for kw in 0..g.kw {
            if let Some(ow) = conv_src(iw, kw, g.pad_left, g.dw, g.sw, g.ow) {
                f(kh, kw, oh, ow);
            }
        }
    }
}

/// The output position whose window tap `k` lands on input `i`, if any:
/// `o * stride + k * dilation - pad == i`.
#[inline]
fn conv_src(
    i: usize, k: usize, pad: usize, dilation: usize, stride: usize, out: usize,
) -> Option<usize> {
    let t = i as isize + pad as isize - (k * dilation) as isize;
    if t < 0 || !(t as usize).is_multiple_of(stride) {
        return None;
    }
    let o = t as usize / stride;
    (o < out).then_some(o)
}
