// Times Burn's wgpu backend on the convshade cases gemm_1024, conv_S3_fwd_bwd, conv_S4_fwd_bwd,
// train_step (same shapes): median of runs, each run synced.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, TensorData};
use std::time::Instant;

#[derive(Module, Debug)]
struct Net {
    c1: Conv2d,
    c2: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    act: Relu,
}

impl Net {
    fn new(d: &Device) -> Self {
        Self {
            c1: Conv2dConfig::new([1, 32], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(d),
            c2: Conv2dConfig::new([32, 64], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(d),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(3136, 10).init(d),
            act: Relu::new(),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.act.forward(self.c1.forward(x)));
        let x = self.pool.forward(self.act.forward(self.c2.forward(x)));
        self.fc.forward(x.flatten(1, 3))
    }
}

fn time(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| {name:<16} | burn   | {:8.0} ({:.0}-{:.0}) |",
        t[t.len() / 2],
        t[0],
        t[t.len() - 1]
    );
}

fn conv_case(name: &str, x: [usize; 4], d: usize, dev: &Device) {
    let n = Distribution::Normal(0.0, 1.0);
    let xt = Tensor::<4>::random(x, n, dev).require_grad();
    let w = Tensor::<4>::random([d, x[1], 3, 3], n, dev).require_grad();
    let b = Tensor::<1>::random([d], n, dev).require_grad();
    let up = Tensor::<4>::random([x[0], d, x[2], x[3]], n, dev);
    time(name, 5, || {
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let y = conv2d(xt.clone(), w.clone(), Some(b.clone()), opts);
        let g = (y * up.clone()).sum().backward();
        let grads = (
            xt.grad(&g).unwrap(),
            w.grad(&g).unwrap(),
            b.grad(&g).unwrap(),
        );
        drop(grads);
        dev.sync().unwrap();
    });
}

fn main() {
    let plain = Device::default();
    println!("device: {plain:?}");
    let n = Distribution::Normal(0.0, 1.0);
    let a = Tensor::<2>::random([1024, 1024], n, &plain);
    let bm = Tensor::<2>::random([1024, 1024], n, &plain);
    time("gemm_1024", 5, || {
        drop(a.clone().matmul(bm.clone()));
        plain.sync().unwrap();
    });
    let dev = plain.clone().autodiff();
    conv_case("conv_S3_fwd_bwd", [64, 32, 14, 14], 64, &dev);
    conv_case("conv_S4_fwd_bwd", [8, 64, 56, 56], 64, &dev);
    let mut model = Net::new(&dev);
    let mut opt = SgdConfig::new().init();
    let x = Tensor::<4>::random([64, 1, 28, 28], n, &dev);
    let labels: Vec<i64> = (0..64).map(|i| ((i * 7 + 3) % 10) as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [64]), &dev);
    let loss_fn = CrossEntropyLossConfig::new().init(&dev);
    time("train_step", 5, || {
        let logits = model.forward(x.clone());
        let loss = loss_fn.forward(logits, y.clone());
        let g = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(0.01, model.clone(), g);
        dev.sync().unwrap();
    });
}
