//! Matrix products (2-d and batched, with transposed operands) and the linear layer function.

use crate::backend::{Backend, BinaryOp, GemmSpec, MatLayout};
use crate::shape::Shape;
use crate::tensor::{on_backend2, same_backend, Tensor};
use crate::{ensure, Error, Result};

/// Runs a strided GEMM after checking that every layout stays inside its buffer.
pub(crate) fn gemm_raw(
    op: &'static str, a: &Tensor, b: &Tensor, spec: &GemmSpec, shape: Shape,
) -> Result<Tensor> {
    a.check_same_device(op, b)?;
    if spec.batch == 0 || spec.m == 0 || spec.n == 0 || spec.k == 0 {
        // a sum over nothing: zeros (and nothing at all for an empty result)
        return Tensor::zeros(shape, &a.device());
    }
    let inside = |l: &MatLayout, rows: usize, cols: usize, len: usize| {
        l.extent(spec.batch, spec.batch_inner, rows, cols).is_some_and(|e| e <= len)
    };
    if !(inside(&spec.a, spec.m, spec.k, a.elem_count())
        && inside(&spec.b, spec.k, spec.n, b.elem_count())
        && inside(&spec.c, spec.m, spec.n, spec.c_len)
        && spec.c_len == shape.elem_count())
    {
        return Err(Error::Invalid {
            op,
            msg: format!("internal GEMM layout out of bounds: {spec:?}"),
        });
    }
    let st = on_backend2!(op, a.storage(), b.storage(), x, y, be => be.gemm(x, y, spec));
    Ok(Tensor::from_storage(st, shape))
}

/// Batch count, rows and columns of a 2-d or 3-d matmul operand.
fn mat_dims(op: &'static str, t: &Tensor, which: &str) -> Result<(Option<usize>, usize, usize)> {
    match *t.dims() {
        [r, c] => Ok((None, r, c)),
        [b, r, c] => Ok((Some(b), r, c)),
        _ => Err(Error::Invalid {
            op,
            msg: format!("{which} must be 2-d or 3-d, got shape {}", t.shape()),
        }),
    }
}

impl Tensor {
    /// Matrix product: `(m, k) x (k, n)`, batched `(b, m, k) x (b, k, n)`, or a 3-d operand with
    /// a 2-d one shared by every batch.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) x op(rhs)` where `op` transposes the last two axes when its flag is set; the
    /// transposes are read through strides, never copied.
    pub fn matmul_t(&self, rhs: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.check_same_device(OP, rhs)?;
        let (ba, ra, ca) = mat_dims(OP, self, "lhs")?;
        let (bb, rb, cb) = mat_dims(OP, rhs, "rhs")?;
        let (m, k) = if trans_a { (ca, ra) } else { (ra, ca) };
        let (k2, n) = if trans_b { (cb, rb) } else { (rb, cb) };
        ensure!(
            k == k2,
            OP,
            "inner dimensions differ: lhs {}{} and rhs {}{}",
            self.shape(),
            if trans_a { "^T" } else { "" },
            rhs.shape(),
            if trans_b { "^T" } else { "" }
        );
        // A missing or size-1 batch broadcasts against the other operand's, as in PyTorch.
        let batch = match (ba, bb) {
            (Some(x), Some(y)) => {
                ensure!(
                    x == y || x == 1 || y == 1,
                    OP,
                    "batch sizes differ: {} and {}",
                    self.shape(),
                    rhs.shape()
                );
                Some(x.max(y))
            }
            (x, y) => x.or(y),
        };
        let nb = batch.unwrap_or(1);
        crate::shape::numel(OP, &[nb, m, n])?;
        let layout = |bt: Option<usize>, r: usize, c: usize, t: bool| {
            let mut l = MatLayout::row_major(r, c);
            if bt.unwrap_or(1) != nb {
                l.batch_outer_stride = 0;
            }
            if t {
                l.t()
            } else {
                l
            }
        };
        let spec = GemmSpec {
            batch: nb,
            batch_inner: 1,
            m,
            n,
            k,
            a: layout(ba, ra, ca, trans_a),
            b: layout(bb, rb, cb, trans_b),
            c: MatLayout::row_major(m, n),
            c_len: nb * m * n,
        };
        let shape = match batch {
            Some(b) => Shape::from([b, m, n]),
            None => Shape::from([m, n]),
        };
        let y = gemm_raw(OP, self, rhs, &spec, shape)?;
        let (a, b) = (self.clone(), rhs.clone());
        Ok(y.attach(&[self, rhs], move |g| {
            let ga = if trans_a {
                b.matmul_t(g, trans_b, true)?
            } else {
                g.matmul_t(&b, false, !trans_b)?
            };
            let gb = if trans_b {
                g.matmul_t(&a, true, trans_a)?
            } else {
                a.matmul_t(g, !trans_a, false)?
            };
            // An operand shared across batches (2-d, or batch 1) gets the sum over the batch.
            Ok(vec![Some(ga.sum_to(a.shape())?), Some(gb.sum_to(b.shape())?)])
        }))
    }

    /// `F.linear`: `x (n, in)`, `weight (out, in)`, `bias (out)` -> `x weight^T + bias`, the bias
    /// added in the product's stores where the backend can.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        self.linear_act(weight, bias, false)
    }

    /// `F.relu(F.linear(x, weight, bias))` as one op: the bias and the ReLU in the product's
    /// stores where the backend can, with the results of the ops apart, bit for bit.
    pub fn linear_relu(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        self.linear_act(weight, bias, true)
    }

    fn linear_act(&self, weight: &Tensor, bias: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        const OP: &str = "linear";
        let (n, fin) = self.shape().dims2().map_err(|_| Error::Invalid {
            op: OP,
            msg: format!("input must be (n, in), got {}", self.shape()),
        })?;
        let (fout, win) = weight.shape().dims2().map_err(|_| Error::Invalid {
            op: OP,
            msg: format!("weight must be (out, in), got {}", weight.shape()),
        })?;
        ensure!(
            fin == win,
            OP,
            "input has {fin} features but weight {} expects {win}",
            weight.shape()
        );
        if let Some(b) = bias {
            ensure!(b.dims() == [fout], OP, "bias must have shape [{fout}], got {}", b.shape());
            self.check_same_device(OP, b)?;
        }
        if n == 0 || fin == 0 {
            // nothing to fuse: the ops apart handle empty products
            let y = self.matmul_t(weight, false, true)?;
            let y = match bias {
                Some(b) => y.add(b)?,
                None => y,
            };
            return if relu { y.relu() } else { Ok(y) };
        }
        self.check_same_device(OP, weight)?;
        crate::shape::numel(OP, &[n, fout])?;
        let spec = GemmSpec {
            batch: 1,
            batch_inner: 1,
            m: n,
            n: fout,
            k: fin,
            a: MatLayout::row_major(n, fin),
            b: MatLayout::row_major(fout, fin).t(),
            c: MatLayout::row_major(n, fout),
            c_len: n * fout,
        };
        let st = on_backend2!(OP, self.storage(), weight.storage(), x, w, be => {
            let b = bias.map(|b| same_backend(OP, x, b)).transpose()?;
            be.gemm_bias_relu(x, w, &spec, b, relu)
        });
        let y = Tensor::from_storage(st, Shape::from([n, fout]));
        let (x, w) = (self.clone(), weight.clone());
        let kept = relu.then(|| y.detach());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let has_bias = bias.is_some();
        Ok(y.attach(&inputs, move |g| {
            let g = match &kept {
                Some(y) => y.binary_raw(g, BinaryOp::ReluBackward, "linear_relu")?,
                None => g.clone(),
            };
            // as matmul's and add's rules: g w, g^T x, and g summed over the rows
            let mut grads =
                vec![Some(g.matmul_t(&w, false, false)?), Some(g.matmul_t(&x, true, false)?)];
            if has_bias {
                grads.push(Some(g.sum_to(&Shape::from([fout]))?));
            }
            Ok(grads)
        }))
    }
}
