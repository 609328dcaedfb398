//! The uniform of every sliding-window kernel (convolution and pooling): one struct for one
//! geometry (`shape::WindowGeom`); its WGSL twin is generated from this declaration. The
//! window families (convolution, unfold, depthwise, pool) and the GEMM's implicit entry points
//! read it.

use bytemuck::Zeroable;

use super::runtime::launch::{fit, u32_of, RowPasses};
use super::runtime::uniforms::{uniform, WgslType};
use crate::backend::AvgPoolOpts;
use crate::shape::WindowGeom;
use crate::Result;

uniform! {
    WindowParams as "WindowParams" {
        n: u32,
        c: u32,
        h: u32,
        w: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        pad_top: u32,
        pad_left: u32,
        dh: u32,
        dw: u32,
        oh: u32,
        ow: u32,
        total: u32,
        /// depthwise: filters per input channel
        mult: u32,
        /// avg pooling: bit 0 count_include_pad, bit 1 divisor_override is set
        flags: u32,
        divisor: u32,
        /// this pass's rows of the outer window loop, and the row count (`loops::row_passes`)
        r0: u32,
        r1: u32,
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
        let fields = [
            (&mut p.n, g.n),
            (&mut p.c, g.c),
            (&mut p.h, g.h),
            (&mut p.w, g.w),
            (&mut p.kh, g.kh),
            (&mut p.kw, g.kw),
            (&mut p.sh, g.sh),
            (&mut p.sw, g.sw),
            (&mut p.pad_top, g.pad_top),
            (&mut p.pad_left, g.pad_left),
            (&mut p.dh, g.dh),
            (&mut p.dw, g.dw),
            (&mut p.oh, g.oh),
            (&mut p.ow, g.ow),
        ];
        for (field, v) in fields {
            *field = fit(v, op)?;
        }
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
        (n, c, h, w): (usize, usize, usize, usize),
        out: (usize, usize),
        total: usize,
        op: &'static str,
    ) -> Result<Self> {
        // window bounds are computed as o * h and (i + 1) * oh in u32
        fit(
            (h + 1)
                .saturating_mul(out.0 + 1)
                .max((w + 1).saturating_mul(out.1 + 1)),
            op,
        )?;
        let mut p = WindowParams::zeroed();
        for (field, v) in [
            (&mut p.n, n),
            (&mut p.c, c),
            (&mut p.h, h),
            (&mut p.w, w),
            (&mut p.oh, out.0),
            (&mut p.ow, out.1),
        ] {
            *field = fit(v, op)?;
        }
        p.total = u32_of(total, op)?;
        Ok(p)
    }
}

impl RowPasses for WindowParams {
    fn set_rows(&mut self, (r0, r1): (u32, u32)) {
        self.r0 = r0;
        self.r1 = r1;
    }
}

/// Nested in the GEMM's uniform (the convolution of its implicit entry points).
impl WgslType for WindowParams {
    const WGSL: &'static str = "WindowParams";
}
