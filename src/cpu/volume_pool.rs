//! max_pool3d on the CPU in one pass over the volume: each output plane compares the 2-d
//! windows of the input planes its depth taps read, in (depth, row, column) tap order, so
//! values, ties and NaNs follow PyTorch's rule as the 2-d pool does; the backward is one
//! scatter per volume. (Elsewhere max_pool3d is a 2-d pool over the planes, then over depth.)

use rayon::prelude::*;

use super::host::host_vec_for_overwrite;
use super::pool::{scatter_argmax, MaxPlan};
use crate::shape::WindowGeom;
use crate::Result;

/// A 3-d max pool as two window geometries: `plane` over `(n, c*d, h, w)`, and `depth` over
/// `(n, c, d, oh*ow)` with a `(kd, 1)` window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pool3dGeom {
    pub plane: WindowGeom,
    pub depth: WindowGeom,
}

impl Pool3dGeom {
    /// Volumes, and elements of an input and an output volume.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let (p, d) = (&self.plane, &self.depth);
        (d.n * d.c, d.h * p.h * p.w, d.oh * p.oh * p.ow)
    }
}

/// `(n, c, d, h, w) -> (n, c, od, oh, ow)` maxima and the flat `d*h*w` index of each (as f32,
/// exact below 2^24 elements per volume).
pub(crate) fn max_pool3d(x: &[f32], p: &Pool3dGeom) -> Result<(Vec<f32>, Vec<f32>)> {
    const OP: &str = "max_pool3d";
    let (volumes, vin, vout) = p.sizes();
    let (g, dg) = (&p.plane, &p.depth);
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    // every output plane is filled before its taps are compared
    let mut out = host_vec_for_overwrite(volumes * vout, OP)?;
    let mut idx = host_vec_for_overwrite(out.len(), OP)?;
    let plan = MaxPlan::of(g);
    out.par_chunks_mut(vout).zip(idx.par_chunks_mut(vout)).enumerate().for_each(|(v, (o, ix))| {
        let vol = &x[v * vin..][..vin];
        for (z, (o, ix)) in
            o.chunks_exact_mut(plane_out).zip(ix.chunks_exact_mut(plane_out)).enumerate()
        {
            o.fill(f32::NEG_INFINITY);
            ix.fill(-1.0);
            for t in dg.row_taps(z) {
                let zi = z * dg.sh + t * dg.dh - dg.pad_top;
                plan.compare_plane(&vol[zi * plane_in..][..plane_in], o, ix, zi * plane_in);
            }
        }
    });
    Ok((out, idx))
}

/// `grad (n, c, od, oh, ow)`, `indices` -> `(n, c, d, h, w)`.
pub(crate) fn max_pool3d_backward(
    grad: &[f32], indices: &[f32], p: &Pool3dGeom,
) -> Result<Vec<f32>> {
    scatter_argmax(grad, indices, p.sizes(), "max_pool3d_backward")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values, indices (ties and NaNs included) and the backward against the definition:
    /// each window's taps in (depth, row, column) order, PyTorch's rule.
    #[test]
    fn max_pool3d_matches_the_definition() {
        // (n, c, d, h, w), kernel, stride, padding, dilation, ceil
        type Case = ([usize; 5], [usize; 3], [usize; 3], [usize; 3], [usize; 3], bool);
        let cases: [Case; 4] = [
            ([2, 3, 4, 6, 6], [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false),
            ([1, 2, 5, 7, 6], [3, 2, 3], [2, 1, 2], [1, 1, 1], [1, 1, 1], true),
            ([1, 1, 7, 5, 5], [2, 3, 2], [1, 2, 1], [1, 0, 1], [2, 1, 2], false),
            ([2, 1, 3, 4, 5], [3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], true),
        ];
        for ([n, c, d, h, w], k, s, p, dl, ceil) in cases {
            let pool = |dims, k: (usize, usize), s, p, dl| {
                WindowGeom::pool("test", dims, k, s, p, dl, ceil).unwrap()
            };
            let plane =
                pool((n, c * d, h, w), (k[1], k[2]), (s[1], s[2]), (p[1], p[2]), (dl[1], dl[2]));
            let depth =
                pool((n, c, d, plane.oh * plane.ow), (k[0], 1), (s[0], 1), (p[0], 0), (dl[0], 1));
            let g = Pool3dGeom { plane, depth };
            let (vin, vout) = (d * h * w, depth.oh * plane.oh * plane.ow);
            // few distinct values (ties), and a NaN now and then
            let x: Vec<f32> = (0..n * c * vin)
                .map(|i| if i % 23 == 7 { f32::NAN } else { ((i * 37) % 11) as f32 })
                .collect();
            let (y, idx) = max_pool3d(&x, &g).unwrap();
            let up: Vec<f32> = (0..y.len()).map(|i| (i % 5) as f32 - 2.0).collect();
            let mut dx = vec![0.0f32; x.len()];
            let at = |o: usize, t: usize, st: usize, dil: usize, pad: usize, len: usize| {
                (o * st + t * dil).checked_sub(pad).filter(|&i| i < len)
            };
            for v in 0..n * c {
                for o in 0..vout {
                    let (z, oy, ox) =
                        (o / (plane.oh * plane.ow), (o / plane.ow) % plane.oh, o % plane.ow);
                    let (mut best, mut arg) = (f32::NEG_INFINITY, None);
                    for t in 0..k[0] {
                        for ky in 0..k[1] {
                            for kx in 0..k[2] {
                                let zi = at(z, t, s[0], dl[0], p[0], d);
                                let yi = at(oy, ky, s[1], dl[1], p[1], h);
                                let xi = at(ox, kx, s[2], dl[2], p[2], w);
                                let (Some(zi), Some(yi), Some(xi)) = (zi, yi, xi) else { continue };
                                let i = (zi * h + yi) * w + xi;
                                let val = x[v * vin + i];
                                if arg.is_none() || val > best || val.is_nan() {
                                    (best, arg) = (val, Some(i));
                                }
                            }
                        }
                    }
                    let (got, want) = (y[v * vout + o], best);
                    assert!(got == want || got.is_nan() && want.is_nan(), "{o}: {got} vs {want}");
                    assert_eq!(idx[v * vout + o], arg.unwrap() as f32, "index {o}");
                    dx[v * vin + arg.unwrap()] += up[v * vout + o];
                }
            }
            assert_eq!(max_pool3d_backward(&up, &idx, &g).unwrap(), dx);
        }
    }
}
