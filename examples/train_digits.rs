//! A small CNN learns real handwritten digits (the UCI 8x8 digits shipped in data/digits):
//! conv -> relu -> max pool -> conv -> relu -> max pool -> linear, trained with Adam.
//! Runs on `CONVSHADE_DEVICE` (cpu, gpu or auto; default auto).

use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy, one_hot, Adam, Conv2dOptions, Device, MaxPool2dOptions, Optimizer, Result,
    Tensor,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits");

fn main() -> Result<()> {
    let dev = Device::from_env()?;
    println!("device: {}", dev.name());
    let images = convshade::io::read_npy(format!("{DATA}/images.npy"))?; // (1797, 1, 8, 8)
    let labels: Vec<usize> = convshade::io::read_npy(format!("{DATA}/labels.npy"))?
        .iter()
        .map(|&v| v as usize)
        .collect();
    let n = labels.len();
    let pixels = images.as_slice().expect("C order").to_vec();
    // The first 1500 images train, the remaining 297 test.
    let split = 1500;
    let batch = |lo: usize, hi: usize| -> Result<(Tensor, Vec<usize>)> {
        let x = Tensor::from_vec(pixels[lo * 64..hi * 64].to_vec(), [hi - lo, 1, 8, 8], &dev)?;
        Ok((x, labels[lo..hi].to_vec()))
    };

    let same = Conv2dOptions::new().padding(1);
    let net = Sequential::new()
        .push(Conv2d::new(1, 16, 3, same, true, 1, &dev)?) // (n, 16, 8, 8)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 16, 4, 4)
        .push(Conv2d::new(16, 32, 3, same, true, 2, &dev)?) // (n, 32, 4, 4)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 32, 2, 2)
        .push(Flatten)
        .push(Linear::new(128, 10, true, 3, &dev)?);
    let mut opt = Adam::new(net.parameters(), 1e-2)?;
    let bs = 50;
    let epochs = 8;
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for lo in (0..split).step_by(bs) {
            let (x, y) = batch(lo, (lo + bs).min(split))?;
            let loss = cross_entropy(&net.forward(&x)?, &one_hot(&y, 10, &dev)?)?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            total += loss.to_scalar()? * y.len() as f32;
        }
        let (xt, yt) = batch(split, n)?;
        let pred = convshade::no_grad(|| net.forward(&xt))?.argmax_rows()?;
        let correct = pred.iter().zip(&yt).filter(|(p, y)| p == y).count();
        println!(
            "epoch {epoch}: train loss {:.4}, test accuracy {:.1}% ({correct}/{})",
            total / split as f32,
            100.0 * correct as f32 / yt.len() as f32,
            yt.len()
        );
    }
    Ok(())
}
