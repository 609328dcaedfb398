//! A small CNN learns real handwritten digits: conv -> relu -> max pool -> conv -> relu ->
//! max pool -> linear, trained with Adam.
//!
//! By default it uses the UCI 8x8 digits shipped in data/digits (1500 train, 297 test). With
//! `-- --mnist DIR` it reads MNIST's IDX files from DIR instead (train-images-idx3-ubyte,
//! train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally
//! .gz). `--epochs N` sets the number of epochs; `--device cpu|gpu|auto` (default:
//! `CONVSHADE_DEVICE`, else auto).

use std::path::{Path, PathBuf};

use clap::Parser;

use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy, one_hot, Adam, Conv2dOptions, Device, Error, MaxPool2dOptions, Optimizer,
    Result, Tensor,
};

/// Images (n, 1, side, side) in [0, 1] as flat pixels, and labels.
struct Split {
    pixels: Vec<f32>,
    labels: Vec<usize>,
}

struct Data {
    side: usize,
    train: Split,
    test: Split,
}

fn bundled_digits() -> Result<Data> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits");
    let images = convshade::io::read_npy(format!("{dir}/images.npy"))?; // (1797, 1, 8, 8)
    let labels: Vec<usize> =
        convshade::io::read_npy(format!("{dir}/labels.npy"))?.iter().map(|&v| v as usize).collect();
    let pixels: Vec<f32> = images.iter().copied().collect();
    let split = 1500;
    Ok(Data {
        side: 8,
        train: Split { pixels: pixels[..split * 64].to_vec(), labels: labels[..split].to_vec() },
        test: Split { pixels: pixels[split * 64..].to_vec(), labels: labels[split..].to_vec() },
    })
}

/// `DIR/name` or `DIR/name.gz`, whichever exists.
fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if !plain.exists() && gz.exists() {
        gz
    } else {
        plain
    }
}

fn mnist(dir: &Path) -> Result<Data> {
    let cpu = Device::cpu();
    let split = |images: &str, labels: &str| -> Result<(usize, Split)> {
        let x = convshade::io::load_idx_images(idx_file(dir, images), &cpu)?;
        let labels = convshade::io::load_idx_labels(idx_file(dir, labels))?;
        let (n, _, h, w) = x.dims4()?;
        if n != labels.len() || h != w || h % 4 != 0 {
            return Err(Error::Format {
                path: dir.display().to_string(),
                msg: format!(
                    "{images}: {n} images of {h}x{w} with {} labels; need one label per image and square images with a side divisible by 4",
                    labels.len()
                ),
            });
        }
        Ok((h, Split { pixels: x.to_vec()?, labels }))
    };
    let (side, train) = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let (test_side, test) = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if test_side != side {
        return Err(Error::Format {
            path: dir.display().to_string(),
            msg: format!(
                "training images are {side}x{side} but test images {test_side}x{test_side}"
            ),
        });
    }
    Ok(Data { side, train, test })
}

/// A small CNN trained on handwritten digits.
#[derive(Parser)]
struct Args {
    /// Read MNIST's IDX files (plain or .gz) from this folder instead of the bundled digits
    #[arg(long)]
    mnist: Option<PathBuf>,
    /// Epochs to train
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Device to run on (default: CONVSHADE_DEVICE, else auto)
    #[arg(long, value_parser = ["cpu", "gpu", "auto"])]
    device: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = match &args.mnist {
        Some(dir) => mnist(dir)?,
        None => bundled_digits()?,
    };
    let epochs = args.epochs;
    let dev = match &args.device {
        Some(d) => Device::from_name(d)?,
        None => Device::from_env()?,
    };
    println!(
        "device: {}; {} training and {} test images of {s}x{s}",
        dev.name(),
        data.train.labels.len(),
        data.test.labels.len(),
        s = data.side
    );

    let same = Conv2dOptions::new().padding(1);
    let pooled = data.side / 4; // two 2x2 max pools
    let net = Sequential::new()
        .push(Conv2d::new(1, 16, 3, same, true, 1, &dev)?) // (n, 16, s, s)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 16, s/2, s/2)
        .push(Conv2d::new(16, 32, 3, same, true, 2, &dev)?) // (n, 32, s/2, s/2)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 32, s/4, s/4)
        .push(Flatten)
        .push(Linear::new(32 * pooled * pooled, 10, true, 3, &dev)?);
    let mut opt = Adam::new(net.parameters(), 1e-2)?;

    let px = data.side * data.side;
    let batch = |s: &Split, lo: usize, hi: usize| -> Result<(Tensor, Vec<usize>)> {
        let x = Tensor::from_vec(
            s.pixels[lo * px..hi * px].to_vec(),
            [hi - lo, 1, data.side, data.side],
            &dev,
        )?;
        Ok((x, s.labels[lo..hi].to_vec()))
    };
    let bs = 50;
    let n_train = data.train.labels.len();
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for lo in (0..n_train).step_by(bs) {
            let (x, y) = batch(&data.train, lo, (lo + bs).min(n_train))?;
            let loss = cross_entropy(&net.forward(&x)?, &one_hot(&y, 10, &dev)?)?;
            opt.step(&loss.backward()?)?;
            total += loss.to_scalar()? * y.len() as f32;
        }
        let mut correct = 0;
        let n_test = data.test.labels.len();
        for lo in (0..n_test).step_by(500) {
            let (x, y) = batch(&data.test, lo, (lo + 500).min(n_test))?;
            let pred = convshade::no_grad(|| net.forward(&x))?.argmax_rows()?;
            correct += pred.iter().zip(&y).filter(|(p, y)| p == y).count();
        }
        println!(
            "epoch {epoch}: train loss {:.4}, test accuracy {:.1}% ({correct}/{n_test})",
            total / n_train as f32,
            100.0 * correct as f32 / n_test as f32,
        );
    }
    Ok(())
}
