//! Layers, losses, optimizers and training: hand-checked updates, GPU against CPU, a CNN that
//! learns real digits, and clear errors.

mod common;

use common::{check_op, close, gpu, randv};
use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    conv2d, cross_entropy, mse_loss, one_hot, Adam, Conv2dOptions, Device, MaxPool2dOptions,
    Optimizer, Sgd, Tensor, Var,
};

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    let x = Tensor::from_vec(randv(6, 1), [6], &Device::cpu()).unwrap();
    // x * x with one factor detached: autograd sees x, finite differences see 2x
    let e =
        convshade::gradcheck(std::slice::from_ref(&x), &|t| t[0].detach().mul(&t[0]), 1e-2, 1e-2)
            .unwrap_err();
    assert!(e.to_string().contains("gradcheck"), "{e}");
    convshade::gradcheck(&[x], &|t| t[0].mul(&t[0]), 1e-2, 1e-2).unwrap();
}

#[test]
fn cross_entropy_and_mse_by_hand() {
    let d = Device::cpu();
    let logits = Tensor::from_vec(vec![1.0, 2.0, 3.0], [1, 3], &d).unwrap().requires_grad_();
    let target = one_hot(&[2], 3, &d).unwrap();
    let loss = cross_entropy(&logits, &target).unwrap();
    // log(e + e^2 + e^3) - 3
    assert!((loss.to_scalar().unwrap() - 0.407_605_96).abs() < 1e-6);
    let g = loss.backward().unwrap().get(&logits).unwrap().to_vec().unwrap();
    let z: f32 = [1f32, 2.0, 3.0].iter().map(|v| v.exp()).sum();
    let want = [1f32.exp() / z, 2f32.exp() / z, 3f32.exp() / z - 1.0];
    common::assert_close(&g, &want, 0.0, 1e-6, "softmax gradient");
    // large logits stay finite thanks to the max shift
    let big = Tensor::from_vec(vec![1000.0, 0.0], [1, 2], &d).unwrap();
    assert!(
        cross_entropy(&big, &one_hot(&[0], 2, &d).unwrap()).unwrap().to_scalar().unwrap().abs()
            < 1e-6
    );
    let p = Tensor::from_vec(vec![1.0, 2.0], [2], &d).unwrap();
    let t = Tensor::from_vec(vec![0.0, 4.0], [2], &d).unwrap();
    assert_eq!(mse_loss(&p, &t).unwrap().to_scalar().unwrap(), 2.5);
    assert!(one_hot(&[3], 3, &d).unwrap_err().to_string().contains("label 3"));
    assert!(mse_loss(&p, &big).unwrap_err().to_string().contains("mse_loss"));
}

#[test]
fn gpu_losses_and_max_match_cpu() {
    let logits = (vec![7, 10], randv(70, 4).iter().map(|v| v * 5.0).collect::<Vec<_>>());
    let labels = [3usize, 0, 9, 9, 1, 5, 2];
    check_op("cross_entropy", std::slice::from_ref(&logits), 1e-5, 1e-6, &|t| {
        cross_entropy(&t[0], &one_hot(&labels, 10, &t[0].device())?)?.reshape([1])
    });
    check_op("max_axis", &[(vec![3, 5, 7], randv(105, 5))], 0.0, 0.0, &|t| t[0].max_axis(1, false));
    check_op("max_axis wide", &[(vec![2, 300], randv(600, 6))], 0.0, 0.0, &|t| {
        t[0].max_axis(1, true)
    });
}

#[test]
fn layers_match_the_functional_ops() {
    let d = Device::cpu();
    let conv =
        Conv2d::new(4, 6, (3, 2), Conv2dOptions::new().stride(2).padding(1), true, 7, &d).unwrap();
    assert_eq!(conv.weight.as_tensor().dims(), &[6, 4, 3, 2]);
    let bound = 1.0 / (4.0f32 * 3.0 * 2.0).sqrt();
    assert!(conv.weight.as_tensor().to_vec().unwrap().iter().all(|v| v.abs() <= bound));
    assert_eq!(conv.parameters().len(), 2);
    let x = Tensor::randn([2, 4, 7, 5], 1, &d).unwrap();
    let want = conv2d(
        &x,
        &conv.weight.as_tensor(),
        Some(&conv.bias.as_ref().unwrap().as_tensor()),
        &conv.opts,
    )
    .unwrap();
    assert_eq!(conv.forward(&x).unwrap().to_vec().unwrap(), want.to_vec().unwrap());
    let lin = Linear::new(5, 3, false, 8, &d).unwrap();
    let xs = Tensor::randn([4, 5], 2, &d).unwrap();
    let want = xs.matmul(&lin.weight.as_tensor().transpose(0, 1).unwrap()).unwrap();
    close(&lin.forward(&xs).unwrap(), &want, 1e-6, 1e-6, "linear");
    let net = Sequential::new().push(conv).push(ReLU).push(Flatten);
    assert_eq!(net.forward(&x).unwrap().dims(), &[2, 6 * 4 * 3]);
    assert_eq!(net.parameters().len(), 2);
    assert!(Conv2d::new(3, 4, 3, Conv2dOptions::new().groups(2), true, 0, &d).is_err());
    let e = Linear::new(0, 3, true, 0, &d).err().unwrap().to_string();
    assert!(e.contains("Linear"), "{e}");
}

#[test]
fn sgd_with_momentum_and_weight_decay_by_hand() {
    let d = Device::cpu();
    let w = Var::new(&Tensor::from_vec(vec![1.0, -2.0], [2], &d).unwrap());
    let mut opt =
        Sgd::new(vec![w.clone()], 0.1).unwrap().momentum(0.9).unwrap().weight_decay(0.5).unwrap();
    // loss = sum(w^2): g = 2w; with decay g' = 2w + 0.5w = 2.5w
    let step = |opt: &mut Sgd| {
        let g = w.as_tensor().square().unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&g).unwrap();
    };
    step(&mut opt);
    // buf = 2.5 * [1, -2]; w = w - 0.1 * buf
    assert_eq!(w.as_tensor().to_vec().unwrap(), vec![0.75, -1.5]);
    step(&mut opt);
    // g' = 2.5 * [0.75, -1.5]; buf = 0.9 * [2.5, -5] + g'; w -= 0.1 * buf
    let want = [0.75 - 0.1 * (0.9 * 2.5 + 2.5 * 0.75), -1.5 - 0.1 * (0.9 * -5.0 + 2.5 * -1.5)];
    common::assert_close(&w.as_tensor().to_vec().unwrap(), &want, 0.0, 1e-6, "second sgd step");
}

#[test]
fn adam_first_step_moves_by_the_learning_rate() {
    let d = Device::cpu();
    let w = Var::new(&Tensor::from_vec(vec![3.0, -0.5, 0.1], [3], &d).unwrap());
    let mut opt = Adam::new(vec![w.clone()], 0.01).unwrap();
    let g = w.as_tensor().powf(3.0).unwrap().sum_all().unwrap().backward().unwrap();
    opt.step(&g).unwrap();
    // bias-corrected first step: lr * g / (|g| + eps) = lr * sign(g), and 3w^2 > 0
    common::assert_close(
        &w.as_tensor().to_vec().unwrap(),
        &[2.99, -0.51, 0.09],
        0.0,
        1e-5,
        "adam step",
    );
}

#[test]
fn adam_counts_steps_per_parameter() {
    let d = Device::cpu();
    let used = Var::new(&Tensor::from_vec(vec![1.0], [1], &d).unwrap());
    let late = Var::new(&Tensor::from_vec(vec![1.0], [1], &d).unwrap());
    let mut opt = Adam::new(vec![used.clone(), late.clone()], 0.1).unwrap();
    // step 1: only `used` has a gradient
    opt.step(&used.as_tensor().sum_all().unwrap().backward().unwrap()).unwrap();
    assert_eq!(late.as_tensor().to_vec().unwrap(), vec![1.0]);
    // step 2: `late`'s first step moves it by the learning rate, as PyTorch's per-parameter count does
    let loss = used.as_tensor().add(&late.as_tensor()).unwrap().sum_all().unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
    common::assert_close(&late.as_tensor().to_vec().unwrap(), &[0.9], 0.0, 1e-6, "late parameter");
}

#[test]
fn bad_optimizer_settings_are_errors() {
    let d = Device::cpu();
    let w = Var::new(&Tensor::ones([2], &d).unwrap());
    let e = Sgd::new(vec![w.clone()], f32::NAN).err().unwrap().to_string();
    assert!(e.contains("sgd") && e.contains("learning rate"), "{e}");
    assert!(Sgd::new(vec![w.clone()], 0.1).unwrap().momentum(-1.0).is_err());
    assert!(Sgd::new(vec![w.clone()], 0.1).unwrap().nesterov(true).is_err());
    assert!(Adam::new(vec![w.clone()], f32::INFINITY).is_err());
    assert!(Adam::new(vec![w.clone()], 0.1).unwrap().betas(1.0, 0.9).is_err());
    let mut opt = Adam::new(vec![w.clone()], 0.1).unwrap();
    assert!(opt.set_learning_rate(-1.0).unwrap_err().to_string().contains("adam"));
    assert_eq!(opt.learning_rate(), 0.1);
    let e = w.set(&Tensor::ones([3], &d).unwrap()).unwrap_err().to_string();
    assert!(e.contains("Var::set") && e.contains("shape"), "{e}");
}

fn digits() -> (Vec<f32>, Vec<usize>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits");
    let x = convshade::io::read_npy(format!("{dir}/images.npy")).unwrap();
    assert_eq!(x.shape(), &[1797, 1, 8, 8]);
    let y = convshade::io::read_npy(format!("{dir}/labels.npy")).unwrap();
    (x.iter().copied().collect(), y.iter().map(|&v| v as usize).collect())
}

fn digit_net(dev: &Device) -> Sequential {
    let same = Conv2dOptions::new().padding(1);
    Sequential::new()
        .push(Conv2d::new(1, 8, 3, same, true, 1, dev).unwrap())
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Flatten)
        .push(Linear::new(8 * 16, 10, true, 2, dev).unwrap())
}

#[test]
fn a_small_cnn_learns_real_digits() {
    let dev = Device::cpu();
    let (pixels, labels) = digits();
    let net = digit_net(&dev);
    let mut opt = Sgd::new(net.parameters(), 0.1).unwrap().momentum(0.9).unwrap();
    let split = 1500;
    for _epoch in 0..3 {
        for lo in (0..split).step_by(50) {
            let x = Tensor::from_vec(pixels[lo * 64..(lo + 50) * 64].to_vec(), [50, 1, 8, 8], &dev)
                .unwrap();
            let y = one_hot(&labels[lo..lo + 50], 10, &dev).unwrap();
            let loss = cross_entropy(&net.forward(&x).unwrap(), &y).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
    }
    let xt =
        Tensor::from_vec(pixels[split * 64..].to_vec(), [1797 - split, 1, 8, 8], &dev).unwrap();
    let pred = net.forward(&xt).unwrap().argmax_rows().unwrap();
    let correct = pred.iter().zip(&labels[split..]).filter(|(p, y)| p == y).count();
    let acc = correct as f32 / (1797 - split) as f32;
    assert!(acc > 0.8, "test accuracy {acc}");
}

#[test]
fn gpu_training_steps_match_cpu() {
    let Some(g) = gpu() else { return };
    let (pixels, labels) = digits();
    let mut losses = vec![];
    for dev in [Device::cpu(), g] {
        let net = digit_net(&dev);
        let mut opt = Adam::new(net.parameters(), 1e-2).unwrap();
        let mut l = vec![];
        for step in 0..4 {
            let lo = step * 32;
            let x = Tensor::from_vec(pixels[lo * 64..(lo + 32) * 64].to_vec(), [32, 1, 8, 8], &dev)
                .unwrap();
            let y = one_hot(&labels[lo..lo + 32], 10, &dev).unwrap();
            let loss = cross_entropy(&net.forward(&x).unwrap(), &y).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            l.push(loss.to_scalar().unwrap());
        }
        losses.push(l);
    }
    common::assert_close(&losses[1], &losses[0], 1e-4, 1e-5, "losses over four Adam steps");
    assert!(losses[0][3] < losses[0][0]);
}
