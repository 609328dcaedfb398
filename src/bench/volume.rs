//! The volume cases: `conv3d_fwd`, `conv3d_fwd_bwd` (8x16x16x32x32, 3x3x3 to 32 channels,
//! padding 1) and `max_pool3d_fwd_bwd` (2x2x2 on the same input).

use super::suite::{inputs, suffix, BenchCase};
use crate::{conv3d, max_pool3d, no_grad, Conv3dOptions, MaxPool3dOptions, Padding3d, Tensor};

const X: [usize; 5] = [8, 16, 16, 32, 32];
const OUT: usize = 32;

/// The volume cases, in order.
pub(super) fn cases() -> Vec<BenchCase> {
    vec![conv3d_case(false), conv3d_case(true), max_pool3d_case(true)]
}

fn conv3d_case(backward: bool) -> BenchCase {
    let [n, c, d, h, w] = X;
    let fwd = 2.0 * (n * OUT * d * h * w * c * 27) as f64;
    BenchCase {
        name: format!("conv3d_{}", suffix(backward)),
        // the input and weight gradients are one product each, as large as the forward
        flops: Some(if backward { 3.0 * fwd } else { fwd }),
        bytes: None,
        hardware_only: false,
        build: Box::new(move |dev| {
            let [x, wt, b] = inputs(
                [
                    Tensor::randn(X, 1, dev)?,
                    Tensor::randn([OUT, c, 3, 3, 3], 2, dev)?,
                    Tensor::randn([OUT], 3, dev)?,
                ],
                backward,
            );
            let opts =
                Conv3dOptions { padding: Padding3d::Explicit((1, 1, 1)), ..Default::default() };
            let up = Tensor::randn([n, OUT, d, h, w], 4, dev)?;
            Ok(Box::new(move || {
                let y = conv3d(&x.get(), &wt.get(), Some(&b.get()), &opts)?;
                if backward {
                    y.backward_with(&up)?;
                }
                Ok(())
            }))
        }),
    }
}

fn max_pool3d_case(backward: bool) -> BenchCase {
    let input = X.iter().product::<usize>() as f64;
    let output = input / 8.0;
    // read the input, write the output; back: read the upstream gradient, write the input's
    let moved = input + output + if backward { output + input } else { 0.0 };
    BenchCase {
        name: format!("max_pool3d_{}", suffix(backward)),
        flops: None,
        bytes: Some(4.0 * moved),
        hardware_only: false,
        build: Box::new(move |dev| {
            let [x] = inputs([Tensor::randn(X, 1, dev)?], backward);
            let opts = MaxPool3dOptions::new((2, 2, 2));
            let out = no_grad(|| max_pool3d(&x.get(), &opts))?.dims().to_vec();
            let up = Tensor::randn(out, 2, dev)?;
            Ok(Box::new(move || {
                let y = max_pool3d(&x.get(), &opts)?;
                if backward {
                    y.backward_with(&up)?;
                }
                Ok(())
            }))
        }),
    }
}
