//! A linear layer's product and epilogue as separate passes: the default a backend replaces
//! where it can run the epilogue in the product's stores.

use super::{Backend, BinaryOp, BroadcastSpec, GemmSpec, UnaryOp};
use crate::Result;

/// `gemm(a, b)` for one `(m, n)` row-major product, then `bias (n)` added to every row, then a
/// ReLU where `relu` is set: the same passes, in the same order, as `linear` then `relu`.
pub(crate) fn gemm_bias_relu_unfused<B: Backend + ?Sized>(
    be: &B, a: &B::Storage, b: &B::Storage, s: &GemmSpec, bias: Option<&B::Storage>, relu: bool,
) -> Result<B::Storage> {
    let mut y = be.gemm(a, b, s)?; // (m, n)
    if let Some(bias) = bias {
        let rows =
            BroadcastSpec { out: vec![s.m, s.n], a_strides: vec![s.n, 1], b_strides: vec![0, 1] };
        y = be.binary(&y, bias, BinaryOp::Add, &rows)?;
    }
    if relu {
        y = be.unary(&y, s.c_len, UnaryOp::Relu)?;
    }
    Ok(y)
}
