//! Losses.

use crate::{ensure, Result, Tensor};

/// Mean squared error `mean((pred - target)^2)`; shapes must match.
pub fn mse_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    ensure!(
        pred.shape() == target.shape(),
        "mse_loss",
        "prediction {} and target {} differ in shape",
        pred.shape(),
        target.shape()
    );
    pred.sub(target)?.square()?.mean_all()
}

/// Cross entropy of `logits (n, classes)` against one-hot or probability `targets (n, classes)`,
/// averaged over the batch (`F.cross_entropy` with probability targets). Stable: the row maximum
/// is subtracted before `exp`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (n, _) = logits.shape().dims2().map_err(|_| crate::Error::Invalid {
        op: "cross_entropy",
        msg: format!("logits must be (n, classes), got {}", logits.shape()),
    })?;
    ensure!(
        logits.shape() == targets.shape(),
        "cross_entropy",
        "logits {} and targets {} differ in shape",
        logits.shape(),
        targets.shape()
    );
    // The shift is a constant for the gradient (softmax is shift-invariant).
    let shift = crate::no_grad(|| logits.row_max())?;
    let z = logits.sub(&shift)?;
    let lse = z.exp()?.sum_axis(1, true)?.log()?; // (n, 1)
    let logp = z.sub(&lse)?;
    logp.mul(targets)?.sum_all()?.mul_scalar(-1.0 / n as f32)
}

impl Tensor {
    /// Row maxima of a 2-d tensor as `(n, 1)`, computed on the host (used only as a constant
    /// shift, so no gradient).
    pub(crate) fn row_max(&self) -> Result<Tensor> {
        let (n, k) = self.shape().dims2()?;
        let v = self.to_vec()?;
        let m: Vec<f32> = v
            .chunks(k)
            .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .collect();
        Tensor::from_vec(m, [n, 1], &self.device())
    }
}
