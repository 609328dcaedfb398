//! Batch norm's per-channel primitives in single passes: a dot product per channel (f64
//! accumulators, channels in parallel, each summed in (n, hw) order whatever the thread count)
//! and a per-channel affine combination.

use rayon::prelude::*;

use super::host::{host_vec_for_overwrite, par_chunks};
use crate::backend::UnaryOp;
use crate::Result;

/// `sum over (n, hw) of (x - mean[ch]) * (g or x - mean[ch])` for `(n, c, hw)` -> `(c)`.
pub(super) fn channel_dot(
    x: &[f32], mean: &[f32], g: Option<&[f32]>, (n, c, hw): (usize, usize, usize),
) -> Result<Vec<f32>> {
    Ok((0..c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch];
            let mut acc = 0f64;
            for img in 0..n {
                let at = (img * c + ch) * hw;
                let xs = &x[at..at + hw];
                let part: f64 = match g {
                    Some(g) => {
                        xs.iter().zip(&g[at..at + hw]).map(|(&v, &w)| ((v - m) * w) as f64).sum()
                    }
                    None => xs.iter().map(|&v| ((v - m) * (v - m)) as f64).sum(),
                };
                acc += part;
            }
            acc as f32
        })
        .collect())
}

/// `a[ch] * u + b[ch] * v + k[ch]` over `(n, c, hw)` (without `(v, b)`: `a[ch] * u + k[ch]`).
pub(super) fn channel_combine(
    u: &[f32], a: &[f32], vb: Option<(&[f32], &[f32])>, k: &[f32],
    (n, c, hw): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let Some((v, b)) = vb else {
        return channel_affine(u, a, k, None, false, (n, c, hw));
    };
    let mut y = host_vec_for_overwrite(n * c * hw, "batch_norm2d")?;
    par_chunks(&mut y, hw, |plane, out| {
        let ch = plane % c;
        let (a, b, k) = (a[ch], b[ch], k[ch]);
        let (us, vs) = (&u[plane * hw..][..hw], &v[plane * hw..][..hw]);
        for ((o, &p), &q) in out.iter_mut().zip(us).zip(vs) {
            *o = a * p + b * q + k;
        }
    });
    Ok(y)
}

/// `a[ch] * u + k[ch]`, then `+ residual` and a ReLU where asked, in one pass with the
/// composed passes' arithmetic.
pub(super) fn channel_affine(
    u: &[f32], a: &[f32], k: &[f32], residual: Option<&[f32]>, relu: bool,
    (n, c, hw): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let mut y = host_vec_for_overwrite(n * c * hw, "batch_norm2d")?;
    par_chunks(&mut y, hw, |plane, out| {
        let ch = plane % c;
        let (a, k) = (a[ch], k[ch]);
        let us = &u[plane * hw..][..hw];
        let rs = residual.map(|r| &r[plane * hw..][..hw]);
        for (i, (o, &p)) in out.iter_mut().zip(us).enumerate() {
            let mut v = a * p + k;
            if let Some(r) = rs {
                v += r[i];
            }
            *o = if relu { UnaryOp::Relu.apply(v) } else { v };
        }
    });
    Ok(y)
}
