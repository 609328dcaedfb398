//! The depthwise family (shaders/depthwise.wgsl): a convolution with groups = channels and
//! `mult` filters per channel, run directly: the forward and input gradient as gathers in
//! passes within the loop budget, the weight gradient one workgroup per weight and chunk of
//! windows. Past one binding they run per run of images, or in bands of output rows.

use super::conv::batch;
use super::reduce::reduce_kernel;
use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::fit;
use super::runtime::loops;
use super::runtime::{Bind, GpuBuffer, Kernel, WG};
use super::split::bands::{by_bands, by_bands_input, by_bands_weight, image_fits};
use super::split::{by_items, by_items_summed, each_fits, Ctx, Rows};
use super::window::WindowParams;
use crate::backend::ReduceOp;
use crate::shape::WindowGeom;
use crate::Result;

kernels! { DEPTHWISE_WGSL = ("depthwise", include_str!("../../shaders/depthwise.wgsl"), &[Buffer::read("src"), Buffer::write("dst"), Buffer::read("aux")]): WindowParams;
    FORWARD = ("dw_fwd", "depthwise_conv2d", GATHER);
    INPUT_GRAD = ("dw_bwd_input", "depthwise_conv2d_backward_input", GATHER);
    WEIGHT_GRAD = ("dw_bwd_weight", "depthwise_conv2d_backward_weight", GATHER);
}

/// `src` at binding 1, the second input (`aux`) at 3, the output at 2.
const GATHER: &[Bind] = &[Bind::In(1), Bind::In(3), Bind::Out(2)];

/// Elements of one image of the input, `c * h * w`, and of the output, `c * mult * oh * ow`.
fn image_lens(g: &WindowGeom, mult: usize) -> (usize, usize) {
    (g.c * g.h * g.w, g.c * mult * g.oh * g.ow)
}

/// The two gathers: the forward reads input images and writes output images, the input
/// gradient the reverse.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gather {
    Forward,
    InputGrad,
}

impl Gather {
    fn kernel(self) -> &'static Kernel<WindowParams> {
        match self {
            Gather::Forward => &FORWARD,
            Gather::InputGrad => &INPUT_GRAD,
        }
    }

    /// Elements of one image read and written, and the rows of the kernel's outer loop: kh
    /// forward, (m, kh) for the input gradient.
    fn shape(self, g: &WindowGeom, mult: usize) -> (usize, usize, usize) {
        let (chw, out) = image_lens(g, mult);
        match self {
            Gather::Forward => (chw, out, g.kh),
            Gather::InputGrad => (out, chw, mult * g.kh),
        }
    }
}

/// `x (n, c, h, w)`, `w (c*mult, 1, kh, kw)` -> `(n, c*mult, oh, ow)`.
pub(crate) fn forward(
    ctx: &Ctx, x: &GpuBuffer, w: &GpuBuffer, g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    by_images(ctx, Gather::Forward, x, w, g, mult)
}

/// The input gradient: `grad (n, c*mult, oh, ow)`, `w` -> `(n, c, h, w)`, each element summing
/// over (m, kh, kw) in that order.
pub(crate) fn backward_input(
    ctx: &Ctx, grad: &GpuBuffer, w: &GpuBuffer, g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    by_images(ctx, Gather::InputGrad, grad, w, g, mult)
}

/// A gather over the batch: by runs of images, or for an image past a binding in bands of
/// output rows.
fn by_images(
    ctx: &Ctx, which: Gather, src: &GpuBuffer, w: &GpuBuffer, g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    let op = which.kernel().info.op;
    let band = |s: &GpuBuffer, bg: &WindowGeom| gather(ctx, which, (s, w), bg, mult);
    if !image_fits(ctx, g, g.c * mult) {
        each_fits(ctx, op, &[w.len])?;
        return match which {
            Gather::Forward => by_bands(ctx, op, src, g, g.c * mult, band),
            Gather::InputGrad => by_bands_input(ctx, op, src, g, g.c * mult, band),
        };
    }
    let (read, written, _) = which.shape(g, mult);
    let ins = [Rows::per(src, read), Rows::whole(w)];
    by_items(ctx, op, g.n, &ins, written, |p, n| {
        gather(ctx, which, (p[0], p[1]), &batch(g, n), mult)
    })
}

/// The weight gradient: `x`, `grad (n, c*mult, oh, ow)` -> `(c*mult, 1, kh, kw)`.
pub(crate) fn backward_weight(
    ctx: &Ctx, x: &GpuBuffer, grad: &GpuBuffer, g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    let (op, len) = (WEIGHT_GRAD.info.op, mult * g.c * g.kh * g.kw);
    if !image_fits(ctx, g, g.c * mult) {
        return by_bands_weight(ctx, op, (x, grad), g, g.c * mult, len, |xb, gb, bg| {
            weight_kernel(ctx, xb, gb, bg, mult)
        });
    }
    let (chw, out) = image_lens(g, mult);
    let ins = [Rows::per(x, chw), Rows::per(grad, out)];
    by_items_summed(ctx, op, g.n, &ins, len, |p, n| {
        weight_kernel(ctx, p[0], p[1], &batch(g, n), mult)
    })
}

/// A depthwise gather over the images of `g`, in passes over its outer loop.
fn gather(
    ctx: &Ctx, which: Gather, (src, aux): (&GpuBuffer, &GpuBuffer), g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    let k = which.kernel();
    let op = k.info.op;
    let (_, written, rows) = which.shape(g, mult);
    let total = g.n * written;
    let mut p = WindowParams::new(g, total, op)?;
    p.mult = fit(mult, op)?;
    let passes = loops::row_passes(op, rows, g.kw, 0, ctx.cap())?;
    ctx.map_passes(k, p, &[src, aux], total, &passes)
}

/// The weight gradient within one binding: one workgroup per weight and chunk of windows,
/// then the chunks summed in order.
fn weight_kernel(
    ctx: &Ctx, x: &GpuBuffer, grad: &GpuBuffer, g: &WindowGeom, mult: usize,
) -> Result<GpuBuffer> {
    let op = WEIGHT_GRAD.info.op;
    let weights = g.c * mult * g.kh * g.kw;
    let windows = g.n * g.oh * g.ow;
    let chunk = WG * loops::reduce_stride_trips(ctx.cap());
    let chunks = windows.div_ceil(chunk).max(1);
    let total = weights * chunks;
    let mut p = WindowParams::new(g, total, op)?;
    p.mult = fit(mult, op)?;
    (p.r0, p.r1) = (fit(chunk, op)?, fit(chunks, op)?);
    // (c*mult*kh*kw, chunks)
    let out = ctx.alloc(total, op)?;
    ctx.launch(&WEIGHT_GRAD, &p, &[x, grad, &out], ctx.groups(op, total)?)?;
    if chunks == 1 {
        return Ok(out);
    }
    reduce_kernel(ctx, &out, (weights, chunks, 1), ReduceOp::Sum)
}
