//! Host memory and threading helpers shared by the CPU kernels.

use rayon::prelude::*;

use crate::Result;

/// A host vector of `n` copies of `value`, or an `Err` naming `op` when the memory cannot be
/// had (never an abort). Large vectors come from the buffer cache when it has one of that
/// length; fresh zeros come from the allocator already zeroed (the OS's zero pages, no fill).
pub(crate) fn host_vec(n: usize, value: f32, op: &'static str) -> Result<Vec<f32>> {
    if let Some(mut v) = super::recycle::take(n) {
        par_chunks(&mut v, TASK_MIN, |_, c| c.fill(value));
        return Ok(v);
    }
    fresh_vec(n, value, op)
}

/// A host vector of `n` elements whose values are unspecified (a cached buffer's old values, or
/// zeros): only for outputs the caller writes in full.
pub(super) fn host_vec_for_overwrite(n: usize, op: &'static str) -> Result<Vec<f32>> {
    match super::recycle::take(n) {
        Some(v) => Ok(v),
        None => fresh_vec(n, 0.0, op),
    }
}

/// Fresh memory from the allocator.
fn fresh_vec(n: usize, value: f32, op: &'static str) -> Result<Vec<f32>> {
    let no_memory = || crate::Error::OutOfMemory {
        op,
        msg: format!("cannot allocate {n} elements ({} bytes) on the host", n.saturating_mul(4)),
    };
    if value.to_bits() == 0 && n > 0 {
        let layout = std::alloc::Layout::array::<f32>(n).map_err(|_| no_memory())?;
        // SAFETY: the layout has a non-zero size; a null result is handled; the memory comes
        // from the global allocator with the layout of `[f32; n]`, as `Vec<f32>` requires, and
        // all-zero bytes are `n` valid 0.0 values.
        unsafe {
            let p = std::alloc::alloc_zeroed(layout) as *mut f32;
            if p.is_null() {
                return Err(no_memory());
            }
            return Ok(Vec::from_raw_parts(p, n, n));
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| no_memory())?;
    v.resize(n, value);
    Ok(v)
}

/// `x` as `(rows, cols)` matrices of `run`-element runs, back to back, each transposed to
/// `(cols, rows)`: a weight's axes reordered for a kernel, or back.
pub(super) fn transpose_runs(
    x: &[f32], (rows, cols): (usize, usize), run: usize, op: &'static str,
) -> Result<Vec<f32>> {
    // every element is written: each run of every matrix
    let mut out = host_vec_for_overwrite(x.len(), op)?;
    let mat = rows * cols * run;
    if mat == 0 {
        return Ok(out);
    }
    for (src, dst) in x.chunks_exact(mat).zip(out.chunks_exact_mut(mat)) {
        for r in 0..rows {
            for c in 0..cols {
                let (from, to) = ((r * cols + c) * run, (c * rows + r) * run);
                if run == 1 {
                    dst[to] = src[from];
                } else {
                    dst[to..to + run].copy_from_slice(&src[from..from + run]);
                }
            }
        }
    }
    Ok(out)
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

/// Fewest elements one task of `par_chunks` takes: small chunks (a row, a small plane) are
/// grouped, so tasks stay few and large.
const TASK_MIN: usize = 1 << 12;

/// Fills `out` in chunks of `chunk` elements (one plane, one row), threaded when large. Each
/// chunk is computed the same way whatever the grouping, so results do not depend on it.
pub(super) fn par_chunks(
    out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if out.len() >= PAR_MIN && chunk > 0 {
        let group = (TASK_MIN / chunk).max(1);
        out.par_chunks_mut(chunk * group).enumerate().for_each(|(t, block)| {
            for (i, c) in block.chunks_mut(chunk).enumerate() {
                f(t * group + i, c);
            }
        });
    } else {
        out.chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    }
}

thread_local! {
    /// Each thread's scratch buffer (im2col columns), kept between calls.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of `len` elements (contents unspecified), grown
/// when needed and kept for the next call; an `Err` naming `op` when it cannot grow.
pub(super) fn with_scratch<R>(
    len: usize, op: &'static str, f: impl FnOnce(&mut [f32]) -> R,
) -> Result<R> {
    // Taken out while in use: a nested call on this thread (rayon may run another task here
    // while `f` waits) gets a buffer of its own instead of a borrow conflict.
    let mut buf = SCRATCH.take();
    if buf.len() < len {
        buf.try_reserve_exact(len - buf.len()).map_err(|_| crate::Error::OutOfMemory {
            op,
            msg: format!(
                "cannot allocate a scratch buffer of {len} elements ({} bytes) on the host",
                len.saturating_mul(4)
            ),
        })?;
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    let kept = SCRATCH.take();
    SCRATCH.set(if kept.len() > buf.len() { kept } else { buf });
    Ok(r)
}
