//! A grouped 2-D convolution as the backends see it, and its im2col-GEMM products: the default
//! implementation of the convolution primitives, which a backend may replace with its own.
//!
//! Every product is one batched GEMM over (image, group) or over groups, reading the operands
//! in place through strides: `cols (c*kh*kw, n*oh*ow)` holds group `g` in rows
//! `g*cgkk..(g+1)*cgkk` and image `n` in columns `n*ohw..(n+1)*ohw`, `weight (d, cgkk)` holds
//! group `g` in rows `g*dg..(g+1)*dg`, and `y (n, d, oh, ow)` holds image `n`, group `g` as a
//! `(dg, ohw)` block.

use super::{Backend, BinaryOp, BroadcastSpec, GemmSpec, MatLayout, StridedSpec};
use crate::shape::WindowGeom;
use crate::Result;

/// `x (n, c, h, w)`, `weight (d, c/groups, kh, kw)` -> `(n, d, oh, ow)`. The ops layer has
/// validated the shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub g: WindowGeom,
    pub groups: usize,
    /// Output channels.
    pub d: usize,
}

impl ConvSpec {
    /// The same convolution over the geometry `g` (a band of rows of a split image).
    pub fn with_g(&self, g: &WindowGeom) -> Self {
        ConvSpec { g: *g, ..*self }
    }
    /// Output channels per group.
    pub fn dg(&self) -> usize {
        self.d / self.groups
    }
    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.g.c / self.groups
    }
    /// Weights per output channel: `(c / groups) * kh * kw`.
    pub fn cgkk(&self) -> usize {
        self.cg() * self.g.kh * self.g.kw
    }
    /// Windows per image: `oh * ow`.
    pub fn ohw(&self) -> usize {
        self.g.oh * self.g.ow
    }
    /// Elements of the output `(n, d, oh, ow)`.
    pub fn out_len(&self) -> usize {
        self.g.n * self.d * self.ohw()
    }

    /// A stride-1 input gradient as a forward convolution: of the output gradient
    /// `(n, d, oh, ow)`, padded by `dilation * (k - 1) - padding` at the top and left, with the
    /// weights transposed per group and flipped, giving `(n, c, h, w)`. `None` for other strides
    /// or for a padding past the dilated kernel's extent.
    pub fn input_grad_as_forward(&self) -> Option<ConvSpec> {
        let g = &self.g;
        if g.sh != 1 || g.sw != 1 {
            return None;
        }
        let pad_top = (g.dh * g.kh.saturating_sub(1)).checked_sub(g.pad_top)?;
        let pad_left = (g.dw * g.kw.saturating_sub(1)).checked_sub(g.pad_left)?;
        let t =
            WindowGeom { c: self.d, h: g.oh, w: g.ow, pad_top, pad_left, oh: g.h, ow: g.w, ..*g };
        Some(ConvSpec { g: t, groups: self.groups, d: g.c })
    }

    /// `W_g (dg, cgkk)` for batch (image, group): the same for every image.
    fn weight_layout(&self) -> MatLayout {
        MatLayout::strided(0, self.dg() * self.cgkk(), self.cgkk(), 1)
    }
    /// `cols_{g, n} (cgkk, ohw)` for batch (image, group).
    fn cols_layout(&self) -> MatLayout {
        let nohw = self.g.n * self.ohw();
        MatLayout::strided(self.ohw(), self.cgkk() * nohw, nohw, 1)
    }
    /// `y[n, g*dg.., :] (dg, ohw)` for batch (image, group).
    fn out_layout(&self) -> MatLayout {
        MatLayout::strided(self.d * self.ohw(), self.dg() * self.ohw(), self.ohw(), 1)
    }

    /// A GEMM batched over (image, group): `(m, n, k)` and the `[a, b, c]` layouts.
    fn per_image_group(&self, (m, n, k): (usize, usize, usize), l: [MatLayout; 3]) -> GemmSpec {
        let [a, b, c] = l;
        GemmSpec {
            batch: self.g.n * self.groups,
            batch_inner: self.groups,
            m,
            n,
            k,
            a,
            b,
            c,
            c_len: 0, // set by the caller
        }
    }

    /// The forward product per (image, group): `y_{n, g} (dg, ohw) = W_g (dg, cgkk) x
    /// cols_{g, n} (cgkk, ohw)`, `cols` laid out as im2col writes it.
    pub fn forward_gemm(&self) -> GemmSpec {
        let mut spec = self.per_image_group(
            (self.dg(), self.ohw(), self.cgkk()),
            [self.weight_layout(), self.cols_layout(), self.out_layout()],
        );
        spec.c_len = self.out_len();
        spec
    }

    /// The weight gradient per group: `W_g grad (dg, cgkk) = gp_g (dg, n*ohw) x cols_g^T
    /// (n*ohw, cgkk)`, `gp (d, n*ohw)` the output gradient with images side by side.
    pub fn weight_grad_gemm(&self) -> GemmSpec {
        let (dg, cgkk) = (self.dg(), self.cgkk());
        let nohw = self.g.n * self.ohw();
        GemmSpec {
            batch: self.groups,
            batch_inner: 1,
            m: dg,
            n: cgkk,
            k: nohw,
            a: MatLayout::strided(dg * nohw, 0, nohw, 1),
            b: MatLayout::strided(cgkk * nohw, 0, 1, nohw),
            c: MatLayout::strided(dg * cgkk, 0, cgkk, 1),
            c_len: self.d * cgkk,
        }
    }
}

/// conv2d's forward as im2col and one GEMM per (image, group), then the bias.
pub(crate) fn forward_by_im2col<B: Backend + ?Sized>(
    be: &B, x: &B::Storage, w: &B::Storage, bias: Option<&B::Storage>, s: &ConvSpec,
) -> Result<B::Storage> {
    let cols = be.im2col(x, &s.g)?; // (c*kh*kw, n*oh*ow)
    let y = be.gemm(w, &cols, &s.forward_gemm())?; // (n, d, oh, ow)
    add_bias(be, y, bias, s)
}

/// `y (n, d, oh, ow) + bias (d)`.
pub(crate) fn add_bias<B: Backend + ?Sized>(
    be: &B, y: B::Storage, bias: Option<&B::Storage>, s: &ConvSpec,
) -> Result<B::Storage> {
    let Some(b) = bias else {
        return Ok(y);
    };
    let (n, d, oh, ow) = (s.g.n, s.d, s.g.oh, s.g.ow);
    let bspec = BroadcastSpec {
        out: vec![n, d, oh, ow],
        a_strides: vec![d * oh * ow, oh * ow, ow, 1],
        b_strides: vec![0, 1, 0, 0],
    };
    be.binary(&y, b, BinaryOp::Add, &bspec)
}

/// conv2d's input gradient: one GEMM per (image, group) into columns, then col2im.
pub(crate) fn input_grad_by_col2im<B: Backend + ?Sized>(
    be: &B, gout: &B::Storage, w: &B::Storage, s: &ConvSpec,
) -> Result<B::Storage> {
    // per (image, group): grad_cols_{g, n} (cgkk, ohw) = W_g^T (cgkk, dg) x gout_{n, g}
    let mut spec = s.per_image_group(
        (s.cgkk(), s.ohw(), s.dg()),
        [s.weight_layout().t(), s.out_layout(), s.cols_layout()],
    );
    spec.c_len = s.g.row_len() * s.g.row_count();
    let cols = be.gemm(w, gout, &spec)?;
    be.col2im(&cols, &s.g)
}

/// conv2d's weight gradient: im2col, then one GEMM per group over the whole batch.
pub(crate) fn weight_grad_by_im2col<B: Backend + ?Sized>(
    be: &B, x: &B::Storage, gout: &B::Storage, s: &ConvSpec,
) -> Result<B::Storage> {
    let (n, d, ohw) = (s.g.n, s.d, s.ohw());
    let cols = be.im2col(x, &s.g)?;
    // (d, n*ohw): each output channel's gradients of all images side by side, so one GEMM
    // per group sums over the whole batch.
    let permuted;
    let gp = if n == 1 {
        gout
    } else {
        permuted = be.copy_strided(
            gout,
            &StridedSpec {
                out: vec![d, n, ohw],
                strides: vec![ohw as isize, (d * ohw) as isize, 1],
                offset: 0,
            },
        )?;
        &permuted
    };
    be.gemm(gp, &cols, &s.weight_grad_gemm())
}
