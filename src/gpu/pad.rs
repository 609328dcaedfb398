//! The padding family (shaders/pad.wgsl): constant, reflect, replicate and circular padding,
//! forward as a gather, backward as a gather in passes over each input's reader rows within
//! the loop budget; by runs of planes past one binding.

use bytemuck::Zeroable;

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::{fit, fit_each, row_passes, u32_of};
use super::runtime::loops;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer};
use super::split::{by_items, Ctx, Rows};
use crate::backend::{PadGeom, PadKind};
use crate::Result;

kernels! { PAD_WGSL = ("pad", include_str!("../../shaders/pad.wgsl"), Buffer::SRC_DST): PadParams;
    PAD_FWD = ("pad_fwd", "pad", Bind::MAP);
    PAD_BWD = ("pad_bwd", "pad", Bind::MAP);
}

uniform! {
    PadParams as "PadParams" {
        planes: u32, h: u32, w: u32, oh: u32, ow: u32,
        top: i32, left: i32,
        /// `PadKind` as its code
        kind: u32,
        value: f32,
        total: u32,
        /// backward passes: this pass's reader rows
        r0: u32,
        r1: u32,
    }
}

row_passes!(PadParams);

/// A signed width for the shaders' i32 arithmetic.
fn signed(v: isize) -> Result<i32> {
    let m = fit(v.unsigned_abs(), "pad")?;
    Ok(if v < 0 { -(m as i32) } else { m as i32 })
}

impl PadParams {
    fn new(g: &PadGeom, total: usize) -> Result<Self> {
        let mut p = PadParams::zeroed();
        [p.planes, p.h, p.w, p.oh, p.ow] = fit_each([g.planes, g.h, g.w, g.oh, g.ow], "pad")?;
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

/// `(planes, h, w) -> (planes, oh, ow)`, one pass, by runs of planes.
pub(crate) fn forward(ctx: &Ctx, x: &GpuBuffer, g: &PadGeom) -> Result<GpuBuffer> {
    let ins = [Rows::per(x, g.h * g.w)];
    by_items(ctx, "pad", g.planes, &ins, g.oh * g.ow, |p, planes| {
        let total = planes * g.oh * g.ow;
        let params = PadParams::new(&PadGeom { planes, ..*g }, total)?;
        ctx.map(&PAD_FWD, &params, p, total)
    })
}

/// `grad (planes, oh, ow) -> (planes, h, w)`, each input summing its readers in raster order,
/// in passes over its reader rows, by runs of planes.
pub(crate) fn backward(ctx: &Ctx, grad: &GpuBuffer, g: &PadGeom) -> Result<GpuBuffer> {
    let rows = readers_per_input(g.h, g.oh, g.kind);
    // each reader row runs the three column segments and their columns
    let inner = readers_per_input(g.w, g.ow, g.kind) + 3;
    let passes = loops::row_passes("pad", rows, inner, 3, ctx.cap())?;
    let ins = [Rows::per(grad, g.oh * g.ow)];
    by_items(ctx, "pad_backward", g.planes, &ins, g.h * g.w, |p, planes| {
        let total = planes * g.h * g.w;
        let params = PadParams::new(&PadGeom { planes, ..*g }, total)?;
        ctx.map_passes(&PAD_BWD, params, p, total, &passes)
    })
}
