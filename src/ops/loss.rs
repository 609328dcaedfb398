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
    let shift = logits.max_axis(1, true)?.detach();
    let z = logits.sub(&shift)?;
    let lse = z.exp()?.sum_axis(1, true)?.log()?; // (n, 1)
    let logp = z.sub(&lse)?;
    logp.mul(targets)?.sum_all()?.mul_scalar(-1.0 / n as f32)
}

/// One-hot rows `(n, classes)` for integer labels.
pub fn one_hot(labels: &[usize], classes: usize, device: &crate::Device) -> Result<Tensor> {
    ensure!(classes > 0, "one_hot", "need at least one class");
    ensure!(!labels.is_empty(), "one_hot", "no labels");
    let mut v = vec![0.0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        ensure!(
            l < classes,
            "one_hot",
            "label {l} at position {i} is not below {classes} classes"
        );
        v[i * classes + l] = 1.0;
    }
    Tensor::from_vec(v, [labels.len(), classes], device)
}

impl Tensor {
    /// Index of the largest value of each row of a 2-d tensor (first on ties), on the host.
    pub fn argmax_rows(&self) -> Result<Vec<usize>> {
        let (_, k) = self.shape().dims2()?;
        Ok(self
            .to_vec()?
            .chunks(k)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    })
                    .0
            })
            .collect())
    }
}
