//! The uniform of every sliding-window kernel (convolution and pooling): one struct for one
//! geometry (`shape::WindowGeom`); its WGSL twin is generated from this declaration. The
//! window families (convolution, unfold, depthwise, pool) and the GEMM's implicit entry points
//! read it.

use bytemuck::Zeroable;

use super::runtime::launch::{fit, fit_each, row_passes, u32_of};
use super::runtime::uniforms::{uniform, WgslType};
use crate::backend::AvgPoolOpts;
use crate::shape::WindowGeom;
use crate::Result;

uniform! {
    WindowParams as "WindowParams" {
        n: u32, c: u32, h: u32, w: u32,
        kh: u32, kw: u32,
        sh: u32, sw: u32,
        pad_top: u32, pad_left: u32,
        dh: u32, dw: u32,
        oh: u32, ow: u32,
        total: u32,
        /// depthwise: filters per input channel
        mult: u32,
        /// avg pooling: bit 0 count_include_pad, bit 1 divisor_override is set
        flags: u32,
        divisor: u32,
        /// this pass's rows of the outer window loop, and the row count (`loops::row_passes`)
        r0: u32, r1: u32,
        r_end: u32,
        _pad: [u32; 3],
    }
}

/// Bound on the largest index a window kernel computes (`o * stride + k * dilation` per axis).
fn furthest_tap(g: &WindowGeom) -> usize {
    let axis = |o: usize, s: usize, k: usize, d: usize| {
        o.saturating_mul(s).saturating_add(k.saturating_mul(d))
    };
    axis(g.oh, g.sh, g.kh, g.dh).max(axis(g.ow, g.sw, g.kw, g.dw))
}

impl WindowParams {
    /// The geometry of `g` for a kernel with `total` invocations; `op` names the public op in
    /// errors.
    pub(crate) fn new(g: &WindowGeom, total: usize, op: &'static str) -> Result<Self> {
        // the furthest tap, oh * sh + kh * dh, must stay in range too
        fit(furthest_tap(g), op)?;
        let mut p = WindowParams::zeroed();
        let sizes = [g.n, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.dh, g.dw];
        [p.n, p.c, p.h, p.w, p.kh, p.kw, p.sh, p.sw, p.pad_top, p.pad_left, p.dh, p.dw] =
            fit_each(sizes, op)?;
        [p.oh, p.ow] = fit_each([g.oh, g.ow], op)?;
        p.total = u32_of(total, op)?;
        p.mult = 1;
        Ok(p)
    }

    /// Average pooling's divisor options.
    pub(crate) fn with_avg(mut self, o: AvgPoolOpts) -> Result<Self> {
        self.flags = o.count_include_pad as u32 | (o.divisor_override.is_some() as u32) << 1;
        self.divisor = fit(o.divisor_override.unwrap_or(0), "avg_pool2d")?;
        Ok(self)
    }

    /// Adaptive pooling: only the sizes matter; `op` names the public op in errors.
    pub(crate) fn adaptive(
        (n, c, h, w): (usize, usize, usize, usize), out: (usize, usize), total: usize,
        op: &'static str,
    ) -> Result<Self> {
        // window bounds are computed as o * h and (i + 1) * oh in u32
        fit((h + 1).saturating_mul(out.0 + 1).max((w + 1).saturating_mul(out.1 + 1)), op)?;
        let mut p = WindowParams::zeroed();
        [p.n, p.c, p.h, p.w, p.oh, p.ow] = fit_each([n, c, h, w, out.0, out.1], op)?;
        p.total = u32_of(total, op)?;
        Ok(p)
    }
}

row_passes!(WindowParams);

/// Nested in the GEMM's uniform (the convolution of its implicit entry points).
impl WgslType for WindowParams {
    const WGSL: &'static str = "WindowParams";
}
