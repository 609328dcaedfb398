//! Fused ops give exactly what the ops apart give, forward and backward, on each device, in
//! fewer GPU passes: `conv2d_relu` (the ReLU in the convolution's epilogue), `linear` and
//! `linear_relu` (bias and ReLU in the product's stores), `batch_norm2d_relu` (the residual add
//! and the ReLU in the normalisation's pass). `Sequential` fuses a `Conv2d`, `Linear` or
//! `BatchNorm2d` followed by a `ReLU`.

mod common;

use common::{check_op, gpu, randv, run_op};
use convshade::gpu::GpuOptions;
use convshade::nn::{BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential};
use convshade::{
    batch_norm2d, batch_norm2d_relu, conv2d, conv2d_relu, BatchNormOptions, Conv2dOptions, Device,
    Error, Padding, Tensor,
};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// Output and input gradients, as `run_op` gives them.
type Run = (Tensor, Vec<Option<Tensor>>);

/// The fused run's output and every input's gradient (each input must get one) have the
/// unfused run's bits.
fn assert_same_bits(fused: &Run, apart: &Run, what: &str) {
    assert_eq!(bits(&fused.0), bits(&apart.0), "{what}: forward");
    for (i, (a, b)) in fused.1.iter().zip(&apart.1).enumerate() {
        let got = a.as_ref().unwrap_or_else(|| panic!("{what}: no gradient for input {i}"));
        let want = b.as_ref().unwrap_or_else(|| panic!("{what}: no unfused gradient {i}"));
        assert_eq!(bits(got), bits(want), "{what}: gradient {i}");
    }
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
        // few outputs and a long K (300 channels x 9 taps): split along K
        (
            "deep, bias",
            vec![
                (vec![1, 300, 4, 4], randv(300 * 16, 6)),
                (vec![3, 300, 3, 3], randv(3 * 300 * 9, 7)),
                (vec![3], randv(3, 8)),
            ],
            Conv2dOptions::new().padding(1),
        ),
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
            let fused = run_op(&dev, &inputs, &|t| call(t, &opts, true));
            let apart = run_op(&dev, &inputs, &|t| call(t, &opts, false));
            let y = fused.0.to_vec().unwrap();
            let zeros = y.iter().filter(|v| **v == 0.0).count();
            assert!(
                zeros > y.len() / 5 && zeros < y.len() * 4 / 5,
                "{name}: the ReLU must cut some outputs, not all ({zeros} of {})",
                y.len()
            );
            assert_same_bits(&fused, &apart, &format!("{dev:?} {name}"));
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

/// Linear layers: with and without a bias, a row count that leaves partial tiles, and one
/// input row.
fn linear_cases() -> Vec<(&'static str, Inputs)> {
    let x = (vec![37, 50], randv(37 * 50, 11));
    let w = (vec![19, 50], randv(19 * 50, 12));
    let b = (vec![19], randv(19, 13));
    let x1 = (vec![1, 50], randv(50, 14));
    // few outputs and a long K: the product is split along K, its epilogue run after the sum
    let xk = (vec![3, 4096], randv(3 * 4096, 15));
    let wk = (vec![5, 4096], randv(5 * 4096, 16));
    let bk = (vec![5], randv(5, 17));
    vec![
        ("bias", vec![x.clone(), w.clone(), b.clone()]),
        ("no bias", vec![x, w.clone()]),
        ("one row", vec![x1, w, b]),
        ("long K", vec![xk, wk, bk]),
    ]
}

/// `linear` (fused or as matmul then add) then, where `relu`, a ReLU (fused or apart).
fn linear_call(t: &[Tensor], fused: bool, relu: bool) -> convshade::Result<Tensor> {
    if fused {
        return match relu {
            true => t[0].linear_relu(&t[1], t.get(2)),
            false => t[0].linear(&t[1], t.get(2)),
        };
    }
    let mut y = t[0].matmul_t(&t[1], false, true)?;
    if let Some(b) = t.get(2) {
        y = y.add(b)?;
    }
    if relu {
        y = y.relu()?;
    }
    Ok(y)
}

#[test]
fn linear_epilogues_match_the_ops_apart_bit_for_bit() {
    for dev in devices() {
        for (name, inputs) in linear_cases() {
            for relu in [false, true] {
                let fused = run_op(&dev, &inputs, &|t| linear_call(t, true, relu));
                let apart = run_op(&dev, &inputs, &|t| linear_call(t, false, relu));
                let zeros = fused.0.to_vec().unwrap().iter().filter(|v| **v == 0.0).count();
                assert_eq!(zeros > 0, relu, "{name}: the ReLU must cut some outputs");
                assert_same_bits(&fused, &apart, &format!("{dev:?} {name} relu {relu}"));
            }
        }
    }
}

#[test]
fn linear_relu_on_the_gpu_matches_the_cpu() {
    for (name, inputs) in linear_cases() {
        check_op(name, &inputs, 1e-4, 1e-5, &|t| linear_call(t, true, true));
    }
}

/// Batch norm in training mode over `(4, 3, 5, 5)`, with its affine parameters and a residual.
fn bn_inputs() -> Inputs {
    let d = vec![4, 3, 5, 5];
    let n = 4 * 3 * 5 * 5;
    vec![
        (d.clone(), randv(n, 21)),
        (vec![3], randv(3, 22)),
        (vec![3], randv(3, 23)),
        (d, randv(n, 24)),
    ]
}

/// `relu(batch_norm(x) + residual)`, fused or as the three ops; `residual` picks whether the
/// fourth input is added.
fn bn_call(t: &[Tensor], fused: bool, residual: bool) -> convshade::Result<Tensor> {
    let dev = t[0].device();
    let (rm, rv) = (Tensor::zeros([3], &dev)?, Tensor::ones([3], &dev)?);
    let opts = BatchNormOptions { training: true, ..BatchNormOptions::default() };
    let r = residual.then(|| &t[3]);
    if fused {
        return Ok(batch_norm2d_relu(&t[0], &rm, &rv, Some(&t[1]), Some(&t[2]), &opts, r)?.output);
    }
    let mut y = batch_norm2d(&t[0], &rm, &rv, Some(&t[1]), Some(&t[2]), &opts)?.output;
    if let Some(r) = r {
        y = y.add(r)?;
    }
    y.relu()
}

#[test]
fn batch_norm_relu_and_residual_match_the_ops_apart_bit_for_bit() {
    for dev in devices() {
        for residual in [false, true] {
            let mut inputs = bn_inputs();
            if !residual {
                inputs.pop();
            }
            let fused = run_op(&dev, &inputs, &|t| bn_call(t, true, residual));
            let apart = run_op(&dev, &inputs, &|t| bn_call(t, false, residual));
            let zeros = fused.0.to_vec().unwrap().iter().filter(|v| **v == 0.0).count();
            assert!(zeros > 10, "{dev:?} residual {residual}: the ReLU must cut some outputs");
            assert_same_bits(&fused, &apart, &format!("{dev:?} residual {residual}"));
        }
    }
}

#[test]
fn batch_norm_relu_rejects_a_residual_of_another_shape() {
    for dev in devices() {
        let t: Vec<Tensor> =
            bn_inputs().into_iter().map(|(s, v)| Tensor::from_vec(v, s, &dev).unwrap()).collect();
        let (rm, rv) = (Tensor::zeros([3], &dev).unwrap(), Tensor::ones([3], &dev).unwrap());
        let wrong = Tensor::zeros([4, 3, 5, 4], &dev).unwrap();
        let opts = BatchNormOptions::default();
        let got = batch_norm2d_relu(&t[0], &rm, &rv, None, None, &opts, Some(&wrong));
        assert!(matches!(got, Err(Error::Invalid { op: "batch_norm2d", .. })), "{dev:?}");
    }
}

#[test]
fn sequential_fuses_linear_and_batch_norm_with_a_following_relu() {
    for dev in devices() {
        let bn = BatchNorm2d::new(3, &dev).unwrap();
        let x = Tensor::from_vec(randv(2 * 3 * 4 * 4, 31), [2, 3, 4, 4], &dev).unwrap();
        // the unfused reference first: both calls move the running statistics alike
        let want = bn.forward(&x).unwrap().relu().unwrap();
        let net = Sequential::new().push(bn).push(ReLU);
        assert_eq!(bits(&net.forward(&x).unwrap()), bits(&want), "{dev:?} BatchNorm2d");

        // a residual block's tail: relu(bn(x) + r), in the normalisation's pass
        let bn = BatchNorm2d::new(3, &dev).unwrap();
        let r = Tensor::from_vec(randv(2 * 3 * 4 * 4, 32), [2, 3, 4, 4], &dev).unwrap();
        let want = bn.forward(&x).unwrap().add(&r).unwrap().relu().unwrap();
        let bn = BatchNorm2d::new(3, &dev).unwrap();
        assert_eq!(bits(&bn.forward_add_relu(&x, &r).unwrap()), bits(&want), "{dev:?} add_relu");

        let lin = Linear::new(48, 5, true, 4, &dev).unwrap();
        let flat = x.reshape([2, 48]).unwrap();
        let want = lin.forward(&flat).unwrap().relu().unwrap();
        let net = Sequential::new().push(lin).push(ReLU);
        assert_eq!(bits(&net.forward(&flat).unwrap()), bits(&want), "{dev:?} Linear");
    }
}

#[test]
fn fused_epilogues_save_gpu_passes() {
    let Some(Device::Gpu(_)) = gpu() else { return };
    // a context of its own: other tests' dispatches would count on the shared one
    let dev = Device::gpu_with(GpuOptions::default()).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!("a GPU device") };
    let count = |f: &dyn Fn() -> convshade::Result<Tensor>| {
        f().unwrap(); // warm: pipelines built outside the count
        dev.sync().unwrap();
        let before = ctx.pool_stats().dispatches;
        f().unwrap();
        dev.sync().unwrap();
        ctx.pool_stats().dispatches - before
    };
    let t: Vec<Tensor> =
        bn_inputs().into_iter().map(|(s, v)| Tensor::from_vec(v, s, &dev).unwrap()).collect();
    let (fused, apart) = (count(&|| bn_call(&t, true, true)), count(&|| bn_call(&t, false, true)));
    // an adapter with fewer than 6 storage buffers per stage runs batch norm's passes apart
    let saved = if ctx.limits().max_storage_buffers_per_shader_stage >= 6 { 2 } else { 0 };
    assert_eq!(fused + saved, apart, "batch norm, residual add and ReLU");
    let t: Vec<Tensor> = linear_cases()[0]
        .1
        .iter()
        .map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), &dev).unwrap())
        .collect();
    let (fused, apart) =
        (count(&|| linear_call(&t, true, true)), count(&|| linear_call(&t, false, true)));
    assert_eq!((fused, apart), (1, 3), "linear, bias and ReLU");
}
