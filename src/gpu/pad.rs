//! Padding kernels; the backward gather runs in passes within the loop budget.

use bytemuck::Zeroable;

use super::kernels::Shader;
use super::launch::{fit, u32_of};
use super::uniforms::uniform;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::{PadGeom, PadKind};
use crate::Result;

uniform! {
    PadParams as "PadParams" {
        planes: u32,
        h: u32,
        w: u32,
        oh: u32,
        ow: u32,
        top: i32,
        left: i32,
        /// `PadKind` as its code
        kind: u32,
        value: f32,
        total: u32,
        /// backward passes: this pass's reader rows
        r0: u32,
        r1: u32,
    }
}

/// A signed width for the shaders' i32 arithmetic.
fn signed(v: isize) -> Result<i32> {
    let m = fit(v.unsigned_abs(), "pad")?;
    Ok(if v < 0 { -(m as i32) } else { m as i32 })
}

impl PadParams {
    fn new(g: &PadGeom, total: usize) -> Result<Self> {
        let mut p = PadParams::zeroed();
        for (field, v) in [
            (&mut p.planes, g.planes),
            (&mut p.h, g.h),
            (&mut p.w, g.w),
            (&mut p.oh, g.oh),
            (&mut p.ow, g.ow),
        ] {
            *field = fit(v, "pad")?;
        }
        // sums like `i + top + 1` stay in i32
        fit(g.h + g.top.unsigned_abs() + 1, "pad")?;
        fit(g.w + g.left.unsigned_abs() + 1, "pad")?;
        p.top = signed(g.top)?;
        p.left = signed(g.left)?;
        p.kind = g.kind as u32;
        p.value = g.value;
        p.total = u32_of(total, "pad")?;
        Ok(p)
    }
}

/// The most outputs reading one input along an axis of `n` (from `out` outputs).
fn readers_per_input(n: usize, out: usize, kind: PadKind) -> usize {
    let most = match kind {
        PadKind::Constant => 1,
        PadKind::Reflect | PadKind::Circular => 3,
        // an edge input is read by its own output and every padded one beside it
        PadKind::Replicate => out + 1 - n.min(out),
    };
    most.min(out)
}

impl GpuBackend {
    /// `pad_fwd`: `(planes, h, w) -> (planes, oh, ow)`, one pass; `pad_bwd`:
    /// `grad (planes, oh, ow) -> (planes, h, w)`, in passes over each input's reader rows.
    pub(super) fn pad(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        g: &PadGeom,
    ) -> Result<GpuBuffer> {
        if entry == "pad_fwd" {
            let total = g.planes * g.oh * g.ow;
            let p = PadParams::new(g, total)?;
            return self.map_kernel(Shader::Pad, entry, &p, &[src], total);
        }
        let total = g.planes * g.h * g.w;
        let rows = readers_per_input(g.h, g.oh, g.kind);
        // each reader row runs the three column segments and their columns
        let inner = readers_per_input(g.w, g.ow, g.kind) + 3;
        let passes = loops::row_passes("pad", rows, inner, 3, self.cap())?;
        let set = |p: &mut PadParams, (r0, r1)| {
            p.r0 = r0;
            p.r1 = r1;
        };
        let p = PadParams::new(g, total)?;
        self.map_passes(Shader::Pad, entry, p, set, &[src], total, &passes)
    }
}
