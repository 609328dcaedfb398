//! Finite-difference gradient checks of any differentiable function of tensors.

use crate::{Device, Error, Result, Tensor};

/// Compares the autograd gradient of `sum(f(inputs) * r)` (for a fixed pseudo-random `r`) with
/// central differences `(L(x + eps) - L(x - eps)) / 2 eps`, element by element, on the CPU.
/// An element passes when `|numeric - analytic| <= tol * (1 + |numeric|)`; the first failure is
/// returned as an error naming the input and element.
pub fn gradcheck(
    inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Result<Tensor>, eps: f32, tol: f32,
) -> Result<()> {
    let cpu = Device::cpu();
    let values: Vec<(Vec<usize>, Vec<f32>)> =
        inputs.iter().map(|t| Ok((t.dims().to_vec(), t.to_vec()?))).collect::<Result<_>>()?;
    let vars: Vec<Tensor> = values
        .iter()
        .map(|(s, v)| Ok(Tensor::from_vec(v.clone(), s.clone(), &cpu)?.requires_grad_()))
        .collect::<Result<_>>()?;
    let y = f(&vars)?;
    let r = Tensor::rand(y.dims().to_vec(), 0x5eed, &cpu)?.sub_scalar(0.5)?;
    let rv = r.to_vec()?;
    let grads = y.mul(&r)?.sum_all()?.backward()?;

    let loss_of = |vals: &[(Vec<usize>, Vec<f32>)]| -> Result<f64> {
        let xs: Vec<Tensor> = vals
            .iter()
            .map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), &cpu))
            .collect::<Result<_>>()?;
        let out = crate::no_grad(|| f(&xs))?.to_vec()?;
        Ok(out.iter().zip(&rv).map(|(a, b)| *a as f64 * *b as f64).sum())
    };
    for (k, (_, v)) in values.iter().enumerate() {
        let analytic = grads
            .get(&vars[k])
            .ok_or_else(|| Error::Invalid {
                op: "gradcheck",
                msg: format!("no gradient reached input {k}"),
            })?
            .to_vec()?;
        for (i, &a) in analytic.iter().enumerate().take(v.len()) {
            let mut plus = values.clone();
            plus[k].1[i] += eps;
            let mut minus = values.clone();
            minus[k].1[i] -= eps;
            let num = ((loss_of(&plus)? - loss_of(&minus)?) / (2.0 * eps as f64)) as f32;
            if (num - a).abs() > tol * (1.0 + num.abs()) {
                return Err(Error::Invalid {
                    op: "gradcheck",
                    msg: format!("input {k} element {i}: numeric {num}, analytic {a}"),
                });
            }
        }
    }
    Ok(())
}
