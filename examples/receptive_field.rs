//! Receptive fields (感受野), as the tutorials teach them: for each layer, how much of the input
//! one output element sees, how far apart neighbouring elements' fields are, and where the
//! first one starts; for the tutorials' stack (two 3x3 convolutions, then a pool, twice) and for
//! the MNIST CNN of `train_mnist`. The first is checked against autograd's exact region.
//!
//! `cargo run --release --example receptive_field`

use convshade::nn::{
    receptive_field_exact, receptive_fields, Conv2d, FieldRow, Flatten, Linear, MaxPool2d, ReLU,
    Sequential,
};
use convshade::{Conv2dOptions, Device, MaxPool2dOptions, Result};

fn table(title: &str, rows: &[FieldRow]) {
    println!("{title}");
    println!(
        "{:>5}  {:<36} {:>9} {:>9} {:>6} {:>8}",
        "layer", "window", "output", "field", "jump", "start"
    );
    for r in rows {
        let field = match r.global {
            true => "all".to_string(),
            false => format!("{}x{}", r.size.0, r.size.1),
        };
        println!(
            "{:>5}  {:<36} {:>9} {:>9} {:>6} {:>8}",
            r.index,
            r.window.to_string(),
            r.out.map_or("-".to_string(), |(h, w)| format!("{h}x{w}")),
            field,
            r.jump.0,
            r.start.0
        );
    }
    println!();
}

fn main() -> Result<()> {
    let dev = Device::cpu();
    let valid = Conv2dOptions::new();
    let same = Conv2dOptions::new().padding(1);
    let pool = || MaxPool2d(MaxPool2dOptions::new(2));
    let tutorial = Sequential::new()
        .push(Conv2d::new(1, 4, 3, valid, true, 1, &dev)?)
        .push(ReLU)
        .push(Conv2d::new(4, 4, 3, valid, true, 2, &dev)?)
        .push(ReLU)
        .push(pool())
        .push(Conv2d::new(4, 8, 3, valid, true, 3, &dev)?)
        .push(ReLU)
        .push(Conv2d::new(8, 8, 3, valid, true, 4, &dev)?)
        .push(ReLU)
        .push(pool());
    let rows = receptive_fields(&tutorial, [1, 1, 32, 32], &dev)?;
    table("two 3x3 convolutions and a 2x2 pool, twice, on 32x32:", &rows);
    let last = rows.last().expect("layers");
    let (r, c) = last.region((1, 1), (32, 32));
    println!(
        "output (1, 1) of the last layer sees input rows {}..={} and columns {}..={}",
        r.0, r.1, c.0, c.1
    );
    // the same by autograd: ReLU and max pooling pass gradients to part of it only, so the
    // exact region is at most the analytic one; over a few random inputs it fills it
    let exact = receptive_field_exact(&tutorial, [1, 1, 32, 32], &[0, 0, 1, 1], &dev, 8)?;
    println!(
        "autograd, over 8 random inputs: rows {:?}, columns {:?}, {} input positions",
        exact.rows, exact.cols, exact.positions
    );
    println!();

    let mnist = Sequential::new()
        .push(Conv2d::new(1, 32, 3, same, true, 1, &dev)?)
        .push(ReLU)
        .push(pool())
        .push(Conv2d::new(32, 64, 3, same, true, 2, &dev)?)
        .push(ReLU)
        .push(pool())
        .push(Flatten)
        .push(Linear::new(64 * 7 * 7, 128, true, 3, &dev)?)
        .push(ReLU)
        .push(Linear::new(128, 10, true, 4, &dev)?);
    table(
        "the MNIST CNN (train_mnist) on 28x28:",
        &receptive_fields(&mnist, [1, 1, 28, 28], &dev)?,
    );
    Ok(())
}
