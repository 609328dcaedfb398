//! Strided batched matrix products through `matrixmultiply`.

use rayon::prelude::*;

use super::host::{host_vec, SyncPtr};
use crate::backend::GemmSpec;
use crate::Result;

/// Strided batched matrix product: small batched products run one batch per task,
/// large ones rely on `matrixmultiply`'s own threading.
pub(super) fn gemm(a: &[f32], b: &[f32], s: &GemmSpec) -> Result<Vec<f32>> {
    let mut c = host_vec(s.c_len, 0.0, "gemm")?;
    let cp = SyncPtr(c.as_mut_ptr());
    let run = |bi: usize| {
        let (ao, bo, co) = (
            s.a.base(bi, s.batch_inner),
            s.b.base(bi, s.batch_inner),
            s.c.base(bi, s.batch_inner),
        );
        // SAFETY: the ops layer checked every layout's extent against its buffer, and each
        // batch writes a disjoint set of C elements (GemmSpec's contract).
        unsafe {
            matrixmultiply::sgemm(
                s.m,
                s.k,
                s.n,
                1.0,
                a.as_ptr().add(ao),
                s.a.row_stride as isize,
                s.a.col_stride as isize,
                b.as_ptr().add(bo),
                s.b.row_stride as isize,
                s.b.col_stride as isize,
                0.0,
                cp.get().add(co),
                s.c.row_stride as isize,
                s.c.col_stride as isize,
            );
        }
    };
    if s.batch > 1 && s.m * s.n * s.k < (1 << 18) {
        (0..s.batch).into_par_iter().for_each(run);
    } else {
        (0..s.batch).for_each(run);
    }
    Ok(c)
}
