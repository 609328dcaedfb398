//! The upsampling family (shaders/upsample.wgsl): nearest and bilinear, forward in one pass,
//! backward as gathers (found by binary search) in passes within the loop budget; by runs of
//! planes past one binding.

use bytemuck::Zeroable;

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::{fit_each, row_passes, u32_of};
use super::runtime::loops;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer};
use super::split::{by_items, Ctx, Rows};
use crate::backend::{bilinear_src, nearest_src, UpsampleGeom};
use crate::Result;

kernels! { UPSAMPLE_WGSL = ("upsample", include_str!("../../shaders/upsample.wgsl"), Buffer::SRC_DST): UpsampleParams;
    NEAREST_FWD = ("nearest_fwd", "upsample_nearest", Bind::MAP);
    NEAREST_BWD = ("nearest_bwd", "upsample_nearest_backward", Bind::MAP);
    BILINEAR_FWD = ("bilinear_fwd", "upsample_bilinear", Bind::MAP);
    BILINEAR_BWD = ("bilinear_bwd", "upsample_bilinear_backward", Bind::MAP);
}

uniform! {
    UpsampleParams as "Params" {
        n: u32, c: u32, h: u32, w: u32, oh: u32, ow: u32,
        total: u32,
        align_corners: u32,
        scale_h: f32, scale_w: f32,
        /// backward passes: this pass's rows of the outer loop
        r0: u32, r1: u32,
    }
}

row_passes!(UpsampleParams);

/// Interpolation modes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Nearest,
    Bilinear,
}

impl UpsampleParams {
    fn new(g: &UpsampleGeom, total: usize) -> Result<Self> {
        let mut p = UpsampleParams::zeroed();
        [p.n, p.c, p.h, p.w, p.oh, p.ow] = fit_each([g.n, g.c, g.h, g.w, g.oh, g.ow], "upsample")?;
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

/// `(n, c, h, w) -> (n, c, oh, ow)`, one pass, by runs of planes.
pub(crate) fn forward(ctx: &Ctx, mode: Mode, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
    let k = match mode {
        Mode::Nearest => &NEAREST_FWD,
        Mode::Bilinear => &BILINEAR_FWD,
    };
    let (x_plane, y_plane) = (g.h * g.w, g.oh * g.ow);
    by_items(ctx, k.info.op, g.n * g.c, &[Rows::per(x, x_plane)], y_plane, |p, n| {
        let total = n * y_plane;
        let params = UpsampleParams::new(&UpsampleGeom { n, c: 1, ..*g }, total)?;
        ctx.map(k, &params, p, total)
    })
}

/// `grad (n, c, oh, ow) -> (n, c, h, w)`, in passes over the outputs that read each input, by
/// runs of planes.
pub(crate) fn backward(
    ctx: &Ctx, mode: Mode, grad: &GpuBuffer, g: &UpsampleGeom,
) -> Result<GpuBuffer> {
    let k = match mode {
        Mode::Nearest => &NEAREST_BWD,
        Mode::Bilinear => &BILINEAR_BWD,
    };
    let bilinear = mode == Mode::Bilinear;
    let rows = outputs_per_input(g.oh, g.h, g.scale_h, bilinear, g.align_corners);
    let cols = outputs_per_input(g.ow, g.w, g.scale_w, bilinear, g.align_corners);
    let fixed = loops::search_trips(g.oh, g.ow);
    let passes = loops::row_passes("upsample", rows, cols, fixed, ctx.cap())?;
    let (x_plane, y_plane) = (g.h * g.w, g.oh * g.ow);
    by_items(ctx, k.info.op, g.n * g.c, &[Rows::per(grad, y_plane)], x_plane, |p, n| {
        let total = n * x_plane;
        let params = UpsampleParams::new(&UpsampleGeom { n, c: 1, ..*g }, total)?;
        ctx.map_passes(k, params, p, total, &passes)
    })
}
