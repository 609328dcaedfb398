//! The pooling family (shaders/pool.wgsl): max, average, adaptive average and adaptive max
//! pooling, forward and backward, each a gather in passes over its outer window loop within the
//! loop budget. Planes are independent, so past one binding every pooling op runs by runs of
//! planes (one image past a binding still splits).

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::loops;
use super::runtime::{Bind, GpuBuffer, Kernel};
use super::split::{by_items, by_items2, Ctx, Rows};
use super::window::WindowParams;
use crate::backend::AvgPoolOpts;
use crate::shape::WindowGeom;
use crate::{Error, Result};

kernels! { POOL_WGSL = ("pool", include_str!("../../shaders/pool.wgsl"), BUFFERS): WindowParams;
    MAX_FWD = ("max_fwd", "max_pool2d", ARGMAX);
    MAX_FWD_TILED = ("max_fwd_tiled", "max_pool2d", ARGMAX);
    MAX_BWD = ("max_bwd", "max_pool2d", ARGMAX_BACK);
    MAX_BWD_TILED = ("max_bwd_tiled", "max_pool2d", ARGMAX_BACK);
    AVG_FWD = ("avg_fwd", "avg_pool2d", Bind::MAP);
    AVG_BWD = ("avg_bwd", "avg_pool2d", Bind::MAP);
    ADAPTIVE_FWD = ("adaptive_fwd", "adaptive_avg_pool2d", Bind::MAP);
    ADAPTIVE_BWD = ("adaptive_bwd", "adaptive_avg_pool2d", Bind::MAP);
    ADAPTIVE_MAX_FWD = ("adaptive_max_fwd", "adaptive_max_pool2d", ARGMAX);
    ADAPTIVE_MAX_BWD = ("adaptive_max_bwd", "adaptive_max_pool2d", ARGMAX_BACK);
}

/// The input, then the maxima and their indices.
const ARGMAX: &[Bind] = &[Bind::In(1), Bind::Out(2), Bind::Out(3)];
/// The output gradient and the indices, then the input gradient.
const ARGMAX_BACK: &[Bind] = &[Bind::In(1), Bind::In(3), Bind::Out(2)];

/// The source, the output, and max pooling's flat `h*w` argmax per output (as f32): written
/// forward, read backward.
const BUFFERS: &[Buffer] = &[Buffer::read("src"), Buffer::write("dst"), Buffer::write("aux")];

/// `(n, c, h, w)` of an adaptive pool's input.
type Dims = (usize, usize, usize, usize);

/// One pooling launch over a run of planes: its params, the iterations of its outer and inner
/// window loops, and its output elements.
struct Launch {
    params: WindowParams,
    loops: (usize, usize),
    total: usize,
}

/// Runs `k` in passes over its outer loop (`r_end` the loop's length) on `inputs`, into `N`
/// new outputs of one element per invocation.
fn passes<const N: usize>(
    ctx: &Ctx, k: &Kernel<WindowParams>, l: Launch, inputs: &[&GpuBuffer],
) -> Result<[GpuBuffer; N]> {
    let len = l.total;
    passes_into(ctx, k, l, inputs, len)
}

/// [`passes`] into outputs of `len` elements each.
fn passes_into<const N: usize>(
    ctx: &Ctx, k: &Kernel<WindowParams>, mut l: Launch, inputs: &[&GpuBuffer], len: usize,
) -> Result<[GpuBuffer; N]> {
    let op = k.info.op;
    let passes = loops::row_passes(op, l.loops.0, l.loops.1, 0, ctx.cap())?;
    l.params.r_end = passes.last().map_or(0, |&(_, r1)| r1);
    let outs = (0..N).map(|_| ctx.alloc(len, op)).collect::<Result<Vec<_>>>()?;
    let mut bufs = inputs.to_vec();
    bufs.extend(outs.iter());
    ctx.launch_passes(k, l.params, &bufs, l.total, &passes)?;
    outs.try_into().map_err(|_| Error::Gpu(format!("{op}: an output went missing")))
}

/// A window op's geometry over `k` planes of one channel each.
fn planes(g: &WindowGeom, k: usize) -> WindowGeom {
    WindowGeom { n: k, c: 1, ..*g }
}

/// Maxima `(n, c, oh, ow)` and their flat `h*w` indices, in passes over kh.
pub(crate) fn max_pool(ctx: &Ctx, x: &GpuBuffer, g: &WindowGeom) -> Result<(GpuBuffer, GpuBuffer)> {
    let ins = [Rows::per(x, g.h * g.w)];
    by_items2(ctx, "max_pool2d", g.n * g.c, &ins, g.oh * g.ow, |p, n| {
        let g = planes(g, n);
        let total = n * g.oh * g.ow;
        let params = WindowParams::new(&g, total, "max_pool2d")?;
        let l = Launch { params, loops: (g.kh, g.kw), total };
        let k = if tiles_input(&g) { &MAX_FWD_TILED } else { &MAX_FWD };
        let [y, idx] = passes(ctx, k, l, p)?;
        Ok((y, idx))
    })
}

/// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, in passes over kh.
pub(crate) fn max_pool_backward(
    ctx: &Ctx, grad: &GpuBuffer, indices: &GpuBuffer, g: &WindowGeom,
) -> Result<GpuBuffer> {
    let (op, o) = ("max_pool2d_backward", g.oh * g.ow);
    let ins = [Rows::per(grad, o), Rows::per(indices, o)];
    by_items(ctx, op, g.n * g.c, &ins, g.h * g.w, |p, n| {
        let g = planes(g, n);
        if tiles_input(&g) {
            return max_backward_tiled(ctx, &g, p);
        }
        let total = n * g.h * g.w;
        let params = WindowParams::new(&g, total, "max_pool2d")?;
        let l = Launch { params, loops: (g.kh, g.kw), total };
        let [dx] = passes(ctx, &MAX_BWD, l, p)?;
        Ok(dx)
    })
}

/// True where the windows tile the input: each input in exactly one window (2x2 windows of
/// stride 2 over an even input, say).
fn tiles_input(g: &WindowGeom) -> bool {
    (g.kh, g.kw) == (g.sh, g.sw)
        && (g.dh, g.dw) == (1, 1)
        && (g.pad_top, g.pad_left) == (0, 0)
        && (g.h, g.w) == (g.oh * g.sh, g.ow * g.sw)
}

/// Max pooling's backward where the windows tile the input: a thread per window writes its
/// inputs (a quarter of the threads of the gather for 2x2 windows, each reading once).
fn max_backward_tiled(ctx: &Ctx, g: &WindowGeom, bufs: &[&GpuBuffer]) -> Result<GpuBuffer> {
    let windows = g.n * g.oh * g.ow;
    let params = WindowParams::new(g, windows, MAX_BWD_TILED.info.op)?;
    let l = Launch { params, loops: (g.kh, g.kw), total: windows };
    let [dx] = passes_into(ctx, &MAX_BWD_TILED, l, bufs, g.n * g.h * g.w)?;
    Ok(dx)
}

/// Average pooling forward (`(n, c, h, w) -> (n, c, oh, ow)` window means) or backward
/// (`grad (n, c, oh, ow) -> (n, c, h, w)`).
pub(crate) fn avg_pool(
    ctx: &Ctx, backward: bool, src: &GpuBuffer, g: &WindowGeom, opts: AvgPoolOpts,
) -> Result<GpuBuffer> {
    let (x, y) = (g.h * g.w, g.oh * g.ow);
    let (op, k, (from, to)) = match backward {
        false => ("avg_pool2d", &AVG_FWD, (x, y)),
        true => ("avg_pool2d_backward", &AVG_BWD, (y, x)),
    };
    by_items(ctx, op, g.n * g.c, &[Rows::per(src, from)], to, |p, n| {
        let g = planes(g, n);
        // backward: the outputs whose windows can cover one input, per axis
        let loops = match backward {
            false => (g.kh, g.kw),
            true => ((g.kh - 1) / g.sh + 1, (g.kw - 1) / g.sw + 1),
        };
        let total = n * to;
        let params = WindowParams::new(&g, total, "avg_pool2d")?.with_avg(opts)?;
        let [out] = passes(ctx, k, Launch { params, loops, total }, p)?;
        Ok(out)
    })
}

/// Adaptive average pooling, forward (`(n, c, h, w) -> (n, c, oh, ow)` with PyTorch's
/// windows) or backward (`grad (n, c, oh, ow) -> (n, c, h, w)`).
pub(crate) fn adaptive_avg_pool(
    ctx: &Ctx, backward: bool, src: &GpuBuffer, dims: Dims, out: (usize, usize),
) -> Result<GpuBuffer> {
    let (x, y) = (dims.2 * dims.3, out.0 * out.1);
    let (k, (from, to)) = match backward {
        false => (&ADAPTIVE_FWD, (x, y)),
        true => (&ADAPTIVE_BWD, (y, x)),
    };
    let op = k.info.op;
    by_items(ctx, op, dims.0 * dims.1, &[Rows::per(src, from)], to, |p, n| {
        let [out] = passes(ctx, k, adaptive((n, 1, dims.2, dims.3), out, backward, op)?, p)?;
        Ok(out)
    })
}

/// Adaptive max pooling: maxima `(n, c, oh, ow)` and their flat `h*w` indices.
pub(crate) fn adaptive_max_pool(
    ctx: &Ctx, x: &GpuBuffer, dims: Dims, out: (usize, usize),
) -> Result<(GpuBuffer, GpuBuffer)> {
    let op = ADAPTIVE_MAX_FWD.info.op;
    let ins = [Rows::per(x, dims.2 * dims.3)];
    by_items2(ctx, op, dims.0 * dims.1, &ins, out.0 * out.1, |p, n| {
        let l = adaptive((n, 1, dims.2, dims.3), out, false, op)?;
        let [y, idx] = passes(ctx, &ADAPTIVE_MAX_FWD, l, p)?;
        Ok((y, idx))
    })
}

/// `grad (n, c, oh, ow), indices -> (n, c, h, w)`.
pub(crate) fn adaptive_max_pool_backward(
    ctx: &Ctx, grad: &GpuBuffer, indices: &GpuBuffer, dims: Dims, out: (usize, usize),
) -> Result<GpuBuffer> {
    let o = out.0 * out.1;
    let ins = [Rows::per(grad, o), Rows::per(indices, o)];
    let op = "adaptive_max_pool2d_backward";
    by_items(ctx, op, dims.0 * dims.1, &ins, dims.2 * dims.3, |p, n| {
        let l = adaptive((n, 1, dims.2, dims.3), out, true, ADAPTIVE_MAX_BWD.info.op)?;
        let [dx] = passes(ctx, &ADAPTIVE_MAX_BWD, l, p)?;
        Ok(dx)
    })
}

/// An adaptive pooling launch: its invocations, and the most iterations of its outer and inner
/// loops: forward, the longest window per axis; backward, the most windows covering one input
/// per axis (the kernel scans one extra each side).
fn adaptive(
    (n, c, h, w): Dims, (oh, ow): (usize, usize), backward: bool, op: &'static str,
) -> Result<Launch> {
    let (total, loops) = if backward {
        let loops = ((oh.div_ceil(h) + 2).min(oh), (ow.div_ceil(w) + 2).min(ow));
        (n * c * h * w, loops)
    } else {
        let loops = ((h.div_ceil(oh) + 1).min(h), (w.div_ceil(ow) + 1).min(w));
        (n * c * oh * ow, loops)
    };
    let params = WindowParams::adaptive((n, c, h, w), (oh, ow), total, op)?;
    Ok(Launch { params, loops, total })
}
