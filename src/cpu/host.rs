//! Host memory and threading helpers shared by the CPU kernels.

use rayon::prelude::*;

use crate::Result;

/// A host vector of `n` copies of `value`, or an `Err` naming `op` when the memory cannot be
/// had (never an abort).
pub(crate) fn host_vec(n: usize, value: f32, op: &'static str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| crate::Error::Invalid {
        op,
        msg: format!(
            "cannot allocate {n} elements ({} bytes) on the host",
            n.saturating_mul(4)
        ),
    })?;
    v.resize(n, value);
    Ok(v)
}

/// Below this many elements, threading costs more than it saves.
pub(super) const PAR_MIN: usize = 1 << 14;

/// Raw pointer that rayon tasks may share when each writes a disjoint part.
#[derive(Clone, Copy)]
pub(super) struct SyncPtr(pub(super) *mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    // A method call makes closures capture the whole (Send) wrapper, not the raw field.
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Fills `out[i] = f(i)`, threaded when large.
pub(super) fn par_fill(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync + Send) {
    if out.len() >= PAR_MIN {
        out.par_iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    } else {
        out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    }
}

/// Fills `out` in chunks of `chunk` elements (one plane, one row), threaded when large.
pub(super) fn par_chunks(
    out: &mut [f32],
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}
