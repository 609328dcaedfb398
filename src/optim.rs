//! Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, with PyTorch's update
//! rules.

use crate::{ensure, no_grad, GradStore, Result, Tensor, Var};

/// Updates parameters from the gradients of one backward pass.
pub trait Optimizer {
    /// Updates every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f32;
    /// Sets the learning rate for the following steps; it must be finite and non-negative.
    fn set_learning_rate(&mut self, lr: f32) -> Result<()>;
}

fn check_lr(op: &'static str, lr: f32) -> Result<()> {
    non_negative(op, "learning rate", lr)
}

fn non_negative(op: &'static str, what: &str, v: f32) -> Result<()> {
    ensure!(v.is_finite() && v >= 0.0, op, "{what} must be finite and non-negative, got {v}");
    Ok(())
}

/// `g + wd * w` (L2 weight decay folded into the gradient, as PyTorch's SGD and Adam do).
fn with_decay(g: &Tensor, w: &Tensor, wd: f32) -> Result<Tensor> {
    if wd == 0.0 {
        Ok(g.clone())
    } else {
        g.add(&w.mul_scalar(wd)?)
    }
}

/// One step over every parameter that has a gradient: `update(g, state)` gives what to subtract
/// from the parameter, `g` already carrying the L2 weight decay; the parameter is first scaled
/// by `shrink` (decoupled weight decay, `1 - lr * wd`; 1 for none).
fn step_each<S>(
    params: &[Var], state: &mut [S], grads: &GradStore, (weight_decay, shrink): (f32, f32),
    mut update: impl FnMut(Tensor, &mut S) -> Result<Tensor>,
) -> Result<()> {
    no_grad(|| {
        for (p, s) in params.iter().zip(state.iter_mut()) {
            let Some(g) = grads.get_var(p) else { continue };
            let w = p.as_tensor();
            let g = with_decay(g, &w, weight_decay)?;
            let w = if shrink == 1.0 { w } else { w.mul_scalar(shrink)? };
            p.set(&w.sub(&update(g, s)?)?)?;
        }
        Ok(())
    })
}

/// `torch.optim.SGD`.
pub struct Sgd {
    params: Vec<Var>,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Plain SGD at rate `lr`: no momentum, no weight decay.
    pub fn new(params: Vec<Var>, lr: f32) -> Result<Sgd> {
        check_lr("sgd", lr)?;
        let n = params.len();
        Ok(Sgd {
            params,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            velocity: vec![None; n],
        })
    }
    /// Momentum factor (0: none).
    pub fn momentum(mut self, m: f32) -> Result<Sgd> {
        non_negative("sgd", "momentum", m)?;
        self.momentum = m;
        Ok(self)
    }
    /// L2 weight decay, added to the gradient.
    pub fn weight_decay(mut self, wd: f32) -> Result<Sgd> {
        non_negative("sgd", "weight decay", wd)?;
        self.weight_decay = wd;
        Ok(self)
    }
    /// Nesterov momentum; needs a positive momentum.
    pub fn nesterov(mut self, on: bool) -> Result<Sgd> {
        ensure!(!on || self.momentum > 0.0, "sgd", "Nesterov momentum needs a positive momentum");
        self.nesterov = on;
        Ok(self)
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let (lr, momentum, nesterov) = (self.lr, self.momentum, self.nesterov);
        step_each(
            &self.params,
            &mut self.velocity,
            grads,
            (self.weight_decay, 1.0),
            |mut g, vel| {
                if momentum != 0.0 {
                    let buf = match vel.take() {
                        Some(v) => v.mul_scalar(momentum)?.add(&g)?,
                        None => g.clone(),
                    };
                    g = if nesterov { g.add(&buf.mul_scalar(momentum)?)? } else { buf.clone() };
                    *vel = Some(buf);
                }
                g.mul_scalar(lr)
            },
        )
    }
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        check_lr("sgd", lr)?;
        self.lr = lr;
        Ok(())
    }
}

/// `torch.optim.Adam` (L2 weight decay added to the gradient, as PyTorch's Adam does).
pub struct Adam {
    params: Vec<Var>,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    /// Per parameter: first and second moments and its own step count (a parameter without a
    /// gradient in a step does not advance, as in PyTorch).
    moments: Vec<Option<(Tensor, Tensor, i32)>>,
    /// AdamW: the weight decay scales the parameters instead of joining the gradient.
    decoupled: bool,
}

impl Adam {
    /// Defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(params: Vec<Var>, lr: f32) -> Result<Adam> {
        check_lr("adam", lr)?;
        let n = params.len();
        Ok(Adam {
            params,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            moments: vec![None; n],
            decoupled: false,
        })
    }
    /// Decay rates of the first and second moment estimates, each in `[0, 1)`.
    pub fn betas(mut self, b1: f32, b2: f32) -> Result<Adam> {
        ensure!(
            (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2),
            "adam",
            "betas must lie in [0, 1), got ({b1}, {b2})"
        );
        self.beta1 = b1;
        self.beta2 = b2;
        Ok(self)
    }
    /// Added to the denominator for numerical stability; positive.
    pub fn eps(mut self, eps: f32) -> Result<Adam> {
        ensure!(eps.is_finite() && eps > 0.0, "adam", "eps must be finite and positive, got {eps}");
        self.eps = eps;
        Ok(self)
    }
    /// L2 weight decay, added to the gradient.
    pub fn weight_decay(mut self, wd: f32) -> Result<Adam> {
        non_negative("adam", "weight decay", wd)?;
        self.weight_decay = wd;
        Ok(self)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let (lr, beta1, beta2, eps) = (self.lr, self.beta1, self.beta2, self.eps);
        let decay = if self.decoupled {
            (0.0, 1.0 - lr * self.weight_decay)
        } else {
            (self.weight_decay, 1.0)
        };
        step_each(&self.params, &mut self.moments, grads, decay, |g, mom| {
            let (m, v, t) = match mom.take() {
                Some((m, v, t)) => (m, v, t + 1),
                None => (g.mul_scalar(0.0)?, g.mul_scalar(0.0)?, 1),
            };
            let c1 = 1.0 - beta1.powi(t);
            let c2 = 1.0 - beta2.powi(t);
            let m = m.mul_scalar(beta1)?.add(&g.mul_scalar(1.0 - beta1)?)?;
            let v = v.mul_scalar(beta2)?.add(&g.square()?.mul_scalar(1.0 - beta2)?)?;
            // p -= lr * (m / c1) / (sqrt(v / c2) + eps)
            let denom = v.mul_scalar(1.0 / c2)?.sqrt()?.add_scalar(eps)?;
            let update = m.mul_scalar(lr / c1)?.div(&denom)?;
            *mom = Some((m, v, t));
            Ok(update)
        })
    }
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        check_lr("adam", lr)?;
        self.lr = lr;
        Ok(())
    }
}

/// `torch.optim.AdamW`: Adam with decoupled weight decay (`p *= 1 - lr * wd` before the Adam
/// update); defaults betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
pub struct AdamW(Adam);

impl AdamW {
    /// AdamW at rate `lr`: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    pub fn new(params: Vec<Var>, lr: f32) -> Result<AdamW> {
        check_lr("adamw", lr)?;
        let mut adam = Adam::new(params, lr)?;
        adam.weight_decay = 0.01;
        adam.decoupled = true;
        Ok(AdamW(adam))
    }
    /// Decay rates of the first and second moment estimates, each in `[0, 1)`.
    pub fn betas(self, b1: f32, b2: f32) -> Result<AdamW> {
        self.0.betas(b1, b2).map(AdamW)
    }
    /// Added to the denominator for numerical stability; positive.
    pub fn eps(self, eps: f32) -> Result<AdamW> {
        self.0.eps(eps).map(AdamW)
    }
    /// Decoupled weight decay: each step scales the parameters by `1 - lr * wd`.
    pub fn weight_decay(self, wd: f32) -> Result<AdamW> {
        self.0.weight_decay(wd).map(AdamW)
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.0.step(grads)
    }
    fn learning_rate(&self) -> f32 {
        self.0.lr
    }
    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        self.0.set_learning_rate(lr)
    }
}
