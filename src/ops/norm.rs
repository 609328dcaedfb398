//! `F.batch_norm` over `(n, c, h, w)`, composed of existing ops so both devices and autograd come
//! with it; `nn::BatchNorm2d` is this with its statistics kept.

use crate::{ensure, Error, Result, Tensor};

/// Options of [`batch_norm2d`], with `F.batch_norm`'s defaults (evaluation, momentum 0.1,
/// eps 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalize by the batch's statistics and update the running ones, else by the running ones.
    pub training: bool,
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            training: false,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// What [`batch_norm2d`] gives: the output and the running statistics after the call (updated in
/// training, the inputs in evaluation; constants for autograd either way).
pub struct BatchNormOutput {
    pub output: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

/// Mean over axes 0, 2 and 3 of `(n, c, h, w)`, kept as `(1, c, 1, 1)`.
fn channel_mean(x: &Tensor) -> Result<Tensor> {
    x.mean_axis(3, true)?.mean_axis(2, true)?.mean_axis(0, true)
}

/// `F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)` for
/// `x (n, c, h, w)` and per-channel `(c)` statistics and affine parameters. Training
/// normalizes by the batch's mean and biased variance and moves the running statistics toward
/// the batch's by `momentum`, the variance unbiased, as PyTorch does.
pub fn batch_norm2d(
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    opts: &BatchNormOptions,
) -> Result<BatchNormOutput> {
    const OP: &str = "batch_norm2d";
    let (n, c, h, w) = x.dims4().map_err(|_| Error::Invalid {
        op: OP,
        msg: format!("input must be (n, c, h, w), got {}", x.shape()),
    })?;
    let named = [
        ("running_mean", Some(running_mean)),
        ("running_var", Some(running_var)),
        ("weight", weight),
        ("bias", bias),
    ];
    for (name, t) in named {
        if let Some(t) = t {
            ensure!(
                t.dims() == [c],
                OP,
                "{name} must be ({c}) for an input of {c} channels, got {}",
                t.shape()
            );
        }
    }
    let (m, eps) = (opts.momentum, opts.eps);
    ensure!(m.is_finite(), OP, "momentum must be finite, got {m}");
    ensure!(
        eps.is_finite() && eps >= 0.0,
        OP,
        "eps must be finite and non-negative, got {eps}"
    );
    let per = |t: &Tensor| t.reshape([1, c, 1, 1]);
    let (mean, var, new_mean, new_var) = if opts.training {
        let count = n * h * w;
        ensure!(
            count > 1,
            OP,
            "expected more than 1 value per channel when training, got input {}",
            x.shape()
        );
        let mean = channel_mean(x)?;
        let var = channel_mean(&x.sub(&mean)?.square()?)?;
        let unbiased = var.detach().mul_scalar(count as f32 / (count - 1) as f32)?;
        let flat = |t: &Tensor| t.reshape([c]);
        let moved = |old: &Tensor, batch: &Tensor| {
            old.detach()
                .mul_scalar(1.0 - m)?
                .add(&flat(batch)?.mul_scalar(m)?)
        };
        let new_mean = moved(running_mean, &mean.detach())?;
        let new_var = moved(running_var, &unbiased)?;
        (mean, var, new_mean, new_var)
    } else {
        (
            per(&running_mean.detach())?,
            per(&running_var.detach())?,
            running_mean.detach(),
            running_var.detach(),
        )
    };
    let mut y = x.sub(&mean)?.div(&var.add_scalar(eps)?.sqrt()?)?;
    if let Some(wt) = weight {
        y = y.mul(&per(wt)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&per(b)?)?;
    }
    Ok(BatchNormOutput {
        output: y,
        running_mean: new_mean,
        running_var: new_var,
    })
}
