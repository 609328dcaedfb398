//! Reductions of one axis, in as many passes as the loop budget needs.

use super::kernels::{Shader, WG};
use super::launch::u32_of;
use super::uniforms::uniform;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::ReduceOp;
use crate::Result;

uniform! {
    ReduceParams as "Params" {
        outer: u32,
        len: u32,
        inner: u32,
        op: u32,
        /// sum_wide: axis elements per workgroup, and workgroups per output
        chunk: u32,
        chunks: u32,
        _pad: [u32; 2],
    }
}

/// Axis length from which a reduction uses whole workgroups (shorter axes: one thread each).
const WIDE_REDUCE_MIN: usize = 128;

impl GpuBackend {
    /// `(outer, len, inner) -> (outer, inner)`. Long axes go in chunks of a fixed size (one
    /// workgroup each) into `(outer, chunks, inner)`, which is reduced again, so no invocation
    /// loops past the budget and the order depends on the shape alone.
    pub(super) fn reduce(
        &self,
        x: &GpuBuffer,
        (outer, len, inner): (usize, usize, usize),
        op: ReduceOp,
    ) -> Result<GpuBuffer> {
        // (MIN_LOOP_CAP > WIDE_REDUCE_MIN: the narrow loop always fits.)
        let mut p = ReduceParams {
            outer: u32_of(outer, "sum")?,
            len: u32_of(len, "sum")?,
            inner: u32_of(inner, "sum")?,
            op: op.code(),
            chunk: 0,
            chunks: 1,
            _pad: [0; 2],
        };
        if len < WIDE_REDUCE_MIN {
            return self.map_kernel(Shader::Reduce, "sum_narrow", &p, &[x], outer * inner);
        }
        let chunk = WG * loops::reduce_stride_trips(self.cap());
        let chunks = len.div_ceil(chunk);
        p.chunk = u32_of(chunk, "sum")?;
        p.chunks = u32_of(chunks, "sum")?;
        let groups = outer * chunks * inner;
        let out = self.ctx.alloc(groups, "sum")?;
        let (shader, entry) = if self.ctx.subgroups {
            (Shader::ReduceSubgroups, "sum_wide_subgroups")
        } else {
            (Shader::Reduce, "sum_wide")
        };
        self.ctx.dispatch(
            shader,
            entry,
            bytemuck::bytes_of(&p),
            &[(1, x), (2, &out)],
            &[2],
            self.groups(groups)?,
        )?;
        if chunks == 1 {
            return Ok(out);
        }
        // (outer, chunks, inner)
        self.reduce(&out, (outer, chunks, inner), op)
    }
}
