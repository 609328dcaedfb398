//! BatchNorm2d against PyTorch's formulas computed here in f64: training output, running
//! statistics (unbiased variance, momentum 0.1), evaluation; gradients; GPU against CPU; the
//! state dict's keys; one value per channel refused in training.

mod common;

use common::{assert_close, check_op, gpu, gradcheck, randv};
use convshade::nn::{BatchNorm2d, Conv2d, Module, ReLU, Sequential};
use convshade::{Conv2dOptions, Device, Tensor};

const N: usize = 3;
const C: usize = 2;
const HW: usize = 4;

/// Per channel: (mean, biased variance, unbiased variance) of `x (N, C, 2, 2)`.
fn stats(x: &[f32]) -> Vec<(f64, f64, f64)> {
    (0..C)
        .map(|c| {
            let v: Vec<f64> = (0..N)
                .flat_map(|n| (0..HW).map(move |i| (n, i)))
                .map(|(n, i)| x[(n * C + c) * HW + i] as f64)
                .collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let ss = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>();
            (m, ss / v.len() as f64, ss / (v.len() - 1) as f64)
        })
        .collect()
}

fn normalize(x: &[f32], mean: &[f64], var: &[f64]) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / HW % C;
            ((v as f64 - mean[c]) / (var[c] + 1e-5).sqrt()) as f32
        })
        .collect()
}

#[test]
fn training_and_evaluation_follow_pytorch() {
    for dev in std::iter::once(Device::cpu()).chain(gpu()) {
        let mut bn = BatchNorm2d::new(C, &dev).unwrap();
        let (a, b) = (randv(N * C * HW, 1), randv(N * C * HW, 2));
        let x = |v: &[f32]| Tensor::from_vec(v.to_vec(), [N, C, 2, 2], &dev).unwrap();
        let y = bn.forward(&x(&a)).unwrap();
        let sa = stats(&a);
        let mean: Vec<f64> = sa.iter().map(|s| s.0).collect();
        let var: Vec<f64> = sa.iter().map(|s| s.1).collect();
        assert_close(&y.to_vec().unwrap(), &normalize(&a, &mean, &var), 1e-5, 1e-5, "train");
        bn.forward(&x(&b)).unwrap();
        // running statistics after two batches: r = 0.9 r + 0.1 batch (unbiased variance)
        let sb = stats(&b);
        let rm: Vec<f64> = (0..C).map(|c| 0.1 * sb[c].0 + 0.9 * (0.1 * sa[c].0)).collect();
        let rv: Vec<f64> = (0..C).map(|c| 0.1 * sb[c].2 + 0.9 * (0.1 * sa[c].2 + 0.9)).collect();
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        assert_close(&bn.running_mean.as_tensor().to_vec().unwrap(), &f(&rm), 1e-5, 1e-6, "mean");
        assert_close(&bn.running_var.as_tensor().to_vec().unwrap(), &f(&rv), 1e-5, 1e-6, "var");
        assert_eq!(bn.num_batches_tracked.as_tensor().to_vec().unwrap(), [2.0]);
        // evaluation: the running statistics, and they stay put
        bn.set_training(false);
        let ye = bn.forward(&x(&a)).unwrap();
        assert_close(&ye.to_vec().unwrap(), &normalize(&a, &rm, &rv), 1e-5, 1e-5, "eval");
        assert_close(&bn.running_mean.as_tensor().to_vec().unwrap(), &f(&rm), 1e-5, 1e-6, "kept");
    }
}

#[test]
fn gradients_are_right_and_the_gpu_agrees() {
    let x = vec![(vec![N, C, 2, 2], randv(N * C * HW, 3))];
    let f = |t: &[Tensor]| {
        let bn = BatchNorm2d::new(C, &t[0].device()).unwrap();
        // a non-trivial affine transform, so its gradient path is exercised too
        bn.weight.set(&Tensor::from_vec(vec![1.5, -0.5], [C], &t[0].device()).unwrap()).unwrap();
        bn.forward(&t[0])?.square()
    };
    gradcheck(&x, &f, 1e-3, 2e-2);
    check_op("batchnorm2d", &x, 1e-4, 1e-5, &f);
}

#[test]
fn state_dict_keys_and_the_one_value_refusal() {
    let cpu = Device::cpu();
    let net = Sequential::new()
        .push(Conv2d::new(1, 2, 3, Conv2dOptions::new(), false, 1, &cpu).unwrap())
        .push(BatchNorm2d::new(2, &cpu).unwrap())
        .push(ReLU);
    let keys: Vec<String> = net.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "0.weight",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked"
        ]
    );
    assert_eq!(net.parameters().len(), 3, "running statistics are not parameters");
    // batch of 1 with 1x1 spatial: refused in training, fine in evaluation
    let mut bn = BatchNorm2d::new(2, &cpu).unwrap();
    let x = Tensor::from_vec(vec![0.5, -1.0], [1, 2, 1, 1], &cpu).unwrap();
    let e = bn.forward(&x).unwrap_err().to_string();
    assert!(e.starts_with("BatchNorm2d: expected more than 1 value per channel"), "{e}");
    bn.set_training(false);
    assert_eq!(bn.forward(&x).unwrap().dims(), [1, 2, 1, 1]);
    let e = bn.forward(&Tensor::zeros([1, 3, 2, 2], &cpu).unwrap()).unwrap_err().to_string();
    assert!(e.contains("3 channels"), "{e}");
}

/// `batch_norm2d` with and without its affine parameters, in training and evaluation: the
/// gradients of the input, weight and bias against numerical ones, and the GPU against the CPU.
#[test]
fn functional_gradients_in_both_modes() {
    use convshade::{batch_norm2d, BatchNormOptions};
    let inputs = [
        (vec![3, C, 2, 3], randv(3 * C * 6, 4)),
        (vec![C], vec![1.5, -0.5]),
        (vec![C], vec![0.25, -1.0]),
    ];
    for training in [true, false] {
        for affine in [true, false] {
            let f = move |t: &[Tensor]| {
                let dev = t[0].device();
                let rm = Tensor::from_vec(vec![0.1, -0.2], [C], &dev)?;
                let rv = Tensor::from_vec(vec![0.5, 2.0], [C], &dev)?;
                let opts = BatchNormOptions { training, momentum: 0.3, eps: 1e-3 };
                let (w, b) = if affine { (Some(&t[1]), Some(&t[2])) } else { (None, None) };
                // (the running statistics are constants for autograd, as in PyTorch)
                batch_norm2d(&t[0], &rm, &rv, w, b, &opts)?.output.square()
            };
            let name = format!("batch_norm2d training {training} affine {affine}");
            let used = if affine { &inputs[..] } else { &inputs[..1] };
            gradcheck(used, &f, 1e-3, 2e-2);
            check_op(&name, used, 1e-4, 1e-5, &f);
        }
    }
}

/// With a budget of 160 loop iterations the GPU's per-channel sums run in passes; training-mode
/// batch norm still matches the CPU, forward and backward.
#[test]
fn per_channel_sums_split_into_passes_match_the_cpu() {
    use convshade::gpu::GpuOptions;
    use convshade::{batch_norm2d, BatchNormOptions};
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(GpuOptions { loop_cap: Some(160), ..Default::default() }).unwrap();
    // 8 * 70 * 70 = 39,200 values per channel: 154 rows of 256, two passes
    let inputs = [
        (vec![8, 2, 70, 70], randv(8 * 2 * 4900, 5)),
        (vec![2], vec![1.5, -0.5]),
        (vec![2], vec![0.25, -1.0]),
    ];
    let f = |t: &[Tensor]| {
        let dev = t[0].device();
        let (rm, rv) = (Tensor::zeros([2], &dev)?, Tensor::ones([2], &dev)?);
        let opts = BatchNormOptions { training: true, ..BatchNormOptions::default() };
        batch_norm2d(&t[0], &rm, &rv, Some(&t[1]), Some(&t[2]), &opts)?.output.square()
    };
    let (yc, gc) = common::run_op(&Device::cpu(), &inputs, &f);
    let (yg, gg) = common::run_op(&dev, &inputs, &f);
    common::close(&yg, &yc, 1e-4, 1e-5, "forward");
    for (i, (a, b)) in gg.iter().zip(&gc).enumerate() {
        common::close(a.as_ref().unwrap(), b.as_ref().unwrap(), 1e-4, 1e-5, &format!("grad {i}"));
    }
}
