//! Upsampling kernels; the backward gathers run in passes within the loop budget.

use super::kernels::Shader;
use super::launch::{fit, u32_of};
use super::uniforms::uniform;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::{bilinear_src, nearest_src, UpsampleGeom};
use crate::Result;

uniform! {
    UpsampleParams as "Params" {
        n: u32,
        c: u32,
        h: u32,
        w: u32,
        oh: u32,
        ow: u32,
        total: u32,
        align_corners: u32,
        scale_h: f32,
        scale_w: f32,
        /// backward passes: this pass's rows of the outer loop
        r0: u32,
        r1: u32,
    }
}

impl UpsampleParams {
    fn new(g: &UpsampleGeom, total: usize) -> Result<Self> {
        Ok(UpsampleParams {
            n: fit(g.n, "upsample")?,
            c: fit(g.c, "upsample")?,
            h: fit(g.h, "upsample")?,
            w: fit(g.w, "upsample")?,
            oh: fit(g.oh, "upsample")?,
            ow: fit(g.ow, "upsample")?,
            total: u32_of(total, "upsample")?,
            align_corners: g.align_corners as u32,
            scale_h: g.scale_h,
            scale_w: g.scale_w,
            r0: 0,
            r1: 0,
        })
    }
}

/// The most outputs along one axis that a backward kernel visits for one input: those whose
/// source index is the input (nearest), or the input or the one before (bilinear).
fn outputs_per_input(out: usize, input: usize, scale: f32, bilinear: bool, corners: bool) -> usize {
    let mut count = vec![0usize; input + 1];
    for o in 0..out {
        let i = if bilinear {
            bilinear_src(o, input, scale, corners).0
        } else {
            nearest_src(o, input, scale)
        };
        count[i.min(input)] += 1;
    }
    let most = if bilinear {
        count.windows(2).map(|w| w[0] + w[1]).max().unwrap_or(0)
    } else {
        count.iter().copied().max().unwrap_or(0)
    };
    // one more for the kernel's float rounding of the source index
    (most + 1).min(out)
}

impl GpuBackend {
    /// `(n, c, h, w) -> (n, c, oh, ow)` for `nearest_fwd` or `bilinear_fwd`.
    pub(super) fn upsample_fwd(
        &self,
        entry: &'static str,
        x: &GpuBuffer,
        g: &UpsampleGeom,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.oh * g.ow;
        let p = UpsampleParams::new(g, total)?;
        self.map_kernel(Shader::Upsample, entry, &p, &[x], total)
    }

    /// `grad (n, c, oh, ow) -> (n, c, h, w)` for `nearest_bwd` or `bilinear_bwd`.
    pub(super) fn upsample_bwd(
        &self,
        entry: &'static str,
        grad: &GpuBuffer,
        g: &UpsampleGeom,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let bilinear = entry == "bilinear_bwd";
        let rows = outputs_per_input(g.oh, g.h, g.scale_h, bilinear, g.align_corners);
        let cols = outputs_per_input(g.ow, g.w, g.scale_w, bilinear, g.align_corners);
        let fixed = loops::search_trips(g.oh, g.ow);
        let passes = loops::row_passes("upsample", rows, cols, fixed, self.cap())?;
        let set = |p: &mut UpsampleParams, (r0, r1)| {
            p.r0 = r0;
            p.r1 = r1;
        };
        let p = UpsampleParams::new(g, total)?;
        self.map_passes(Shader::Upsample, entry, p, set, &[grad], total, &passes)
    }
}
