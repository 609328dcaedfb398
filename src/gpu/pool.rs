//! Pooling dispatches in passes within the loop budget.

use super::{loops, GpuBackend, GpuBuffer, PoolParams, Shader};
use crate::shape::PoolGeom;
use crate::Result;

impl GpuBackend {
    /// A one-input pooling kernel whose outer loop has at most `rows` rows of `cols` taps.
    pub(super) fn pool_passes(
        &self,
        entry: &'static str,
        mut p: PoolParams,
        src: &GpuBuffer,
        total: usize,
        rows: usize,
        cols: usize,
    ) -> Result<GpuBuffer> {
        let passes = loops::row_passes(entry_op(entry), rows, cols, 0, self.cap())?;
        p.r_end = passes.last().map_or(0, |&(_, r1)| r1);
        let set = |p: &mut PoolParams, r0, r1| {
            p.r0 = r0;
            p.r1 = r1;
        };
        self.map_passes(Shader::Pool, entry, p, set, &[src], total, &passes)
    }

    /// Maxima `(n, c, oh, ow)` and their flat `h*w` indices, in passes over kh.
    pub(super) fn max_pool_fwd(
        &self,
        x: &GpuBuffer,
        g: &PoolGeom,
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let total = g.n * g.c * g.oh * g.ow;
        let out = self.ctx.alloc(total, "max_pool2d")?;
        let idx = self.ctx.alloc(total, "max_pool2d")?;
        let mut p = PoolParams::new(g, total, None)?;
        let groups = self.threads(total)?;
        for (r0, r1) in loops::row_passes("max_pool2d", g.kh, g.kw, 0, self.cap())? {
            p.r0 = r0;
            p.r1 = r1;
            self.ctx.dispatch(
                Shader::Pool,
                "max_fwd",
                bytemuck::bytes_of(&p),
                &[(1, x), (2, &out), (3, &idx)],
                &[2, 3],
                groups,
            )?;
        }
        Ok((out, idx))
    }

    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, in passes over kh.
    pub(super) fn max_pool_bwd(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &PoolGeom,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let out = self.ctx.alloc(total, "max_pool2d_backward")?;
        let mut p = PoolParams::new(g, total, None)?;
        let groups = self.threads(total)?;
        for (r0, r1) in loops::row_passes("max_pool2d", g.kh, g.kw, 0, self.cap())? {
            p.r0 = r0;
            p.r1 = r1;
            self.ctx.dispatch(
                Shader::Pool,
                "max_bwd",
                bytemuck::bytes_of(&p),
                &[(1, grad), (2, &out), (3, indices)],
                &[2],
                groups,
            )?;
        }
        Ok(out)
    }
}

/// The public op a pooling kernel serves, for error messages.
fn entry_op(entry: &str) -> &'static str {
    if entry.starts_with("adaptive") {
        "adaptive_avg_pool2d"
    } else {
        "avg_pool2d"
    }
}
