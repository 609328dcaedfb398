//! Convolution's gathers (col2im, depthwise) in passes within the loop budget.

use super::{fit, grid, loops, ConvParams, GpuBackend, GpuBuffer, Shader, WG};
use crate::backend::ReduceOp;
use crate::shape::ConvGeom;
use crate::Result;

impl GpuBackend {
    /// `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`, in passes over kh.
    pub(super) fn col2im_passes(&self, cols: &GpuBuffer, g: &ConvGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let passes = loops::row_passes("conv2d", g.kh, g.kw, 0, self.cap())?;
        let set = |p: &mut ConvParams, r0, r1| {
            p.r0 = r0;
            p.r1 = r1;
        };
        let p = ConvParams::new(g, total)?;
        self.map_passes(Shader::Conv, "col2im", p, set, &[cols], total, &passes)
    }

    /// A depthwise gather over `total` outputs whose outer loop has `rows` rows of kw taps:
    /// `src` at binding 1, `aux` at 3, output at 2.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn depthwise(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        aux: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
        total: usize,
        rows: usize,
    ) -> Result<GpuBuffer> {
        let mut p = ConvParams::new(g, total)?;
        p.mult = fit(mult, "conv2d")?;
        let passes = loops::row_passes("conv2d", rows, g.kw, 0, self.cap())?;
        let out = self.ctx.alloc(total, "conv2d")?;
        let groups = self.threads(total)?;
        for (r0, r1) in passes {
            p.r0 = r0;
            p.r1 = r1;
            self.ctx.dispatch(
                Shader::Conv,
                entry,
                bytemuck::bytes_of(&p),
                &[(1, src), (2, &out), (3, aux)],
                &[2],
                groups,
            )?;
        }
        Ok(out)
    }

    /// The depthwise weight gradient: one workgroup per weight and chunk of windows, then the
    /// chunks summed in order.
    pub(super) fn depthwise_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let weights = g.c * mult * g.kh * g.kw;
        let windows = g.n * g.oh * g.ow;
        let chunk = WG * loops::reduce_stride_trips(self.cap());
        let chunks = windows.div_ceil(chunk).max(1);
        let total = weights * chunks;
        let mut p = ConvParams::new(g, total)?;
        p.mult = fit(mult, "conv2d")?;
        p.r0 = fit(chunk, "conv2d")?;
        p.r1 = fit(chunks, "conv2d")?;
        // (c*mult*kh*kw, chunks)
        let out = self.ctx.alloc(total, "conv2d")?;
        self.ctx.dispatch(
            Shader::Conv,
            "dw_bwd_weight",
            bytemuck::bytes_of(&p),
            &[(1, x), (2, &out), (3, grad)],
            &[2],
            grid(total, self.ctx.limits.max_workgroups_per_dimension)?,
        )?;
        if chunks == 1 {
            return Ok(out);
        }
        self.reduce(&out, weights, chunks, 1, ReduceOp::Sum)
    }
}
