//! Upsampling kernels; the backward gathers run in passes within the loop budget.

use bytemuck::Zeroable;

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
        let mut p = UpsampleParams::zeroed();
        let sizes = [
            (&mut p.n, g.n),
            (&mut p.c, g.c),
            (&mut p.h, g.h),
            (&mut p.w, g.w),
            (&mut p.oh, g.oh),
            (&mut p.ow, g.ow),
        ];
        for (field, v) in sizes {
            *field = fit(v, "upsample")?;
        }
        p.total = u32_of(total, "upsample")?;
        p.align_corners = g.align_corners as u32;
        p.scale_h = g.scale_h;
        p.scale_w = g.scale_w;
        Ok(p)
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
    /// `nearest_fwd`/`bilinear_fwd`: `(n, c, h, w) -> (n, c, oh, ow)`, one pass;
    /// `nearest_bwd`/`bilinear_bwd`: `grad (n, c, oh, ow) -> (n, c, h, w)`, in passes over the
    /// outputs that read each input.
    pub(super) fn upsample(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        g: &UpsampleGeom,
    ) -> Result<GpuBuffer> {
        if entry.ends_with("_fwd") {
            let total = g.n * g.c * g.oh * g.ow;
            let p = UpsampleParams::new(g, total)?;
            return self.map_kernel(Shader::Upsample, entry, &p, &[src], total);
        }
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
        self.map_passes(Shader::Upsample, entry, p, set, &[src], total, &passes)
    }
}
