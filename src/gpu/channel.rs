//! The channel family (shaders/channel.wgsl), batch norm's per-channel primitives: the dot
//! product, a workgroup per channel in passes over its elements within the loop budget, and
//! the affine combination. Past one binding they run by runs of images, and an image past a
//! binding by runs of channels.

use bytemuck::Zeroable;

use super::elementwise;
use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::u32_of;
use super::runtime::loops;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer, WG};
use super::split::{by_items, by_items_summed, fits, owned_range, too_large, Ctx, Partials, Rows};
use crate::Result;

kernels! { CHANNEL_WGSL = ("channel", include_str!("../../shaders/channel.wgsl"), BUFFERS): ChannelParams;
    /// `x`, `mean`, `g` (or `x` again), then the per-channel sums.
    DOT = ("channel_dot", "batch_norm2d", &[Bind::In(1), Bind::In(2), Bind::In(3), Bind::Out(6)]);
    /// `u`, `a`, `v`, `b`, `k` (`u` and `a` again without `(v, b)`), then the combination.
    COMBINE = ("channel_combine", "batch_norm2d", &[Bind::In(1), Bind::In(2), Bind::In(3), Bind::In(4), Bind::In(5), Bind::Out(6)]);
}

uniform! {
    ChannelParams as "ChannelParams" {
        n: u32, c: u32, hw: u32, total: u32,
        /// bit 0: the second operand is bound with its `b`; bit 1: it is a residual added
        /// after `a * x + k`; bit 2: a ReLU last
        flags: u32,
        /// channel_dot: this pass's element rows (WG elements each)
        r0: u32, r1: u32,
        _pad: u32,
    }
}

/// Storage buffers channel_combine binds; adapters with fewer use the composed default.
pub(crate) const COMBINE_BUFFERS: u32 = 6;

/// `x`; channel_dot's mean or channel_combine's `a`; the second operand (`x` again where there
/// is none) and its `b`; `k`; the output.
const BUFFERS: &[Buffer] = &[
    Buffer::read("x"),
    Buffer::read("a"),
    Buffer::read("v"),
    Buffer::read("b"),
    Buffer::read("k"),
    Buffer::write("out"),
];

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

/// `(c)`: per channel, the sum of `(x - mean) * (g or x - mean)` over (n, hw).
fn dot_kernel(
    ctx: &Ctx, x: &GpuBuffer, mean: &GpuBuffer, g: Option<&GpuBuffer>, dims: (usize, usize, usize),
) -> Result<GpuBuffer> {
    let mut p = ChannelParams::new(dims, g.is_some())?;
    let rows = (dims.0 * dims.2).div_ceil(WG);
    // the tree's 8 levels run outside the element loop
    let passes = loops::row_passes("batch_norm2d", rows, 0, 16, ctx.cap())?;
    let out = ctx.alloc(dims.1, "batch_norm2d")?;
    let groups = ctx.groups("batch_norm2d", dims.1)?;
    for &(r0, r1) in &passes {
        (p.r0, p.r1) = (r0, r1);
        ctx.launch(&DOT, &p, &[x, mean, g.unwrap_or(x), &out], groups)?;
    }
    Ok(out)
}

/// `a * u + b * v + k` per channel (without `(v, b)`: `a * u + k`).
fn combine_kernel(
    ctx: &Ctx, u: &GpuBuffer, a: &GpuBuffer, vb: Option<(&GpuBuffer, &GpuBuffer)>, k: &GpuBuffer,
    dims: (usize, usize, usize),
) -> Result<GpuBuffer> {
    let p = ChannelParams::new(dims, vb.is_some())?;
    let (v, b) = vb.unwrap_or((u, a));
    ctx.map(&COMBINE, &p, &[u, a, v, b, k], dims.0 * dims.1 * dims.2)
}

/// `a * u + k` per channel, then `+ residual` and a ReLU where asked, in one pass; `None` where
/// an operand or the output is past one binding, or the adapter binds too few storage buffers
/// (the caller runs the passes apart).
pub(crate) fn affine(
    ctx: &Ctx, u: &GpuBuffer, a: &GpuBuffer, k: &GpuBuffer, residual: Option<&GpuBuffer>,
    relu: bool, dims: (usize, usize, usize),
) -> Result<Option<GpuBuffer>> {
    let len = dims.0 * dims.1 * dims.2;
    let ins: Vec<&GpuBuffer> = [u, a, k].into_iter().chain(residual).collect();
    let bindable = ctx.limits().max_storage_buffers_per_shader_stage >= COMBINE_BUFFERS;
    if !bindable || !fits(ctx, &ins, &[len]) {
        return Ok(None);
    }
    let mut p = ChannelParams::new(dims, false)?;
    p.flags = (residual.is_some() as u32) << 1 | (relu as u32) << 2;
    let v = residual.unwrap_or(u);
    ctx.map(&COMBINE, &p, &[u, a, v, a, k], len).map(Some)
}

/// `x (n, c, hw)`, `mean (c)`, `g (n, c, hw)` -> `(c)`, by runs of images past one binding.
pub(crate) fn dot(
    ctx: &Ctx, x: &GpuBuffer, mean: &GpuBuffer, g: Option<&GpuBuffer>, dims: (usize, usize, usize),
) -> Result<GpuBuffer> {
    let (n, c, hw) = dims;
    if c * hw > ctx.binding_len() {
        return dot_runs(ctx, x, mean, g, dims);
    }
    let mut ins = vec![Rows::per(x, c * hw), Rows::whole(mean)];
    ins.extend(g.map(|g| Rows::per(g, c * hw)));
    by_items_summed(ctx, "batch_norm2d channel_dot", n, &ins, c, |p, n| {
        dot_kernel(ctx, p[0], p[1], p.get(2).copied(), (n, c, hw))
    })
}

/// `u, v (n, c, hw)`, `a, b, k (c)` -> `a * u + b * v + k`, by runs of images past one binding.
pub(crate) fn combine(
    ctx: &Ctx, u: &GpuBuffer, a: &GpuBuffer, vb: Option<(&GpuBuffer, &GpuBuffer)>, k: &GpuBuffer,
    dims: (usize, usize, usize),
) -> Result<GpuBuffer> {
    let (n, c, hw) = dims;
    if c * hw > ctx.binding_len() {
        return combine_runs(ctx, u, a, vb, k, dims);
    }
    let mut ins = vec![Rows::per(u, c * hw), Rows::whole(a), Rows::whole(k)];
    if let Some((v, b)) = vb {
        ins.extend([Rows::per(v, c * hw), Rows::whole(b)]);
    }
    by_items(ctx, "batch_norm2d channel_combine", n, &ins, c * hw, |p, n| {
        let vb = (p.len() == 5).then(|| (p[3], p[4]));
        combine_kernel(ctx, p[0], p[1], vb, p[2], (n, c, hw))
    })
}

/// Channels per run: a run of one image's planes within a binding.
fn channel_run(ctx: &Ctx, op: &'static str, hw: usize) -> Result<usize> {
    let max = ctx.binding_len();
    match max / hw.max(1) {
        0 => Err(too_large(op, hw, max)),
        r => Ok(r),
    }
}

/// [`dot`] when one image is past a binding: runs of channels of each image, each run's means
/// copied out with it.
fn dot_runs(
    ctx: &Ctx, x: &GpuBuffer, mean: &GpuBuffer, g: Option<&GpuBuffer>,
    (n, c, hw): (usize, usize, usize),
) -> Result<GpuBuffer> {
    let per = channel_run(ctx, "batch_norm2d channel_dot", hw)?;
    let out = elementwise::full(ctx, c, 0.0)?;
    for c0 in (0..c).step_by(per) {
        let k = per.min(c - c0);
        let m = owned_range(ctx, mean, c0, k)?;
        let mut sum = Partials::new(k);
        for i in 0..n {
            let at = (i * c + c0) * hw;
            let xs = owned_range(ctx, x, at, k * hw)?;
            let gs = g.map(|g| owned_range(ctx, g, at, k * hw)).transpose()?;
            sum.add(ctx, dot_kernel(ctx, &xs, &m, gs.as_ref(), (1, k, hw))?)?;
        }
        ctx.copy_range((&sum.finish(ctx)?, 0), (&out, c0), k)?;
    }
    Ok(out)
}

/// [`combine`] when one image is past a binding: runs of channels of each image, each run's
/// per-channel vectors copied out with it.
fn combine_runs(
    ctx: &Ctx, u: &GpuBuffer, a: &GpuBuffer, vb: Option<(&GpuBuffer, &GpuBuffer)>, k: &GpuBuffer,
    (n, c, hw): (usize, usize, usize),
) -> Result<GpuBuffer> {
    let op = "batch_norm2d channel_combine";
    let per = channel_run(ctx, op, hw)?;
    let out = ctx.alloc_any(n * c * hw, op)?;
    for c0 in (0..c).step_by(per) {
        let run = per.min(c - c0);
        let (ar, kr) = (owned_range(ctx, a, c0, run)?, owned_range(ctx, k, c0, run)?);
        let br = vb.map(|(_, b)| owned_range(ctx, b, c0, run)).transpose()?;
        for i in 0..n {
            let at = (i * c + c0) * hw;
            let ur = owned_range(ctx, u, at, run * hw)?;
            let vr = vb.map(|(v, _)| owned_range(ctx, v, at, run * hw)).transpose()?;
            let pair = vr.as_ref().zip(br.as_ref());
            let y = combine_kernel(ctx, &ur, &ar, pair, &kr, (1, run, hw))?;
            ctx.copy_range((&y, 0), (&out, at), run * hw)?;
        }
    }
    Ok(out)
}
