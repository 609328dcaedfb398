//! Elementwise kernels (unary, broadcast binary, fill) and the strided copy.

use super::kernels::Shader;
use super::launch::u32_of;
use super::uniforms::uniform;
use super::{GpuBackend, GpuBuffer};
use crate::backend::{BinaryOp, BroadcastSpec, StridedSpec, UnaryOp, MAX_RANK};
use crate::{Error, Result};

uniform! {
    UnaryParams as "Params" {
        n: u32,
        op: u32,
        alpha: f32,
        _pad: u32,
    }
}

uniform! {
    BinaryParams as "Params" {
        n: u32,
        op: u32,
        alpha: f32,
        rank: u32,
        plain: u32,
        _pad: [u32; 3],
        dims: [[u32; 4]; 2],
        a_strides: [[u32; 4]; 2],
        b_strides: [[u32; 4]; 2],
    }
}

uniform! {
    CopyParams as "Params" {
        n: u32,
        rank: u32,
        offset: u32,
        _pad: u32,
        dims: [[u32; 4]; 2],
        strides: [[u32; 4]; 2],
    }
}

fn check_rank(op: &'static str, rank: usize) -> Result<()> {
    if rank > MAX_RANK {
        return Err(Error::Invalid {
            op,
            msg: format!("rank {rank} exceeds {MAX_RANK}"),
        });
    }
    Ok(())
}

fn pack_dims(v: &[usize]) -> Result<[[u32; 4]; 2]> {
    let mut out = [[0u32; 4]; 2];
    for (i, &d) in v.iter().enumerate() {
        out[i / 4][i % 4] = u32_of(d, "strided index")?;
    }
    Ok(out)
}

/// Signed strides as two's-complement u32: the shader's wrapping u32 arithmetic then walks
/// backwards for negative ones.
fn pack_signed(v: &[isize]) -> Result<[[u32; 4]; 2]> {
    let mut out = [[0u32; 4]; 2];
    for (i, &d) in v.iter().enumerate() {
        let s = i32::try_from(d).map_err(|_| Error::Invalid {
            op: "strided index",
            msg: format!("stride {d} does not fit the GPU's 32-bit indices"),
        })?;
        out[i / 4][i % 4] = s as u32;
    }
    Ok(out)
}

impl GpuBackend {
    /// `out[i] = op(x[i])`, `n` elements.
    pub(super) fn unary_op(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        let (code, alpha) = op.code();
        let p = UnaryParams {
            n: u32_of(n, "unary")?,
            op: code,
            alpha,
            _pad: 0,
        };
        self.map_kernel(Shader::Unary, "unary", &p, &[x], n)
    }

    /// `out[idx] = op(a[idx . a_strides], b[idx . b_strides])` over `spec.out`.
    pub(super) fn binary_op(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<GpuBuffer> {
        check_rank("binary", spec.out.len())?;
        let (code, alpha) = op.code();
        let n = spec.len();
        let p = BinaryParams {
            n: u32_of(n, "binary")?,
            op: code,
            alpha,
            rank: spec.out.len() as u32,
            plain: spec.is_plain() as u32,
            _pad: [0; 3],
            dims: pack_dims(&spec.out)?,
            a_strides: pack_dims(&spec.a_strides)?,
            b_strides: pack_dims(&spec.b_strides)?,
        };
        self.map_kernel(Shader::Binary, "binary", &p, &[a, b], n)
    }

    /// Contiguous copy of a strided view.
    pub(super) fn copy(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        check_rank("copy", spec.out.len())?;
        let n: usize = spec.out.iter().product();
        let p = CopyParams {
            n: u32_of(n, "copy")?,
            rank: spec.out.len() as u32,
            offset: u32_of(spec.offset, "copy")?,
            _pad: 0,
            dims: pack_dims(&spec.out)?,
            strides: pack_signed(&spec.strides)?,
        };
        self.map_kernel(Shader::Copy, "copy_strided", &p, &[x], n)
    }

    /// A buffer of `n` copies of `value` (in parts past one binding).
    pub fn full(&self, n: usize, value: f32) -> Result<GpuBuffer> {
        let out = self.ctx.alloc_any(n, "full")?;
        for (part, _) in out.pieces() {
            self.fill(part, value)?;
        }
        Ok(out)
    }

    fn fill(&self, out: &GpuBuffer, value: f32) -> Result<()> {
        let n = out.len;
        let p = UnaryParams {
            n: u32_of(n, "full")?,
            op: 0,
            alpha: value,
            _pad: 0,
        };
        self.ctx.dispatch(
            Shader::Unary,
            "fill",
            bytemuck::bytes_of(&p),
            &[(2, out)],
            &[2],
            self.threads(n)?,
        )
    }
}
