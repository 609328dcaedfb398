//! Fused ops: `conv2d_relu` (the GPU's ReLU in the convolution's epilogue) gives exactly what
//! `conv2d` then `relu` gives, forward and backward, on each device; `Sequential` fuses a
//! `Conv2d` followed by a `ReLU` into it.

mod common;

use common::{check_op, gpu, randv, run_op};
use convshade::nn::{Conv2d, Module, ReLU, Sequential};
use convshade::{conv2d, conv2d_relu, Conv2dOptions, Device, Padding, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// Convolutions whose outputs are about half negative: a plain, a strided and grouped one, and
/// a 1x1 one, with and without a bias.
/// Inputs as `(shape, values)`.
type Inputs = Vec<(Vec<usize>, Vec<f32>)>;

fn cases() -> Vec<(&'static str, Inputs, Conv2dOptions)> {
    let x = (vec![2, 4, 9, 7], randv(2 * 4 * 9 * 7, 1));
    let w = (vec![6, 4, 3, 3], randv(6 * 4 * 3 * 3, 2));
    let wg = (vec![6, 2, 3, 3], randv(6 * 2 * 3 * 3, 3));
    let w1 = (vec![5, 4, 1, 1], randv(5 * 4, 4));
    let b = (vec![6], randv(6, 5));
    vec![
        ("3x3 same, bias", vec![x.clone(), w, b.clone()], Conv2dOptions::new().padding(1)),
        (
            "strided grouped, bias",
            vec![x.clone(), wg, b],
            Conv2dOptions::new().stride(2).padding(Padding::Explicit([1, 0, 2, 1])).groups(2),
        ),
        ("1x1, no bias", vec![x, w1], Conv2dOptions::new()),
    ]
}

fn call(t: &[Tensor], opts: &Conv2dOptions, fused: bool) -> convshade::Result<Tensor> {
    let f = if fused { conv2d_relu } else { conv2d };
    let y = f(&t[0], &t[1], t.get(2), opts)?;
    if fused {
        Ok(y)
    } else {
        y.relu()
    }
}

#[test]
fn conv2d_relu_is_relu_of_conv2d_bit_for_bit() {
    for dev in devices() {
        for (name, inputs, opts) in cases() {
            let (yf, gf) = run_op(&dev, &inputs, &|t| call(t, &opts, true));
            let (yu, gu) = run_op(&dev, &inputs, &|t| call(t, &opts, false));
            let y = yf.to_vec().unwrap();
            let zeros = y.iter().filter(|v| **v == 0.0).count();
            assert!(
                zeros > y.len() / 5 && zeros < y.len() * 4 / 5,
                "{name}: the ReLU must cut some outputs, not all ({zeros} of {})",
                y.len()
            );
            assert_eq!(bits(&yf), bits(&yu), "{dev:?} {name}: forward");
            for (i, (a, b)) in gf.iter().zip(&gu).enumerate() {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert_eq!(bits(a), bits(b), "{dev:?} {name}: gradient {i}");
            }
        }
    }
}

#[test]
fn conv2d_relu_on_the_gpu_matches_the_cpu() {
    for (name, inputs, opts) in cases() {
        check_op(name, &inputs, 1e-4, 1e-5, &|t| call(t, &opts, true));
    }
}

#[test]
fn sequential_fuses_conv_then_relu_with_the_same_result() {
    for dev in devices() {
        let opts = Conv2dOptions::new().padding(1);
        let net = Sequential::new()
            .push(Conv2d::new(3, 8, 3, opts, true, 1, &dev).unwrap())
            .push(ReLU)
            .push(Conv2d::new(8, 4, 3, opts, true, 2, &dev).unwrap())
            .push(ReLU);
        let x = Tensor::from_vec(randv(2 * 3 * 6 * 6, 9), [2, 3, 6, 6], &dev).unwrap();
        let y = net.forward(&x).unwrap();
        // the same layers by hand, unfused
        let p = net.parameters();
        let t = |i: usize| p[i].as_tensor();
        let h = conv2d(&x, &t(0), Some(&t(1)), &opts).unwrap().relu().unwrap();
        let want = conv2d(&h, &t(2), Some(&t(3)), &opts).unwrap().relu().unwrap();
        assert_eq!(bits(&y), bits(&want), "{dev:?}");
        // and the fused network trains: every parameter gets its gradient
        let grads = y.sum_all().unwrap().backward().unwrap();
        for v in &p {
            assert!(grads.get_var(v).is_some(), "{dev:?}: a gradient");
        }
    }
}
