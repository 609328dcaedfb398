//! The elementwise family: unary maps and fills (shaders/unary.wgsl), broadcasting binary ops
//! (binary.wgsl) and the strided copy (copy.wgsl), each split past one binding by flat runs or
//! by its strided view.

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::u32_of;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer};
use super::split::strided::{split_strided, View};
use super::split::{by_items, fits, Ctx, Rows};
use crate::backend::{BinaryOp, BroadcastSpec, StridedSpec, UnaryOp, MAX_RANK};
use crate::{Error, Result};

kernels! { UNARY_WGSL = ("unary", include_str!("../../shaders/unary.wgsl"), XY): UnaryParams;
    UNARY = ("unary", "unary", Bind::MAP);
    FILL = ("fill", "full", &[Bind::Out(2)]);
}

kernels! { BINARY_WGSL = ("binary", include_str!("../../shaders/binary.wgsl"), BINARY_BUFFERS): BinaryParams;
    BINARY = ("binary", "binary", &[Bind::In(1), Bind::In(2), Bind::Out(3)]);
    /// Same-shape operands four elements a thread, as vec4s.
    BINARY4 = ("binary4", "binary", &[Bind::In(4), Bind::In(5), Bind::Out(6)]);
}

/// The operands and result, then the same as vec4s (for `binary4`).
const BINARY_BUFFERS: &[Buffer] = &[
    Buffer::read("a"),
    Buffer::read("b"),
    Buffer::write("y"),
    Buffer::read("a4").of("vec4<f32>"),
    Buffer::read("b4").of("vec4<f32>"),
    Buffer::write("y4").of("vec4<f32>"),
];

kernels! { COPY_WGSL = ("copy", include_str!("../../shaders/copy.wgsl"), XY): CopyParams;
    COPY = ("copy_strided", "copy", Bind::MAP);
}

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

const XY: &[Buffer] = &[Buffer::read("x"), Buffer::write("y")];

fn check_rank(op: &'static str, rank: usize) -> Result<()> {
    if rank > MAX_RANK {
        return Err(Error::Invalid { op, msg: format!("rank {rank} exceeds {MAX_RANK}") });
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
        let s = i32::try_from(d).map_err(|_| Error::TooLarge {
            op: "strided index",
            msg: format!("stride {d} does not fit the GPU's 32-bit indices"),
        })?;
        out[i / 4][i % 4] = s as u32;
    }
    Ok(out)
}

/// `out[i] = op(x[i])`, `n` elements, in flat runs past one binding.
pub(crate) fn unary(ctx: &Ctx, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
    by_items(ctx, "unary", n, &[Rows::per(x, 1)], 1, |p, n| {
        let (code, alpha) = op.code();
        let params = UnaryParams { n: u32_of(n, "unary")?, op: code, alpha, _pad: 0 };
        ctx.map(&UNARY, &params, p, n)
    })
}

/// `out[idx] = op(a[idx . a_strides], b[idx . b_strides])` over `spec.out`.
pub(crate) fn binary(
    ctx: &Ctx, a: &GpuBuffer, b: &GpuBuffer, op: BinaryOp, spec: &BroadcastSpec,
) -> Result<GpuBuffer> {
    if fits(ctx, &[a, b], &[spec.len()]) {
        return binary_kernel(ctx, a, b, op, spec);
    }
    let view = |buf, st: &[usize]| View {
        buf,
        strides: st.iter().map(|&s| s as isize).collect(),
        offset: 0,
    };
    let views = [view(a, &spec.a_strides), view(b, &spec.b_strides)];
    split_strided(ctx, "binary", &spec.out, &views, |p, (out, st)| {
        // strides are not negative here, so every piece starts at its copy's first element
        let piece = BroadcastSpec {
            out: out.to_vec(),
            a_strides: st[0].0.iter().map(|&s| s as usize).collect(),
            b_strides: st[1].0.iter().map(|&s| s as usize).collect(),
        };
        binary_kernel(ctx, p[0], p[1], op, &piece)
    })
}

fn binary_kernel(
    ctx: &Ctx, a: &GpuBuffer, b: &GpuBuffer, op: BinaryOp, spec: &BroadcastSpec,
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
    // whole vec4s: a quarter of the threads, each loading once per operand
    if p.plain == 1 && [n, a.len, b.len].iter().all(|l| l.is_multiple_of(4)) {
        let out = ctx.alloc(n, "binary")?;
        ctx.launch(&BINARY4, &p, &[a, b, &out], ctx.threads("binary", n / 4)?)?;
        return Ok(out);
    }
    ctx.map(&BINARY, &p, &[a, b], n)
}

/// Contiguous copy of a strided view.
pub(crate) fn copy(ctx: &Ctx, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
    let len = spec.out.iter().product();
    if fits(ctx, &[x], &[len]) {
        return copy_kernel(ctx, x, spec);
    }
    let views = [View { buf: x, strides: spec.strides.clone(), offset: spec.offset }];
    split_strided(ctx, "copy", &spec.out, &views, |p, (out, st)| {
        let piece = StridedSpec { out: out.to_vec(), strides: st[0].0.clone(), offset: st[0].1 };
        copy_kernel(ctx, p[0], &piece)
    })
}

fn copy_kernel(ctx: &Ctx, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
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
    ctx.map(&COPY, &p, &[x], n)
}

/// A buffer of `n` copies of `value` (in parts past one binding).
pub(crate) fn full(ctx: &Ctx, n: usize, value: f32) -> Result<GpuBuffer> {
    let out = ctx.alloc_any(n, "full")?;
    for (part, _) in out.pieces() {
        let p = UnaryParams { n: u32_of(part.len, "full")?, op: 0, alpha: value, _pad: 0 };
        ctx.launch(&FILL, &p, &[part], ctx.threads("full", part.len)?)?;
    }
    Ok(out)
}

/// `a + b`, elementwise over `len` elements, split where they are past one binding.
pub(crate) fn add_same(ctx: &Ctx, a: &GpuBuffer, b: &GpuBuffer, len: usize) -> Result<GpuBuffer> {
    let spec = BroadcastSpec { out: vec![len], a_strides: vec![1], b_strides: vec![1] };
    binary(ctx, a, b, BinaryOp::Add, &spec)
}
