//! `F.batch_norm` over `(n, c, h, w)` on the backends' per-channel primitives (a sum, a dot
//! product and an affine combination per channel), its gradient written out in the same
//! primitives; `nn::BatchNorm2d` is this with its statistics kept.

use crate::backend::Backend;
use crate::shape::Shape;
use crate::tensor::{on_backend2, same_backend};
use crate::{ensure, Error, Result, Tensor};

/// Options of [`batch_norm2d`], with `F.batch_norm`'s defaults (evaluation, momentum 0.1,
/// eps 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalize by the batch's statistics and update the running ones, else by the running ones.
    pub training: bool,
    /// Weight of the batch's statistics in each update of the running ones.
    pub momentum: f32,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions { training: false, momentum: 0.1, eps: 1e-5 }
    }
}

/// What [`batch_norm2d`] gives: the output and the running statistics after the call (updated in
/// training, the inputs in evaluation; constants for autograd either way).
pub struct BatchNormOutput {
    /// The normalized input, `(n, c, h, w)`.
    pub output: Tensor,
    /// The running mean after the call, `(c)`.
    pub running_mean: Tensor,
    /// The running variance after the call, `(c)`.
    pub running_var: Tensor,
}

const OP: &str = "batch_norm2d";

/// The channel primitives on whichever backend holds the (same-device) tensors.
fn channel_dot(x: &Tensor, mean: &Tensor, g: Option<&Tensor>, dims: Dims) -> Result<Tensor> {
    let st = on_backend2!(OP, x.storage(), mean.storage(), xs, ms, be => {
        let g = g.map(|g| same_backend(OP, xs, g)).transpose()?;
        be.channel_dot(xs, ms, g, dims)
    });
    Ok(Tensor::from_storage(st, Shape::from([dims.1])))
}

/// `a * u + b * v + k` per channel.
fn channel_combine(
    u: &Tensor, a: &Tensor, vb: Option<(&Tensor, &Tensor)>, k: &Tensor, dims: Dims,
) -> Result<Tensor> {
    let st = on_backend2!(OP, u.storage(), a.storage(), us, as_, be => {
        let pair = |(v, b)| Ok::<_, Error>((same_backend(OP, us, v)?, same_backend(OP, us, b)?));
        let vb = vb.map(pair).transpose()?;
        be.channel_combine(us, as_, vb, same_backend(OP, us, k)?, dims)
    });
    Ok(Tensor::from_storage(st, u.shape().clone()))
}

/// `a * u + k` per channel, then `+ residual` and a ReLU where asked.
fn channel_affine(
    u: &Tensor, a: &Tensor, k: &Tensor, residual: Option<&Tensor>, relu: bool, dims: Dims,
) -> Result<Tensor> {
    let st = on_backend2!(OP, u.storage(), a.storage(), us, as_, be => {
        let r = residual.map(|r| same_backend(OP, us, r)).transpose()?;
        be.channel_affine(us, as_, same_backend(OP, us, k)?, r, relu, dims)
    });
    Ok(Tensor::from_storage(st, u.shape().clone()))
}

/// `(n, c, h, w) -> (c)` sums over (n, h, w), no autograd record.
fn channel_sum(x: &Tensor, (n, c, hw): Dims) -> Result<Tensor> {
    x.sum_axis_raw(n * c, hw, 1, Shape::from([n, c]))?.sum_axis_raw(1, n, c, Shape::from([c]))
}

type Dims = (usize, usize, usize);

/// `F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)` for
/// `x (n, c, h, w)` and per-channel `(c)` statistics and affine parameters. Training
/// normalizes by the batch's mean and biased variance and moves the running statistics toward
/// the batch's by `momentum`, the variance unbiased, as PyTorch does.
pub fn batch_norm2d(
    x: &Tensor, running_mean: &Tensor, running_var: &Tensor, weight: Option<&Tensor>,
    bias: Option<&Tensor>, opts: &BatchNormOptions,
) -> Result<BatchNormOutput> {
    batch_norm2d_with(x, (running_mean, running_var), (weight, bias), opts, None, false)
}

/// `F.relu(F.batch_norm(...) + residual)` (without `residual`, `F.relu(F.batch_norm(...))`): a
/// residual block's tail as one op. The normalisation, the skip connection's add and the ReLU
/// run in one pass over the output, with the results of the three ops apart, bit for bit.
pub fn batch_norm2d_relu(
    x: &Tensor, running_mean: &Tensor, running_var: &Tensor, weight: Option<&Tensor>,
    bias: Option<&Tensor>, opts: &BatchNormOptions, residual: Option<&Tensor>,
) -> Result<BatchNormOutput> {
    batch_norm2d_with(x, (running_mean, running_var), (weight, bias), opts, residual, true)
}

/// [`batch_norm2d`], then `+ residual` and a ReLU where asked, in the output's pass.
fn batch_norm2d_with(
    x: &Tensor, (running_mean, running_var): (&Tensor, &Tensor),
    (weight, bias): (Option<&Tensor>, Option<&Tensor>), opts: &BatchNormOptions,
    residual: Option<&Tensor>, relu: bool,
) -> Result<BatchNormOutput> {
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
    for t in named.iter().filter_map(|(_, t)| *t) {
        x.check_same_device(OP, t)?;
    }
    if let Some(r) = residual {
        ensure!(
            r.dims() == x.dims(),
            OP,
            "residual must have the input's shape {}, got {}",
            x.shape(),
            r.shape()
        );
        x.check_same_device(OP, r)?;
    }
    let (m, eps) = (opts.momentum, opts.eps);
    ensure!(m.is_finite(), OP, "momentum must be finite, got {m}");
    ensure!(eps.is_finite() && eps >= 0.0, OP, "eps must be finite and non-negative, got {eps}");
    let dims = (n, c, h * w);
    let count = n * h * w;
    // the statistics and coefficients are constants; the gradients are written out below
    let xd = x.detach();
    let (mean, var, new_mean, new_var) = if opts.training {
        ensure!(
            count > 1,
            OP,
            "expected more than 1 value per channel when training, got input {}",
            x.shape()
        );
        let mean = channel_sum(&xd, dims)?.mul_scalar(1.0 / count as f32)?;
        let var = channel_dot(&xd, &mean, None, dims)?.mul_scalar(1.0 / count as f32)?;
        let unbiased = var.mul_scalar(count as f32 / (count - 1) as f32)?;
        let moved = |old: &Tensor, batch: &Tensor| {
            old.detach().mul_scalar(1.0 - m)?.add(&batch.mul_scalar(m)?)
        };
        let (new_mean, new_var) = (moved(running_mean, &mean)?, moved(running_var, &unbiased)?);
        (mean, var, new_mean, new_var)
    } else {
        let (rm, rv) = (running_mean.detach(), running_var.detach());
        (rm.clone(), rv.clone(), rm, rv)
    };
    let invstd = var.add_scalar(eps)?.sqrt()?.powf(-1.0)?;
    let scale = match weight {
        Some(wt) => wt.detach().mul(&invstd)?,
        None => invstd.clone(),
    };
    let shift = match bias {
        Some(b) => b.detach().sub(&mean.mul(&scale)?)?,
        None => mean.mul(&scale)?.neg()?,
    };
    let y = channel_affine(&xd, &scale, &shift, residual, relu, dims)?;
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    inputs.extend(residual);
    let (has_weight, has_bias, training) = (weight.is_some(), bias.is_some(), opts.training);
    let has_residual = residual.is_some();
    // the ReLU's mask: the output where it is positive
    let kept = relu.then(|| y.detach());
    let output = y.attach(&inputs, move |g| {
        let g = &match &kept {
            Some(y) => y.binary_raw(g, crate::backend::BinaryOp::ReluBackward, OP)?,
            None => g.clone(),
        };
        let sum_g = channel_sum(g, dims)?;
        // sum g * (x - mean): the weight's gradient times the standard deviation
        let sum_gxc = channel_dot(&xd, &mean, Some(g), dims)?;
        let dx = if training {
            // d/dx of the batch statistics folded in:
            // dx = scale * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean)))
            let per = -1.0 / count as f32;
            let b = scale.mul(&invstd.square()?)?.mul(&sum_gxc)?.mul_scalar(per)?;
            let k = scale.mul(&sum_g)?.mul_scalar(per)?.sub(&b.mul(&mean)?)?;
            channel_combine(g, &scale, Some((&xd, &b)), &k, dims)?
        } else {
            channel_combine(g, &scale, None, &Tensor::zeros([c], &g.device())?, dims)?
        };
        let mut grads = vec![Some(dx)];
        if has_weight {
            grads.push(Some(sum_gxc.mul(&invstd)?));
        }
        if has_bias {
            grads.push(Some(sum_g));
        }
        if has_residual {
            grads.push(Some(g.clone()));
        }
        Ok(grads)
    });
    Ok(BatchNormOutput { output, running_mean: new_mean, running_var: new_var })
}
