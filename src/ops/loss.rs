//! Losses.

use crate::{ensure, Result, Tensor};

/// Mean squared error `mean((pred - target)^2)`; shapes must match.
pub fn mse_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    mse_loss_with(pred, target, Reduction::Mean)
}

/// `F.mse_loss(pred, target, reduction=...)`: the mean or the sum of `(pred - target)^2`.
pub fn mse_loss_with(pred: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    ensure!(
        pred.shape() == target.shape(),
        "mse_loss",
        "prediction {} and target {} differ in shape",
        pred.shape(),
        target.shape()
    );
    let sq = pred.sub(target)?.square()?;
    match reduction {
        Reduction::Mean => sq.mean_all(),
        Reduction::Sum => sq.sum_all(),
    }
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

/// How a loss reduces over the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over the batch.
    #[default]
    Mean,
    /// The sum over the batch.
    Sum,
}

/// Options of [`cross_entropy_labels`]: PyTorch's `label_smoothing` and `reduction`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropyOptions {
    /// In `[0, 1]`: the target becomes `(1 - s) * one_hot + s / classes`.
    pub label_smoothing: f32,
    /// Mean (the default) or sum over the batch.
    pub reduction: Reduction,
}

/// `F.cross_entropy(logits, labels, label_smoothing=s, reduction=...)` for `logits (n, classes)`
/// and class indices: per row `-sum_c q_c * log_softmax(logits)_c` with `q = (1 - s) * one_hot +
/// s / classes`, then the batch mean or sum.
pub fn cross_entropy_labels(
    logits: &Tensor, labels: &[usize], opts: CrossEntropyOptions,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let (n, classes) = logits.shape().dims2().map_err(|_| crate::Error::Invalid {
        op: OP,
        msg: format!("logits must be (n, classes), got {}", logits.shape()),
    })?;
    ensure!(labels.len() == n, OP, "{} labels for {n} rows of logits", labels.len());
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(crate::Error::Invalid {
            op: OP,
            msg: format!("label {l} at position {i} is not below {classes} classes"),
        });
    }
    let s = opts.label_smoothing;
    ensure!((0.0..=1.0).contains(&s), OP, "label_smoothing must lie in [0, 1], got {s}");
    let q = one_hot(labels, classes, &logits.device())?
        .mul_scalar(1.0 - s)?
        .add_scalar(s / classes as f32)?;
    let total = logits.log_softmax(1)?.mul(&q)?.sum_all()?.neg()?;
    match opts.reduction {
        Reduction::Sum => Ok(total),
        Reduction::Mean => total.mul_scalar(1.0 / n as f32),
    }
}

/// One-hot rows `(n, classes)` for integer labels.
pub fn one_hot(labels: &[usize], classes: usize, device: &crate::Device) -> Result<Tensor> {
    ensure!(classes > 0, "one_hot", "need at least one class");
    let mut v = vec![0.0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        ensure!(l < classes, "one_hot", "label {l} at position {i} is not below {classes} classes");
        v[i * classes + l] = 1.0;
    }
    Tensor::from_vec(v, [labels.len(), classes], device)
}

impl Tensor {
    /// Index of the largest value of each row of a 2-d tensor (first on ties, a NaN counting as
    /// the largest, as [`Tensor::argmax`]), on the host.
    pub fn argmax_rows(&self) -> Result<Vec<usize>> {
        let (_, k) = self.shape().dims2()?;
        Ok(self
            .to_vec()?
            .chunks(k)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv || (v.is_nan() && !bv.is_nan()) {
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
