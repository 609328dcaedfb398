//! What every dispatch needs: grids within the per-dimension limit, index-range checks of the
//! values the shaders see, and the one-thread-per-output launchers.

use bytemuck::Pod;

use super::kernels::{Shader, WG};
use super::{GpuBackend, GpuBuffer};
use crate::{Error, Result};

/// Workgroups for `n_groups` along x, spilling into y and then z past the per-dimension limit
/// (kernels flatten the workgroup id and skip the surplus).
pub(super) fn grid(n_groups: usize, max: u32) -> Result<[u32; 3]> {
    let max = max as usize;
    let x = n_groups.min(max);
    let rest = n_groups.div_ceil(max).max(1);
    let y = rest.min(max);
    let z = rest.div_ceil(max).max(1);
    if z > max {
        return Err(Error::Gpu(format!(
            "{n_groups} workgroups exceed a {max}^3 grid"
        )));
    }
    Ok([x as u32, y as u32, z as u32])
}

/// `v` as a u32 for the shaders, or an error naming `what`.
pub(super) fn u32_of(v: usize, what: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid {
        op: what,
        msg: format!("{v} does not fit the GPU's 32-bit indices"),
    })
}

/// A geometry value for the shaders, which index with i32 arithmetic: at most `i32::MAX`.
pub(super) fn fit(v: usize, what: &'static str) -> Result<u32> {
    if v > i32::MAX as usize {
        return Err(Error::Invalid {
            op: what,
            msg: format!("{v} exceeds the GPU kernels' 31-bit index range"),
        });
    }
    Ok(v as u32)
}

impl GpuBackend {
    pub(super) fn cap(&self) -> usize {
        self.ctx.limits.loop_cap
    }

    /// Workgroups for one thread per element of a `total`-element output.
    pub(super) fn threads(&self, total: usize) -> Result<[u32; 3]> {
        grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )
    }

    /// Workgroups for one workgroup per output.
    pub(super) fn groups(&self, total: usize) -> Result<[u32; 3]> {
        grid(total, self.ctx.limits.max_workgroups_per_dimension)
    }

    /// One thread per element of a `total`-element output: `entry(src..) -> dst`.
    pub(super) fn map_kernel<P: Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &P,
        inputs: &[&GpuBuffer],
        total: usize,
    ) -> Result<GpuBuffer> {
        self.map_passes(shader, entry, *params, |_, _| {}, inputs, total, &[(0, 0)])
    }

    /// [`GpuBackend::map_kernel`] in passes over the rows of the kernel's outer loop (`passes`
    /// from `loops::row_passes`), each dispatch resuming from the output of the one before;
    /// `set_rows` writes a pass's `(r0, r1)` into the params.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn map_passes<P: Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        params: P,
        set_rows: impl Fn(&mut P, (u32, u32)),
        inputs: &[&GpuBuffer],
        total: usize,
        passes: &[(u32, u32)],
    ) -> Result<GpuBuffer> {
        let out = self.ctx.alloc(total, entry)?;
        let mut bindings: Vec<(u32, &GpuBuffer)> = inputs
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, *b))
            .collect();
        let out_binding = inputs.len() as u32 + 1;
        bindings.push((out_binding, &out));
        let written = [out_binding];
        self.dispatch_passes(
            shader, entry, params, set_rows, &bindings, &written, total, passes,
        )?;
        Ok(out)
    }

    /// One thread per element of a `total`-element output, one dispatch per pass of `passes`
    /// (`set_rows` writes its rows into `params`); every pass after the first resumes from the
    /// outputs in `written`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch_passes<P: Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        mut params: P,
        set_rows: impl Fn(&mut P, (u32, u32)),
        bindings: &[(u32, &GpuBuffer)],
        written: &[u32],
        total: usize,
        passes: &[(u32, u32)],
    ) -> Result<()> {
        let groups = self.threads(total)?;
        for &rows in passes {
            set_rows(&mut params, rows);
            let bytes = bytemuck::bytes_of(&params);
            self.ctx
                .dispatch(shader, entry, bytes, bindings, written, groups)?;
        }
        Ok(())
    }
}
