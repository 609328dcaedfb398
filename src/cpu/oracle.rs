//! Naive direct-loop reference implementations, used only by tests to check the real kernels.

/// Direct 2-D convolution (PyTorch `F.conv2d` semantics) with explicit loops.
/// `x (n, c, h, w)`, `wt (d, c/groups, kh, kw)`, padding `[top, bottom, left, right]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_direct(
    x: &[f32], xdims: (usize, usize, usize, usize), wt: &[f32],
    wdims: (usize, usize, usize, usize), bias: Option<&[f32]>, stride: (usize, usize),
    padding: [usize; 4], dilation: (usize, usize), groups: usize,
) -> (Vec<f32>, (usize, usize, usize, usize)) {
    let (n, c, h, w) = xdims;
    let (d, cg, kh, kw) = wdims;
    let g =
        crate::shape::WindowGeom::conv("conv2d_direct", xdims, (kh, kw), stride, padding, dilation)
            .expect("a valid convolution");
    let (oh, ow) = (g.oh, g.ow);
    let dg = d / groups;
    let mut out = vec![0.0f32; n * d * oh * ow];
    for b in 0..n {
        for o in 0..d {
            let g = o / dg;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = bias.map_or(0.0, |bb| bb[o]) as f64;
                    for ci in 0..cg {
                        let cin = g * cg + ci;
                        for i in 0..kh {
                            let ih = (y * stride.0 + i * dilation.0) as isize - padding[0] as isize;
                            if ih < 0 || ih as usize >= h {
                                continue;
                            }
                            for j in 0..kw {
                                let iw =
                                    (xo * stride.1 + j * dilation.1) as isize - padding[2] as isize;
                                if iw < 0 || iw as usize >= w {
                                    continue;
                                }
                                let xv = x[((b * c + cin) * h + ih as usize) * w + iw as usize];
                                let wv = wt[((o * cg + ci) * kh + i) * kw + j];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    out[((b * d + o) * oh + y) * ow + xo] = acc as f32;
                }
            }
        }
    }
    (out, (n, d, oh, ow))
}
