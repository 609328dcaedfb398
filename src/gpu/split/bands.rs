//! Convolutions whose single image is past one storage binding: each image runs in bands of
//! output rows. A band of output rows `[r0, r1)` reads a band of input rows `[lo, hi)` of every
//! channel (the window's reach, cut at the image's edges), which the kernels see as an image of
//! their own with its top padding adjusted. Forward bands are independent; weight gradients sum
//! per-band partials; input gradients add each band's result into the rows it covers, bands in
//! order, since neighbouring bands share the rows of the window's reach.

use super::{copy_rows, too_large, Ctx, Partials};
use crate::gpu::elementwise;
use crate::gpu::runtime::GpuBuffer;
use crate::shape::WindowGeom;
use crate::Result;

/// One image's `(planes, h, w)` inside a `(n, planes, h, w)` tensor: image `i`.
type Image = (usize, usize, usize, usize);

/// Output rows `[r0, r1)` of image `image`, the input rows `[lo, hi)` they read, and the band
/// as a geometry of its own (one image, `hi - lo` rows, the top padding the band still has). A
/// band that reads only padding (`lo == hi`) gets one row of zeros that every window passes
/// over: its output is the bias alone, and it adds nothing to the input gradient.
struct Band {
    image: usize,
    r0: usize,
    r1: usize,
    lo: usize,
    hi: usize,
    geom: WindowGeom,
}

/// Every band of `per` output rows of every image, in order.
fn bands(g: &WindowGeom, per: usize) -> impl Iterator<Item = Band> + '_ {
    (0..g.n).flat_map(move |image| {
        (0..g.oh).step_by(per).map(move |r0| {
            let r1 = (r0 + per).min(g.oh);
            let first = (r0 * g.sh) as isize - g.pad_top as isize;
            let last = ((r1 - 1) * g.sh + (g.kh - 1) * g.dh) as isize - g.pad_top as isize;
            let lo = first.max(0) as usize;
            let hi = ((last + 1).clamp(0, g.h as isize) as usize).max(lo);
            let (h, pad_top) = if hi == lo {
                // every tap above row 0 of a one-row band
                (1, (r1 - r0 - 1) * g.sh + (g.kh - 1) * g.dh + 1)
            } else {
                (hi - lo, (lo as isize - first) as usize)
            };
            let geom = WindowGeom { n: 1, h, pad_top, oh: r1 - r0, ..*g };
            Band { image, r0, r1, lo, hi, geom }
        })
    })
}

/// True when one input image (`c` planes) and one output image (`out_c` planes) each fit
/// one binding: the batch split serves, no bands are needed.
pub(crate) fn image_fits(ctx: &Ctx, g: &WindowGeom, out_c: usize) -> bool {
    let max = ctx.binding_len();
    g.c * g.h * g.w <= max && out_c * g.oh * g.ow <= max
}

/// Output rows per band: the band's input rows and output rows within a binding each.
fn band_rows(ctx: &Ctx, op: &'static str, g: &WindowGeom, out_c: usize) -> Result<usize> {
    let max = ctx.binding_len();
    let reach = (g.kh - 1) * g.dh + 1;
    let in_rows = max / (g.c * g.w).max(1);
    let by_in = in_rows.checked_sub(reach).map_or(0, |r| r / g.sh + 1);
    let by_out = max / (out_c * g.ow).max(1);
    match by_in.min(by_out).min(g.oh) {
        0 => Err(too_large(op, (g.c * g.w * reach).max(out_c * g.ow), max)),
        r => Ok(r),
    }
}

/// Rows `[lo, hi)` of every plane of image `i` of `x`, as one `(planes, hi - lo, w)` buffer.
fn gather_rows(
    ctx: &Ctx, x: &GpuBuffer, (i, c, h, w): Image, lo: usize, hi: usize,
) -> Result<GpuBuffer> {
    let run = (hi - lo) * w;
    let band = ctx.alloc(c * run, "split")?;
    copy_rows(ctx, (x, (i * c * h + lo) * w, h * w), (&band, 0, run), c, run)?;
    Ok(band)
}

/// A band's input rows, or its row of zeros.
fn input_band(ctx: &Ctx, x: &GpuBuffer, g: &WindowGeom, b: &Band) -> Result<GpuBuffer> {
    if b.lo == b.hi {
        return elementwise::full(ctx, g.c * g.w, 0.0);
    }
    gather_rows(ctx, x, (b.image, g.c, g.h, g.w), b.lo, b.hi)
}

/// The reverse of `gather_rows`: `band` into rows `[lo, hi)` of image `i` of `x`.
fn scatter_rows(
    ctx: &Ctx, band: &GpuBuffer, x: &GpuBuffer, (i, c, h, w): Image, lo: usize, hi: usize,
) -> Result<()> {
    let run = (hi - lo) * w;
    copy_rows(ctx, (band, 0, run), (x, (i * c * h + lo) * w, h * w), c, run)
}

/// A forward window op `(n, c, h, w) -> (n, out_c, oh, ow)` in bands of output rows:
/// `run(input band, band geometry)` gives the band's output rows.
pub(crate) fn by_bands(
    ctx: &Ctx, op: &'static str, x: &GpuBuffer, g: &WindowGeom, out_c: usize,
    run: impl Fn(&GpuBuffer, &WindowGeom) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    let per = band_rows(ctx, op, g, out_c)?;
    let y = ctx.alloc_any(g.n * out_c * g.oh * g.ow, op)?;
    for b in bands(g, per) {
        let yb = run(&input_band(ctx, x, g, &b)?, &b.geom)?;
        scatter_rows(ctx, &yb, &y, (b.image, out_c, g.oh, g.ow), b.r0, b.r1)?;
    }
    Ok(y)
}

/// A weight gradient over bands: `run(input band, output-gradient band, band geometry)`
/// gives a `len`-element partial, summed over bands and images in order.
pub(crate) fn by_bands_weight(
    ctx: &Ctx, op: &'static str, (x, grad): (&GpuBuffer, &GpuBuffer), g: &WindowGeom, out_c: usize,
    len: usize, run: impl Fn(&GpuBuffer, &GpuBuffer, &WindowGeom) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    super::each_fits(ctx, op, &[len])?;
    let per = band_rows(ctx, op, g, out_c)?;
    let mut sum = Partials::new(len);
    for b in bands(g, per) {
        // a band of padding still multiplies its zeros by the gradient (NaN stays NaN)
        let xb = input_band(ctx, x, g, &b)?;
        let gb = gather_rows(ctx, grad, (b.image, out_c, g.oh, g.ow), b.r0, b.r1)?;
        sum.add(ctx, run(&xb, &gb, &b.geom)?)?;
    }
    sum.finish(ctx)
}

/// An input gradient over bands: `run(output-gradient band, band geometry)` gives the
/// band's `(c, hi - lo, w)` input rows, added into the result in band order.
pub(crate) fn by_bands_input(
    ctx: &Ctx, op: &'static str, grad: &GpuBuffer, g: &WindowGeom, out_c: usize,
    run: impl Fn(&GpuBuffer, &WindowGeom) -> Result<GpuBuffer>,
) -> Result<GpuBuffer> {
    let per = band_rows(ctx, op, g, out_c)?;
    let dx = elementwise::full(ctx, g.n * g.c * g.h * g.w, 0.0)?;
    // a band of padding adds nothing to the input
    for b in bands(g, per).filter(|b| b.lo < b.hi) {
        let gb = gather_rows(ctx, grad, (b.image, out_c, g.oh, g.ow), b.r0, b.r1)?;
        let part = run(&gb, &b.geom)?;
        let image = (b.image, g.c, g.h, g.w);
        let cur = gather_rows(ctx, &dx, image, b.lo, b.hi)?;
        let sum = elementwise::add_same(ctx, &cur, &part, part.len)?;
        scatter_rows(ctx, &sum, &dx, image, b.lo, b.hi)?;
    }
    Ok(dx)
}
