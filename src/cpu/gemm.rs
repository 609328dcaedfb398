//! Matrix products through the `gemm` crate (packed SIMD kernels chosen at run time: AVX-512,
//! AVX2+FMA, NEON or scalar). Its threading splits only the output, never the sum over `k`, and
//! its blocking depends on the shape alone, so a product's bits do not depend on the thread
//! count.

use rayon::prelude::*;

use super::host::{host_vec_for_overwrite, SyncPtr};
use crate::backend::GemmSpec;
use crate::Result;

/// A matrix operand: element `(i, j)` at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(super) struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    /// Row-major `(rows, cols)` from the start of `s`.
    pub fn rows(s: &[f32], cols: usize) -> Self {
        Mat { ptr: s.as_ptr(), rs: cols as isize, cs: 1 }
    }
    /// Row-major `(rows, cols)` output from the start of `s`.
    pub fn rows_mut(s: &mut [f32], cols: usize) -> Self {
        Mat { ptr: s.as_mut_ptr(), rs: cols as isize, cs: 1 }
    }
    /// Column-major `(rows, cols)` output from the start of `s`: the transpose of a row-major
    /// `(cols, rows)`.
    pub fn cols_mut(s: &mut [f32], rows: usize) -> Self {
        Mat { ptr: s.as_mut_ptr(), rs: 1, cs: rows as isize }
    }
    /// The same storage read as its transpose.
    pub fn t(self) -> Self {
        Mat { rs: self.cs, cs: self.rs, ..self }
    }
}

/// Whether a product may use every rayon thread: no when it runs inside a task that already
/// has one product per thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Threads {
    One,
    All,
}

impl Threads {
    /// `One` when `tasks` independent products keep every thread busy.
    pub fn for_tasks(tasks: usize) -> Self {
        if tasks >= rayon::current_num_threads() {
            Threads::One
        } else {
            Threads::All
        }
    }
}

/// `c (m, n) = a (m, k) x b (k, n)`, or `c += a x b` with `accumulate`; `c` is written
/// through its pointer (made from a mutable buffer, `Mat::rows_mut`).
///
/// # Safety
/// Every element the shapes and strides address lies inside its operand's buffer, and `c`
/// overlaps neither `a` nor `b` nor another thread's output.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm(
    (m, n, k): (usize, usize, usize), a: Mat, b: Mat, c: Mat, accumulate: bool, threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m as isize {
                for j in 0..n as isize {
                    *(c.ptr as *mut f32).offset(i * c.rs + j * c.cs) = 0.0;
                }
            }
        }
        return;
    }
    let par = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::All => gemm::Parallelism::Rayon(0),
    };
    // dst = alpha * dst + beta * a b; dst is read only when accumulating
    gemm::gemm(
        m,
        n,
        k,
        c.ptr as *mut f32,
        c.cs,
        c.rs,
        accumulate,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        1.0f32,
        1.0f32,
        false,
        false,
        false,
        par,
    );
}

/// Strided batched matrix product: many small products run one batch per task, the others
/// one after the other, each threaded.
pub(super) fn gemm(a: &[f32], b: &[f32], s: &GemmSpec) -> Result<Vec<f32>> {
    // every element is written: by exactly one (batch, row, column) of the product
    let mut c = host_vec_for_overwrite(s.c_len, "gemm")?;
    if s.batch == 0 || s.m == 0 || s.n == 0 {
        c.fill(0.0);
        return Ok(c);
    }
    let cp = SyncPtr(c.as_mut_ptr());
    let run = |bi: usize, threads: Threads| {
        let (ao, bo, co) =
            (s.a.base(bi, s.batch_inner), s.b.base(bi, s.batch_inner), s.c.base(bi, s.batch_inner));
        let mat = |p: &[f32], o: usize, rs: usize, cs: usize| Mat {
            ptr: p.as_ptr().wrapping_add(o),
            rs: rs as isize,
            cs: cs as isize,
        };
        // SAFETY: the ops layer checked every layout's extent against its buffer, and each
        // batch writes a disjoint set of C elements (GemmSpec's contract).
        unsafe {
            sgemm(
                (s.m, s.n, s.k),
                mat(a, ao, s.a.row_stride, s.a.col_stride),
                mat(b, bo, s.b.row_stride, s.b.col_stride),
                Mat {
                    ptr: cp.get().add(co),
                    rs: s.c.row_stride as isize,
                    cs: s.c.col_stride as isize,
                },
                false,
                threads,
            );
        }
    };
    if s.batch > 1 && s.m * s.n * s.k < (1 << 18) {
        (0..s.batch).into_par_iter().for_each(|bi| run(bi, Threads::One));
    } else {
        (0..s.batch).for_each(|bi| run(bi, Threads::All));
    }
    Ok(c)
}
