//! Pooling dispatches in passes within the loop budget.

use super::kernels::Shader;
use super::window::WindowParams;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::AvgPoolOpts;
use crate::shape::WindowGeom;
use crate::Result;

impl GpuBackend {
    /// A one-input pooling kernel whose outer loop has at most `rows` rows of `cols` taps.
    fn pool_passes(
        &self,
        entry: &'static str,
        mut p: WindowParams,
        src: &GpuBuffer,
        total: usize,
        (rows, cols): (usize, usize),
    ) -> Result<GpuBuffer> {
        let passes = loops::row_passes(entry_op(entry), rows, cols, 0, self.cap())?;
        p.r_end = passes.last().map_or(0, |&(_, r1)| r1);
        let set = WindowParams::set_rows;
        self.map_passes(Shader::Pool, entry, p, set, &[src], total, &passes)
    }

    /// Maxima `(n, c, oh, ow)` and their flat `h*w` indices, in passes over kh.
    pub(super) fn max_pool_fwd(
        &self,
        x: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let total = g.n * g.c * g.oh * g.ow;
        let out = self.ctx.alloc(total, "max_pool2d")?;
        let idx = self.ctx.alloc(total, "max_pool2d")?;
        self.max_pool_dispatch(
            "max_fwd",
            g,
            total,
            &[(1, x), (2, &out), (3, &idx)],
            &[2, 3],
        )?;
        Ok((out, idx))
    }

    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, in passes over kh.
    pub(super) fn max_pool_bwd(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let out = self.ctx.alloc(total, "max_pool2d_backward")?;
        let bindings = [(1, grad), (2, &out), (3, indices)];
        self.max_pool_dispatch("max_bwd", g, total, &bindings, &[2])?;
        Ok(out)
    }

    fn max_pool_dispatch(
        &self,
        entry: &'static str,
        g: &WindowGeom,
        total: usize,
        bindings: &[(u32, &GpuBuffer)],
        written: &[u32],
    ) -> Result<()> {
        let p = WindowParams::new(g, total, "max_pool2d")?;
        let passes = loops::row_passes("max_pool2d", g.kh, g.kw, 0, self.cap())?;
        let set = WindowParams::set_rows;
        self.dispatch_passes(
            Shader::Pool,
            entry,
            p,
            set,
            bindings,
            written,
            total,
            &passes,
        )?;
        Ok(())
    }

    /// Average pooling: forward (`(n, c, h, w) -> (n, c, oh, ow)` window means) or backward
    /// (`grad (n, c, oh, ow) -> (n, c, h, w)`).
    pub(super) fn avg_pool(
        &self,
        backward: bool,
        src: &GpuBuffer,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        let (entry, total, rows) = match backward {
            false => ("avg_fwd", g.n * g.c * g.oh * g.ow, (g.kh, g.kw)),
            // outputs whose windows can cover one input, per axis
            true => (
                "avg_bwd",
                g.n * g.c * g.h * g.w,
                ((g.kh - 1) / g.sh + 1, (g.kw - 1) / g.sw + 1),
            ),
        };
        let p = WindowParams::new(g, total, "avg_pool2d")?.with_avg(opts)?;
        self.pool_passes(entry, p, src, total, rows)
    }

    /// Adaptive average pooling, `adaptive_fwd` (`(n, c, h, w) -> (n, c, oh, ow)` with
    /// PyTorch's windows) or `adaptive_bwd` (`grad (n, c, oh, ow) -> (n, c, h, w)`).
    pub(super) fn adaptive(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let (total, extent) = adaptive_extent(entry.ends_with("_bwd"), dims, out);
        let p = WindowParams::adaptive(dims, out, total, entry_op(entry))?;
        self.pool_passes(entry, p, src, total, extent)
    }
}

impl GpuBackend {
    /// Adaptive max pooling: maxima `(n, c, oh, ow)` and their flat `h*w` indices, in passes
    /// over each window's rows.
    pub(super) fn adaptive_max_fwd(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        const OP: &str = "adaptive_max_pool2d";
        let total = dims.0 * dims.1 * out.0 * out.1;
        let y = self.ctx.alloc(total, OP)?;
        let idx = self.ctx.alloc(total, OP)?;
        let bindings = [(1, x), (2, &y), (3, &idx)];
        self.adaptive_max_dispatch("adaptive_max_fwd", dims, out, &bindings, &[2, 3])?;
        Ok((y, idx))
    }

    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`.
    pub(super) fn adaptive_max_bwd(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let total = dims.0 * dims.1 * dims.2 * dims.3;
        let dx = self.ctx.alloc(total, "adaptive_max_pool2d_backward")?;
        let bindings = [(1, grad), (2, &dx), (3, indices)];
        self.adaptive_max_dispatch("adaptive_max_bwd", dims, out, &bindings, &[2])?;
        Ok(dx)
    }

    fn adaptive_max_dispatch(
        &self,
        entry: &'static str,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
        bindings: &[(u32, &GpuBuffer)],
        written: &[u32],
    ) -> Result<()> {
        let op = entry_op(entry);
        let (total, (rows, cols)) = adaptive_extent(entry.ends_with("_bwd"), dims, out);
        let passes = loops::row_passes(op, rows, cols, 0, self.cap())?;
        let mut p = WindowParams::adaptive(dims, out, total, op)?;
        p.r_end = passes.last().map_or(0, |&(_, r1)| r1);
        let set = WindowParams::set_rows;
        self.dispatch_passes(
            Shader::Pool,
            entry,
            p,
            set,
            bindings,
            written,
            total,
            &passes,
        )
    }
}

/// An adaptive pooling kernel's invocations, and the most iterations of its outer and inner
/// loops: forward, the longest window per axis; backward, the most windows covering one input
/// per axis (the kernel scans one extra each side).
fn adaptive_extent(
    backward: bool,
    (n, c, h, w): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
) -> (usize, (usize, usize)) {
    if backward {
        let loops = ((oh.div_ceil(h) + 2).min(oh), (ow.div_ceil(w) + 2).min(ow));
        (n * c * h * w, loops)
    } else {
        let loops = ((h.div_ceil(oh) + 1).min(h), (w.div_ceil(ow) + 1).min(w));
        (n * c * oh * ow, loops)
    }
}

/// The public op a pooling kernel serves, for error messages.
fn entry_op(entry: &str) -> &'static str {
    if entry.starts_with("adaptive_max") {
        "adaptive_max_pool2d"
    } else if entry.starts_with("adaptive") {
        "adaptive_avg_pool2d"
    } else {
        "avg_pool2d"
    }
}
