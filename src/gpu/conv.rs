//! Convolution's kernels: im2col, and the gathers (col2im, depthwise) in passes within the loop
//! budget.

use super::kernels::{Shader, WG};
use super::launch::fit;
use super::window::WindowParams;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::ReduceOp;
use crate::shape::WindowGeom;
use crate::Result;

const OP: &str = "conv2d";

impl GpuBackend {
    /// `(n, c, h, w) -> cols (c*kh*kw, n*oh*ow)`.
    pub(super) fn im2col_op(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        let total = g.row_count() * g.row_len();
        let p = WindowParams::new(g, total, OP)?;
        self.map_kernel(Shader::Conv, "im2col", &p, &[x], total)
    }

    /// `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`, in passes over kh.
    pub(super) fn col2im_passes(&self, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let passes = loops::row_passes(OP, g.kh, g.kw, 0, self.cap())?;
        let p = WindowParams::new(g, total, OP)?;
        let set = WindowParams::set_rows;
        self.map_passes(Shader::Conv, "col2im", p, set, &[cols], total, &passes)
    }

    /// A depthwise gather, `src` at binding 1, `aux` at 3, output at 2, in passes over its
    /// outer loop. `dw_fwd`: `x (n, c, h, w)`, `w (c*mult, 1, kh, kw)` -> `(n, c*mult, oh, ow)`,
    /// rows kh. `dw_bwd_input`: `grad (n, c*mult, oh, ow)`, `w` -> `(n, c, h, w)`, rows
    /// (m, kh).
    pub(super) fn depthwise(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        aux: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let (total, rows) = if entry == "dw_fwd" {
            (g.n * g.c * mult * g.oh * g.ow, g.kh)
        } else {
            (g.n * g.c * g.h * g.w, mult * g.kh)
        };
        let mut p = WindowParams::new(g, total, OP)?;
        p.mult = fit(mult, OP)?;
        let passes = loops::row_passes(OP, rows, g.kw, 0, self.cap())?;
        let out = self.ctx.alloc(total, OP)?;
        let bindings = [(1, src), (2, &out), (3, aux)];
        let set = WindowParams::set_rows;
        self.dispatch_passes(Shader::Conv, entry, p, set, &bindings, &[2], total, &passes)?;
        Ok(out)
    }

    /// The depthwise weight gradient: one workgroup per weight and chunk of windows, then the
    /// chunks summed in order.
    pub(super) fn depthwise_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let weights = g.c * mult * g.kh * g.kw;
        let windows = g.n * g.oh * g.ow;
        let chunk = WG * loops::reduce_stride_trips(self.cap());
        let chunks = windows.div_ceil(chunk).max(1);
        let total = weights * chunks;
        let mut p = WindowParams::new(g, total, OP)?;
        p.mult = fit(mult, OP)?;
        p.set_rows((fit(chunk, OP)?, fit(chunks, OP)?));
        // (c*mult*kh*kw, chunks)
        let out = self.ctx.alloc(total, OP)?;
        self.ctx.dispatch(
            Shader::Conv,
            "dw_bwd_weight",
            bytemuck::bytes_of(&p),
            &[(1, x), (2, &out), (3, grad)],
            &[2],
            self.groups(total)?,
        )?;
        if chunks == 1 {
            return Ok(out);
        }
        self.reduce(&out, (weights, chunks, 1), ReduceOp::Sum)
    }
}
