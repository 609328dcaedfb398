//! The im2col-GEMM products of a grouped 2-D convolution, each callable on its own: `conv2d`
//! runs all three, and a transposed convolution swaps the forward and the input gradient.
//!
//! Every product is one batched GEMM over (image, group) or over groups, reading the operands
//! in place through strides: `cols (c*kh*kw, n*oh*ow)` holds group `g` in rows
//! `g*cgkk..(g+1)*cgkk` and image `n` in columns `n*ohw..(n+1)*ohw`, `weight (d, cgkk)` holds
//! group `g` in rows `g*dg..(g+1)*dg`, and `y (n, d, oh, ow)` holds image `n`, group `g` as a
//! `(dg, ohw)` block.

use crate::backend::{Backend, GemmSpec, MatLayout};
use crate::ops::matmul::gemm_raw;
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend, Tensor};
use crate::Result;

/// `(n, c, h, w) -> (c*kh*kw, n*oh*ow)`, no autograd record.
pub(super) fn im2col_raw(x: &Tensor, g: &WindowGeom) -> Result<Tensor> {
    let st = on_backend!(x.storage(), s, be => be.im2col(s, g));
    Ok(Tensor::from_storage(
        st,
        Shape::from([g.row_len(), g.row_count()]),
    ))
}

/// `(c*kh*kw, n*oh*ow) -> (n, c, h, w)`, no autograd record.
pub(super) fn col2im_raw(cols: &Tensor, g: &WindowGeom) -> Result<Tensor> {
    let st = on_backend!(cols.storage(), s, be => be.col2im(s, g));
    Ok(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))
}

/// A grouped convolution `x (n, c, h, w)`, `weight (d, c/groups, kh, kw)` -> `(n, d, oh, ow)`
/// and the sizes its GEMMs are written in. The caller has validated the shapes.
#[derive(Clone, Copy, Debug)]
pub(super) struct GroupedConv {
    /// The op named in errors.
    op: &'static str,
    pub(super) g: WindowGeom,
    pub(super) groups: usize,
    /// Output channels.
    pub(super) d: usize,
    /// Output channels per group: `d / groups`.
    pub(super) dg: usize,
    /// Weights per output channel: `(c / groups) * kh * kw`.
    pub(super) cgkk: usize,
    /// Windows per image: `oh * ow`.
    pub(super) ohw: usize,
    /// Windows of the batch: `n * oh * ow`.
    pub(super) nohw: usize,
}

impl GroupedConv {
    pub(super) fn new(op: &'static str, g: WindowGeom, groups: usize, d: usize) -> Self {
        let ohw = g.oh * g.ow;
        GroupedConv {
            op,
            g,
            groups,
            d,
            dg: d / groups,
            cgkk: (g.c / groups) * g.kh * g.kw,
            ohw,
            nohw: g.n * ohw,
        }
    }

    /// `W_g (dg, cgkk)` for batch (image, group): the same for every image.
    fn weight_layout(&self) -> MatLayout {
        MatLayout::strided(0, self.dg * self.cgkk, self.cgkk, 1)
    }

    /// `cols_{g, n} (cgkk, ohw)` for batch (image, group).
    fn cols_layout(&self) -> MatLayout {
        MatLayout::strided(self.ohw, self.cgkk * self.nohw, self.nohw, 1)
    }

    /// `y[n, g*dg.., :] (dg, ohw)` for batch (image, group).
    fn out_layout(&self) -> MatLayout {
        MatLayout::strided(self.d * self.ohw, self.dg * self.ohw, self.ohw, 1)
    }

    /// `(batch, batch_inner)` of the products batched over (image, group).
    fn per_image_group(&self) -> (usize, usize) {
        (self.g.n * self.groups, self.groups)
    }

    /// One GEMM `a (m, k) x b (k, n)` per batch, `[a, b, c]` laid out as given, filling all of
    /// `shape`.
    fn gemm(
        &self,
        (a, b): (&Tensor, &Tensor),
        (batch, batch_inner): (usize, usize),
        (m, n, k): (usize, usize, usize),
        [la, lb, lc]: [MatLayout; 3],
        shape: Shape,
    ) -> Result<Tensor> {
        let spec = GemmSpec {
            batch,
            batch_inner,
            m,
            n,
            k,
            a: la,
            b: lb,
            c: lc,
            c_len: shape.elem_count(),
        };
        gemm_raw(self.op, a, b, &spec, shape)
    }

    /// `weight (d, c/groups, kh, kw)`, `cols (c*kh*kw, n*oh*ow)` -> `y (n, d, oh, ow)`.
    pub(super) fn forward(&self, weight: &Tensor, cols: &Tensor) -> Result<Tensor> {
        let g = &self.g;
        // per (image, group): y_{n, g} (dg, ohw) = W_g (dg, cgkk) x cols_{g, n} (cgkk, ohw)
        self.gemm(
            (weight, cols),
            self.per_image_group(),
            (self.dg, self.ohw, self.cgkk),
            [self.weight_layout(), self.cols_layout(), self.out_layout()],
            Shape::from([g.n, self.d, g.oh, g.ow]),
        )
    }

    /// `gout (n, d, oh, ow)`, `weight` -> `grad_cols (c*kh*kw, n*oh*ow)`, the input gradient
    /// before col2im. `gout_{n, g}` is the `(dg, ohw)` block laid out as `y_{n, g}`.
    pub(super) fn input_grad_cols(&self, gout: &Tensor, weight: &Tensor) -> Result<Tensor> {
        // per (image, group): grad_cols_{g, n} (cgkk, ohw) = W_g^T (cgkk, dg) x gout_{n, g}
        self.gemm(
            (weight, gout),
            self.per_image_group(),
            (self.cgkk, self.ohw, self.dg),
            [
                self.weight_layout().t(),
                self.out_layout(),
                self.cols_layout(),
            ],
            Shape::from([self.g.row_len(), self.nohw]),
        )
    }

    /// `gout (n, d, oh, ow)`, `weight` -> the input gradient `(n, c, h, w)`.
    pub(super) fn input_grad(&self, gout: &Tensor, weight: &Tensor) -> Result<Tensor> {
        col2im_raw(&self.input_grad_cols(gout, weight)?, &self.g)
    }

    /// `gout (n, d, oh, ow)`, `cols (c*kh*kw, n*oh*ow)` -> the weight gradient
    /// `(d, c/groups, kh, kw)`.
    pub(super) fn weight_grad(&self, gout: &Tensor, cols: &Tensor) -> Result<Tensor> {
        let g = &self.g;
        let (d, dg, cgkk, nohw) = (self.d, self.dg, self.cgkk, self.nohw);
        // (d, n*ohw): each output channel's gradients of all images side by side, so one GEMM
        // per group sums over the whole batch.
        let gp = if g.n == 1 {
            gout.detach()
        } else {
            gout.reshape([g.n, d, self.ohw])?.permute(&[1, 0, 2])?
        };
        // per group: W_g grad (dg, cgkk) = gp_g (dg, n*ohw) x cols_g^T (n*ohw, cgkk)
        self.gemm(
            (&gp, cols),
            (self.groups, 1),
            (dg, cgkk, nohw),
            [
                MatLayout::strided(dg * nohw, 0, nohw, 1),
                MatLayout::strided(cgkk * nohw, 0, 1, nohw),
                MatLayout::strided(dg * cgkk, 0, cgkk, 1),
            ],
            Shape::from([d, g.c / self.groups, g.kh, g.kw]),
        )
    }
}
