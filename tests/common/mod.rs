//! Shared test helpers: the GPU device (or a loud skip), closeness checks, and `check_op`, which
//! runs an op forward and backward on CPU and GPU and compares everything.
#![allow(dead_code)]

pub mod cases;

use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy_labels, Adam, Conv2dOptions, CrossEntropyOptions, Device, MaxPool2dOptions,
    Optimizer, Result, Tensor,
};

/// The GPU device. Without an adapter the test is skipped loudly, unless
/// `CONVSHADE_REQUIRE_GPU=1`, which makes a missing adapter a failure.
pub fn gpu() -> Option<Device> {
    match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("CONVSHADE_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("CONVSHADE_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!("!!! SKIPPING GPU CHECK: no GPU adapter ({e}) !!!");
            None
        }
    }
}

/// `max |got - want| <= atol + rtol * max |want|` (the conformance rule), with a useful message.
pub fn assert_close(got: &[f32], want: &[f32], rtol: f32, atol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // equal values (infinities included), and NaN where NaN is expected, are exact matches
        let d = if g == w || g.is_nan() && w.is_nan() { 0.0 } else { (g - w).abs() };
        if d.is_nan() || g.is_nan() != w.is_nan() {
            panic!("{what}: NaN mismatch at {i}: got {g}, want {w}");
        }
        if d > worst.0 {
            worst = (d, i);
        }
    }
    assert!(
        worst.0 <= atol + rtol * scale,
        "{what}: max error {} at index {} (got {}, want {}), allowed {}",
        worst.0,
        worst.1,
        got[worst.1],
        want[worst.1],
        atol + rtol * scale
    );
}

pub fn close(a: &Tensor, b: &Tensor, rtol: f32, atol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    assert_close(&a.to_vec().unwrap(), &b.to_vec().unwrap(), rtol, atol, what);
}

/// Deterministic pseudo-random values in [-1, 1) (seeded).
pub fn randv(n: usize, seed: u64) -> Vec<f32> {
    let t = Tensor::rand([n], seed, &Device::cpu()).unwrap();
    t.to_vec().unwrap().into_iter().map(|v| v * 2.0 - 1.0).collect()
}

/// Output and input gradients of `f` on `device`, for `loss = sum(f(x) * r)` with fixed random `r`.
pub fn run_op(
    device: &Device, inputs: &[(Vec<usize>, Vec<f32>)], f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) -> (Tensor, Vec<Option<Tensor>>) {
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), device).unwrap().requires_grad_())
        .collect();
    let y = f(&xs).unwrap();
    let r = Tensor::from_vec(randv(y.elem_count(), 999), y.dims().to_vec(), device).unwrap();
    let loss = y.mul(&r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let gs = xs.iter().map(|x| grads.get(x).cloned()).collect();
    (y, gs)
}

/// Checks `f` forward and every input gradient on the GPU against the CPU backend.
pub fn check_op(
    name: &str, inputs: &[(Vec<usize>, Vec<f32>)], rtol: f32, atol: f32,
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) {
    let Some(gpu) = gpu() else { return };
    let (yc, gc) = run_op(&Device::cpu(), inputs, f);
    let (yg, gg) = run_op(&gpu, inputs, f);
    close(&yg, &yc, rtol, atol, &format!("{name}: forward"));
    for (i, (a, b)) in gg.iter().zip(&gc).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => close(a, b, rtol, atol, &format!("{name}: grad of input {i}")),
            (None, None) => {}
            _ => panic!("{name}: gradient of input {i} present on one device only"),
        }
    }
}

/// Numerical gradient check on the CPU (`convshade::gradcheck`); panics with its message.
pub fn gradcheck(
    inputs: &[(Vec<usize>, Vec<f32>)], f: &dyn Fn(&[Tensor]) -> Result<Tensor>, eps: f32, tol: f32,
) {
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), &Device::cpu()).unwrap())
        .collect();
    if let Err(e) = convshade::gradcheck(&xs, f, eps, tol) {
        panic!("{e}");
    }
}

/// A small CNN trained `steps` Adam steps on seeded data; its weights' bits after, and the loss
/// of each step (read back, as a training loop's progress display does).
pub fn train_small_cnn(dev: &Device, steps: usize, seed: u64) -> (Vec<Vec<u32>>, Vec<f32>) {
    let same = Conv2dOptions::new().padding(1);
    let net = Sequential::new()
        .push(Conv2d::new(1, 4, 3, same, true, seed, dev).unwrap()) // (8, 4, 8, 8)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (8, 4, 4, 4)
        .push(Flatten)
        .push(Linear::new(64, 3, true, seed + 1, dev).unwrap());
    let mut opt = Adam::new(net.parameters(), 1e-2).unwrap();
    let labels: Vec<usize> = (0..8).map(|i| (i + seed as usize) % 3).collect();
    let mut losses = Vec::new();
    for step in 0..steps {
        let x = Tensor::randn([8, 1, 8, 8], seed * 1000 + step as u64, dev).unwrap();
        let logits = net.forward(&x).unwrap();
        let loss = cross_entropy_labels(&logits, &labels, CrossEntropyOptions::default()).unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        losses.push(loss.to_scalar().unwrap());
    }
    let weights = net
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect())
        .collect();
    (weights, losses)
}
