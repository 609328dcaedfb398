//! The backends' im2col and col2im as tensors, without autograd records: the public `im2row`
//! and `row2im` are built on them. Convolution itself is a backend primitive
//! (`Backend::conv2d` and its gradients).

use crate::backend::Backend;
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend, Tensor};
use crate::Result;

/// `(n, c, h, w) -> (c*kh*kw, n*oh*ow)`, no autograd record.
pub(super) fn im2col_raw(x: &Tensor, g: &WindowGeom) -> Result<Tensor> {
    let st = on_backend!(x.storage(), s, be => be.im2col(s, g));
    Ok(Tensor::from_storage(st, Shape::from([g.row_len(), g.row_count()])))
}

/// `(c*kh*kw, n*oh*ow) -> (n, c, h, w)`, no autograd record.
pub(super) fn col2im_raw(cols: &Tensor, g: &WindowGeom) -> Result<Tensor> {
    let st = on_backend!(cols.storage(), s, be => be.col2im(s, g));
    Ok(Tensor::from_storage(st, Shape::from([g.n, g.c, g.h, g.w])))
}
