//! Activations built from the elementwise and reduction ops (so both devices and autograd come
//! with them): softmax and log_softmax along an axis, SiLU, GELU exact and in its tanh form.

use crate::{ensure, Result, Tensor};

impl Tensor {
    /// `F.log_softmax(x, dim)`: `x - max - log(sum(exp(x - max)))` along `axis` (the maximum is a
    /// constant for the gradient: the result does not depend on the shift).
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor> {
        ensure!(
            axis < self.rank(),
            "log_softmax",
            "axis {axis} is out of range for shape {}",
            self.shape()
        );
        if self.elem_count() == 0 {
            // nothing to normalize: an empty result, as PyTorch's
            return self.mul_scalar(1.0);
        }
        let z = self.sub(&self.max_axis(axis, true)?.detach())?;
        let lse = z.exp()?.sum_axis(axis, true)?.log()?;
        z.sub(&lse)
    }

    /// `F.softmax(x, dim)`: `exp(log_softmax(x, axis))`.
    pub fn softmax(&self, axis: usize) -> Result<Tensor> {
        ensure!(
            axis < self.rank(),
            "softmax",
            "axis {axis} is out of range for shape {}",
            self.shape()
        );
        self.log_softmax(axis)?.exp()
    }

    /// `F.silu`: `x * sigmoid(x)`.
    pub fn silu(&self) -> Result<Tensor> {
        self.mul(&self.sigmoid()?)
    }

    /// `F.gelu(x)`: `x/2 * (1 + erf(x / sqrt(2)))`.
    pub fn gelu(&self) -> Result<Tensor> {
        let cdf = self.mul_scalar(std::f32::consts::FRAC_1_SQRT_2)?.erf()?.add_scalar(1.0)?;
        self.mul_scalar(0.5)?.mul(&cdf)
    }

    /// `F.gelu(x, approximate='tanh')`: `x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`.
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        const K: f32 = 0.797_884_6; // sqrt(2 / pi)
        let inner = self.add(&self.powf(3.0)?.mul_scalar(0.044715)?)?.mul_scalar(K)?;
        self.mul_scalar(0.5)?.mul(&inner.tanh()?.add_scalar(1.0)?)
    }
}
