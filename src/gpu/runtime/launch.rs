//! What every launch needs: grids within the per-dimension limit, index-range checks of the
//! values the shaders see, and the one-thread-per-output launchers, in passes where a kernel's
//! outer loop is longer than the loop budget allows in one dispatch.

use std::sync::Arc;

use bytemuck::Pod;

use super::context::GpuContext;
use super::kernel::{Kernel, WG};
use super::memory::GpuBuffer;
use crate::{Error, Result};

/// Workgroups for `n_groups` along x, spilling into y and then z past the per-dimension limit
/// (kernels flatten the workgroup id and skip the surplus).
fn grid(op: &'static str, n_groups: usize, max: u32) -> Result<[u32; 3]> {
    let max = max as usize;
    let x = n_groups.min(max);
    let rest = n_groups.div_ceil(max).max(1);
    let y = rest.min(max);
    let z = rest.div_ceil(max).max(1);
    if z > max {
        return Err(Error::TooLarge {
            op,
            msg: format!("{n_groups} workgroups exceed a {max}^3 grid"),
        });
    }
    Ok([x as u32, y as u32, z as u32])
}

/// `v` as a u32 for the shaders, or an error naming `op`.
pub(crate) fn u32_of(v: usize, op: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        op,
        msg: format!("{v} does not fit the GPU's 32-bit indices"),
    })
}

/// A geometry value for the shaders, which index with i32 arithmetic: at most `i32::MAX`.
pub(crate) fn fit(v: usize, op: &'static str) -> Result<u32> {
    if v > i32::MAX as usize {
        return Err(Error::TooLarge {
            op,
            msg: format!("{v} exceeds the GPU kernels' 31-bit index range"),
        });
    }
    Ok(v as u32)
}

/// Every value of `v` through [`fit`].
pub(crate) fn fit_each<const N: usize>(v: [usize; N], op: &'static str) -> Result<[u32; N]> {
    let mut out = [0; N];
    for (o, v) in out.iter_mut().zip(v) {
        *o = fit(v, op)?;
    }
    Ok(out)
}

/// Params of a kernel that runs its outer loop in passes (`loops::row_passes`).
pub(crate) trait RowPasses: Pod {
    /// Writes a pass's rows `[r0, r1)` of the outer loop.
    fn set_rows(&mut self, rows: (u32, u32));
}

/// Implements [`RowPasses`] for params whose pass rows are the fields `r0` and `r1`.
macro_rules! row_passes {
    ($($t:ty),*) => {
        $(impl $crate::gpu::runtime::launch::RowPasses for $t {
            fn set_rows(&mut self, (r0, r1): (u32, u32)) {
                (self.r0, self.r1) = (r0, r1);
            }
        })*
    };
}
pub(crate) use row_passes;

impl GpuContext {
    /// The per-invocation loop budget.
    pub(crate) fn cap(&self) -> usize {
        self.limits.loop_cap
    }

    /// Workgroups for one thread per element of a `total`-element output.
    pub(crate) fn threads(&self, op: &'static str, total: usize) -> Result<[u32; 3]> {
        let max = self.limits.max_workgroups_per_dimension;
        grid(op, total.div_ceil(WG), max)
    }

    /// Workgroups for one workgroup per output.
    pub(crate) fn groups(&self, op: &'static str, total: usize) -> Result<[u32; 3]> {
        grid(op, total, self.limits.max_workgroups_per_dimension)
    }

    /// One thread per element of a new `total`-element output: `k(inputs..) -> out`, the
    /// output the kernel's last binding.
    pub(crate) fn map<P: Pod>(
        self: &Arc<Self>, k: &Kernel<P>, params: &P, inputs: &[&GpuBuffer], total: usize,
    ) -> Result<GpuBuffer> {
        let out = self.alloc(total, k.info.op)?;
        let mut bufs = inputs.to_vec();
        bufs.push(&out);
        self.launch(k, params, &bufs, self.threads(k.info.op, total)?)?;
        Ok(out)
    }

    /// [`GpuContext::map`] in passes over the rows of the kernel's outer loop (`passes` from
    /// `loops::row_passes`), each dispatch resuming from the output of the one before.
    pub(crate) fn map_passes<P: RowPasses>(
        self: &Arc<Self>, k: &Kernel<P>, params: P, inputs: &[&GpuBuffer], total: usize,
        passes: &[(u32, u32)],
    ) -> Result<GpuBuffer> {
        let out = self.alloc(total, k.info.op)?;
        let mut bufs = inputs.to_vec();
        bufs.push(&out);
        self.launch_passes(k, params, &bufs, total, passes)?;
        Ok(out)
    }

    /// One thread per element of a `total`-element output, one dispatch per pass of `passes`;
    /// every pass after the first resumes from the kernel's outputs.
    pub(crate) fn launch_passes<P: RowPasses>(
        &self, k: &Kernel<P>, mut params: P, bufs: &[&GpuBuffer], total: usize,
        passes: &[(u32, u32)],
    ) -> Result<()> {
        let groups = self.threads(k.info.op, total)?;
        for &rows in passes {
            params.set_rows(rows);
            self.launch(k, &params, bufs, groups)?;
        }
        Ok(())
    }
}
