//! The unfold family (shaders/unfold.wgsl): im2col, and its adjoint col2im as a gather in
//! passes within the loop budget. The columns `(c*kh*kw, n*oh*ow)` hold each image in a block
//! of columns, so past one binding they run by runs of images, copied out and in row by row.

use super::conv::batch;
use super::runtime::kernel::{kernels, Buffer};
use super::runtime::loops;
use super::runtime::{Bind, GpuBuffer};
use super::split::{copy_rows, fits, items_per_piece, owned_range, Ctx, Rows};
use super::window::WindowParams;
use crate::shape::WindowGeom;
use crate::Result;

kernels! { UNFOLD_WGSL = ("unfold", include_str!("../../shaders/unfold.wgsl"), Buffer::SRC_DST): WindowParams;
    IM2COL = ("im2col", "im2row", Bind::MAP);
    COL2IM = ("col2im", "row2im", Bind::MAP);
}

/// `(n, c, h, w) -> cols (c*kh*kw, n*oh*ow)`.
pub(crate) fn im2col(ctx: &Ctx, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
    let (taps, ohw, chw) = (g.c * g.kh * g.kw, g.oh * g.ow, g.c * g.h * g.w);
    if fits(ctx, &[x], &[taps * g.n * ohw]) {
        return im2col_kernel(ctx, x, g);
    }
    let per = items_per_piece(ctx, "im2col", g.n, &[Rows::per(x, chw)], &[taps * ohw])?;
    let cols = ctx.alloc_any(taps * g.n * ohw, "im2col")?;
    for n0 in (0..g.n).step_by(per) {
        let nc = per.min(g.n - n0);
        let piece = owned_range(ctx, x, n0 * chw, nc * chw)?;
        let part = im2col_kernel(ctx, &piece, &batch(g, nc))?;
        let run = nc * ohw;
        copy_rows(ctx, (&part, 0, run), (&cols, n0 * ohw, g.n * ohw), taps, run)?;
    }
    Ok(cols)
}

/// `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`, each input summing its taps in (kh, kw) order.
pub(crate) fn col2im(ctx: &Ctx, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
    let (taps, ohw, chw) = (g.c * g.kh * g.kw, g.oh * g.ow, g.c * g.h * g.w);
    if fits(ctx, &[cols], &[g.n * chw]) {
        return col2im_kernel(ctx, cols, g);
    }
    let per = items_per_piece(ctx, "col2im", g.n, &[], &[taps * ohw, chw])?;
    let out = ctx.alloc_any(g.n * chw, "col2im")?;
    for n0 in (0..g.n).step_by(per) {
        let nc = per.min(g.n - n0);
        let run = nc * ohw;
        let piece = ctx.alloc(taps * run, "col2im")?;
        copy_rows(ctx, (cols, n0 * ohw, g.n * ohw), (&piece, 0, run), taps, run)?;
        let part = col2im_kernel(ctx, &piece, &batch(g, nc))?;
        ctx.copy_range((&part, 0), (&out, n0 * chw), nc * chw)?;
    }
    Ok(out)
}

fn im2col_kernel(ctx: &Ctx, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
    let total = g.row_count() * g.row_len();
    let p = WindowParams::new(g, total, "im2row")?;
    ctx.map(&IM2COL, &p, &[x], total)
}

/// col2im in passes over kh.
fn col2im_kernel(ctx: &Ctx, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
    let total = g.n * g.c * g.h * g.w;
    let passes = loops::row_passes("row2im", g.kh, g.kw, 0, ctx.cap())?;
    let p = WindowParams::new(g, total, "row2im")?;
    ctx.map_passes(&COL2IM, p, &[cols], total, &passes)
}
