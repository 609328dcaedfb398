//! Elementwise arithmetic with broadcasting, and the activations.

use crate::backend::{Backend, BinaryOp, BroadcastSpec, UnaryOp};
use crate::shape::{broadcast_shapes, broadcast_strides};
use crate::tensor::{on_backend, on_backend2, Tensor};
use crate::{ensure, Result};

impl Tensor {
    /// `op(x)` with no autograd record.
    pub(crate) fn unary_raw(&self, op: UnaryOp) -> Result<Tensor> {
        let n = self.elem_count();
        let st = on_backend!(self.storage(), x, be => be.unary(x, n, op));
        Ok(Tensor::from_storage(st, self.shape().clone()))
    }

    /// `op(a, b)` with broadcasting and no autograd record.
    pub(crate) fn binary_raw(
        &self, rhs: &Tensor, op: BinaryOp, name: &'static str,
    ) -> Result<Tensor> {
        self.check_same_device(name, rhs)?;
        let out = broadcast_shapes(name, self.shape(), rhs.shape())?;
        let spec = BroadcastSpec {
            a_strides: broadcast_strides(self.shape(), &out),
            b_strides: broadcast_strides(rhs.shape(), &out),
            out: out.dims().to_vec(),
        };
        let st = on_backend2!(name, self.storage(), rhs.storage(), a, b, be => be.binary(a, b, op, &spec));
        Ok(Tensor::from_storage(st, out))
    }

    /// A unary op whose gradient is `rule(x, y, grad)`.
    fn unary_op(
        &self, op: UnaryOp,
        rule: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Result<Tensor> {
        let y = self.unary_raw(op)?;
        let (x, yc) = (self.clone(), y.clone());
        Ok(y.attach(&[self], move |g| Ok(vec![Some(rule(&x, &yc, g)?)])))
    }

    /// A unary op whose gradient is the binary op `grad(saved, upstream)`, `saved` its input
    /// or its output.
    fn unary_with_backward(
        &self, op: UnaryOp, saved: Saved, grad: BinaryOp, name: &'static str,
    ) -> Result<Tensor> {
        self.unary_op(op, move |x, y, g| {
            let s = match saved {
                Saved::Input => x,
                Saved::Output => y,
            };
            s.binary_raw(g, grad, name)
        })
    }

    /// `-x`.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Neg, |_, _, g| g.unary_raw(UnaryOp::Neg))
    }
    /// `x^2`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Square, |x, _, g| {
            g.binary_raw(x, BinaryOp::Mul, "square")?.unary_raw(UnaryOp::MulScalar(2.0))
        })
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sqrt, |_, y, g| {
            g.binary_raw(y, BinaryOp::Div, "sqrt")?.unary_raw(UnaryOp::MulScalar(0.5))
        })
    }
    /// `e^x`.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary_with_backward(UnaryOp::Exp, Saved::Output, BinaryOp::Mul, "exp")
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Log, |x, _, g| g.binary_raw(x, BinaryOp::Div, "log"))
    }
    /// `max(x, 0)`; the gradient at exactly 0 is 0, as in PyTorch.
    pub fn relu(&self) -> Result<Tensor> {
        self.unary_with_backward(UnaryOp::Relu, Saved::Input, BinaryOp::ReluBackward, "relu")
    }
    /// `x` where positive, `slope * x` elsewhere.
    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        ensure!(slope.is_finite(), "leaky_relu", "negative slope must be finite, got {slope}");
        let grad = BinaryOp::LeakyReluBackward(slope);
        self.unary_with_backward(UnaryOp::LeakyRelu(slope), Saved::Input, grad, "leaky_relu")
    }
    /// `1 / (1 + e^-x)`.
    pub fn sigmoid(&self) -> Result<Tensor> {
        let grad = BinaryOp::SigmoidBackward;
        self.unary_with_backward(UnaryOp::Sigmoid, Saved::Output, grad, "sigmoid")
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary_with_backward(UnaryOp::Tanh, Saved::Output, BinaryOp::TanhBackward, "tanh")
    }
    /// `torch.erf`; its gradient is `2/sqrt(pi) * exp(-x^2)`.
    pub fn erf(&self) -> Result<Tensor> {
        const TWO_OVER_SQRT_PI: f32 = std::f32::consts::FRAC_2_SQRT_PI;
        self.unary_op(UnaryOp::Erf, |x, _, g| {
            let d = x
                .unary_raw(UnaryOp::Square)?
                .unary_raw(UnaryOp::MulScalar(-1.0))?
                .unary_raw(UnaryOp::Exp)?
                .unary_raw(UnaryOp::MulScalar(TWO_OVER_SQRT_PI))?;
            d.binary_raw(g, BinaryOp::Mul, "erf")
        })
    }
    /// `x + s`.
    pub fn add_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary_op(UnaryOp::AddScalar(s), |_, _, g| Ok(g.clone()))
    }
    /// `x - s`.
    pub fn sub_scalar(&self, s: f32) -> Result<Tensor> {
        self.add_scalar(-s)
    }
    /// `x * s`.
    pub fn mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary_op(UnaryOp::MulScalar(s), move |_, _, g| g.unary_raw(UnaryOp::MulScalar(s)))
    }
    /// `x / s`; `s` must not be zero.
    pub fn div_scalar(&self, s: f32) -> Result<Tensor> {
        ensure!(s != 0.0, "div_scalar", "division by zero");
        self.mul_scalar(1.0 / s)
    }
    /// `x ^ p`.
    pub fn powf(&self, p: f32) -> Result<Tensor> {
        ensure!(p.is_finite(), "powf", "exponent must be finite, got {p}");
        self.unary_op(UnaryOp::PowScalar(p), move |x, _, g| {
            if p == 0.0 {
                // d/dx x^0 = 0 everywhere (p * x^-1 would give NaN at 0)
                return g.unary_raw(UnaryOp::MulScalar(0.0));
            }
            let d = x.unary_raw(UnaryOp::PowScalar(p - 1.0))?.unary_raw(UnaryOp::MulScalar(p))?;
            g.binary_raw(&d, BinaryOp::Mul, "powf")
        })
    }

    /// A broadcast binary op whose gradients are `rule(a, b, grad)` before reduction to each
    /// operand's shape.
    fn binary_op(
        &self, rhs: &Tensor, op: BinaryOp, name: &'static str,
        rule: impl Fn(&Tensor, &Tensor, &Tensor, Need) -> Result<Grads2> + Send + Sync + 'static,
    ) -> Result<Tensor> {
        let y = self.binary_raw(rhs, op, name)?;
        let (a, b) = (self.clone(), rhs.clone());
        Ok(y.attach(&[self, rhs], move |g| {
            // only the gradients of inputs that record one are computed
            let need = Need(a.requires_grad(), b.requires_grad());
            let (ga, gb) = rule(&a, &b, g, need)?;
            Ok(vec![
                ga.map(|t| t.sum_to(a.shape())).transpose()?,
                gb.map(|t| t.sum_to(b.shape())).transpose()?,
            ])
        }))
    }

    /// `self + rhs` with broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Add, "add", |_, _, g, need| {
            need.each(|| Ok(g.clone()), || Ok(g.clone()))
        })
    }
    /// `self - rhs` with broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Sub, "sub", |_, _, g, need| {
            need.each(|| Ok(g.clone()), || g.unary_raw(UnaryOp::Neg))
        })
    }
    /// `self * rhs` with broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Mul, "mul", |a, b, g, need| {
            need.each(
                || g.binary_raw(b, BinaryOp::Mul, "mul"),
                || g.binary_raw(a, BinaryOp::Mul, "mul"),
            )
        })
    }
    /// `self / rhs` with broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Div, "div", |a, b, g, need| {
            let ga = g.binary_raw(b, BinaryOp::Div, "div")?;
            // d(a/b)/db = -a / b^2 = -(g/b) * a / b
            let gb = || {
                ga.binary_raw(a, BinaryOp::Mul, "div")?
                    .binary_raw(b, BinaryOp::Div, "div")?
                    .unary_raw(UnaryOp::Neg)
            };
            need.each(|| Ok(ga.clone()), gb)
        })
    }
}

/// The gradients of a binary op's two inputs, `None` where not needed.
type Grads2 = (Option<Tensor>, Option<Tensor>);

/// Which of a binary op's two inputs need a gradient.
#[derive(Clone, Copy)]
struct Need(bool, bool);

impl Need {
    /// Runs each input's rule only where that input needs it.
    fn each(
        self, first: impl FnOnce() -> Result<Tensor>, second: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Grads2> {
        Ok((self.0.then(first).transpose()?, self.1.then(second).transpose()?))
    }
}

/// Which tensor a unary op's backward reads besides the upstream gradient.
#[derive(Clone, Copy)]
enum Saved {
    Input,
    Output,
}
