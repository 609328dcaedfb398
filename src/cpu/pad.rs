//! Padding of the last two axes, forward (a gather) and backward (each input summing the
//! outputs that read it, in the GPU's order).

use super::host::{host_vec, host_vec_for_overwrite, par_chunks};
use crate::backend::{pad_readers, pad_source, PadGeom};
use crate::Result;

/// `(planes, h, w) -> (planes, oh, ow)`.
pub(super) fn pad2d(x: &[f32], g: &PadGeom) -> Result<Vec<f32>> {
    let g = *g;
    let mut y = host_vec_for_overwrite(g.planes * g.oh * g.ow, "pad")?;
    let rows: Vec<_> = (0..g.oh).map(|o| pad_source(o, g.top, g.h, g.kind)).collect();
    let cols: Vec<_> = (0..g.ow).map(|o| pad_source(o, g.left, g.w, g.kind)).collect();
    par_chunks(&mut y, g.oh * g.ow, |p, out| {
        let plane = &x[p * g.h * g.w..][..g.h * g.w];
        for (row, src_h) in out.chunks_mut(g.ow).zip(&rows) {
            for (v, src_w) in row.iter_mut().zip(&cols) {
                *v = match (src_h, src_w) {
                    (Some(i), Some(j)) => plane[i * g.w + j],
                    _ => g.value,
                };
            }
        }
    });
    Ok(y)
}

/// `grad (planes, oh, ow) -> (planes, h, w)`.
pub(super) fn pad2d_backward(grad: &[f32], g: &PadGeom) -> Result<Vec<f32>> {
    let g = *g;
    let mut dx = host_vec(g.planes * g.h * g.w, 0.0, "pad_backward")?;
    let rows: Vec<_> = (0..g.h).map(|i| pad_readers(i, g.top, g.h, g.oh, g.kind)).collect();
    let cols: Vec<_> = (0..g.w).map(|j| pad_readers(j, g.left, g.w, g.ow, g.kind)).collect();
    par_chunks(&mut dx, g.h * g.w, |p, plane| {
        let go = &grad[p * g.oh * g.ow..][..g.oh * g.ow];
        for (row, ry) in plane.chunks_mut(g.w).zip(&rows) {
            for (v, rx) in row.iter_mut().zip(&cols) {
                let mut acc = 0.0;
                for y in ry.iter().flat_map(|&(lo, hi)| lo..hi) {
                    for x in rx.iter().flat_map(|&(lo, hi)| lo..hi) {
                        acc += go[y * g.ow + x];
                    }
                }
                *v = acc;
            }
        }
    });
    Ok(dx)
}
