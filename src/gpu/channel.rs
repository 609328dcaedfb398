//! Batch norm's per-channel kernels: the dot product in passes over each channel's elements
//! within the loop budget, and the affine combination.

use bytemuck::Zeroable;

use super::kernels::{Shader, WG};
use super::launch::u32_of;
use super::uniforms::uniform;
use super::{loops, GpuBackend, GpuBuffer};
use crate::Result;

uniform! {
    ChannelParams as "ChannelParams" {
        n: u32,
        c: u32,
        hw: u32,
        total: u32,
        /// bit 0: the second operand is bound
        flags: u32,
        /// channel_dot: this pass's element rows (WG elements each)
        r0: u32,
        r1: u32,
        _pad: u32,
    }
}

/// Storage buffers channel_combine binds; adapters with fewer use the composed default.
pub(super) const COMBINE_BUFFERS: u32 = 6;

impl ChannelParams {
    fn new((n, c, hw): (usize, usize, usize), second: bool) -> Result<Self> {
        const OP: &str = "batch_norm2d";
        let mut p = ChannelParams::zeroed();
        p.n = u32_of(n, OP)?;
        p.c = u32_of(c, OP)?;
        p.hw = u32_of(hw, OP)?;
        p.total = u32_of(n * c * hw, OP)?;
        p.flags = second as u32;
        Ok(p)
    }
}

impl GpuBackend {
    /// `(c)`: per channel, the sum of `(x - mean) * (g or x - mean)` over (n, hw).
    pub(super) fn channel_dot_kernel(
        &self,
        x: &GpuBuffer,
        mean: &GpuBuffer,
        g: Option<&GpuBuffer>,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let mut p = ChannelParams::new(dims, g.is_some())?;
        let rows = (dims.0 * dims.2).div_ceil(WG);
        // the tree's 8 levels run outside the element loop
        let passes = loops::row_passes("batch_norm2d", rows, 0, 16, self.cap())?;
        let out = self.ctx.alloc(dims.1, "batch_norm2d")?;
        let bindings = [(1, x), (2, mean), (3, g.unwrap_or(x)), (6, &out)];
        for &(r0, r1) in &passes {
            (p.r0, p.r1) = (r0, r1);
            self.ctx.dispatch(
                Shader::Channel,
                "channel_dot",
                bytemuck::bytes_of(&p),
                &bindings,
                &[6],
                self.groups(dims.1)?,
            )?;
        }
        Ok(out)
    }

    /// `a * u + b * v + k` per channel (without `(v, b)`: `a * u + k`).
    pub(super) fn channel_combine_kernel(
        &self,
        u: &GpuBuffer,
        a: &GpuBuffer,
        vb: Option<(&GpuBuffer, &GpuBuffer)>,
        k: &GpuBuffer,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let p = ChannelParams::new(dims, vb.is_some())?;
        let (v, b) = vb.unwrap_or((u, a));
        self.map_kernel(
            Shader::Channel,
            "channel_combine",
            &p,
            &[u, a, v, b, k],
            dims.0 * dims.1 * dims.2,
        )
    }
}
