//! Edge detection with a [1, -1] kernel, then learning that kernel back by gradient descent
//! (the classic corr2d tutorial). `--device cpu|gpu|auto` (default: `CONVSHADE_DEVICE`, else
//! auto); `gpu` fails where there is no adapter.

use clap::Parser;
use convshade::{conv2d, corr2d, Conv2dOptions, Device, Result, Tensor, Var};

/// The corr2d tutorial: edge detection with a [1, -1] kernel, and learning it back.
#[derive(Parser)]
struct Args {
    /// Device to run on (default: CONVSHADE_DEVICE, else auto)
    #[arg(long, value_parser = ["cpu", "gpu", "auto"])]
    device: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dev = match &args.device {
        Some(d) => Device::from_name(d)?,
        None => Device::from_env()?,
    };
    println!("device: {}", dev.name());

    // corr2d of the tutorial: arange(9) by arange(4)
    let x = Tensor::arange(0.0, 9.0, &dev)?.reshape([3, 3])?;
    let k = Tensor::arange(0.0, 4.0, &dev)?.reshape([2, 2])?;
    let y = corr2d(&x, &k)?;
    println!("corr2d(arange(9), arange(4)) = {:?}", y.to_vec2()?);
    let k2 = Tensor::from_vec(vec![1.0, 0.0, 1.0, 3.0], [2, 2], &dev)?;
    println!("corr2d(that, [[1, 0], [1, 3]]) = {:?}", corr2d(&y, &k2)?.to_vec2()?);

    // A 6x8 image, white with black columns 2..6.
    let mut img = vec![1.0f32; 6 * 8];
    for r in 0..6 {
        for c in 2..6 {
            img[r * 8 + c] = 0.0;
        }
    }
    let image = Tensor::from_vec(img, [6, 8], &dev)?;
    let edge = Tensor::from_vec(vec![1.0, -1.0], [1, 2], &dev)?;
    let edges = corr2d(&image, &edge)?;
    println!("edges of the image (1: white to black, -1: black to white):");
    for row in edges.to_vec2()? {
        println!("  {row:?}");
    }

    // Learn the kernel from (image, edges) pairs: a 1x2 convolution without bias.
    let x = image.reshape([1, 1, 6, 8])?;
    let target = edges.reshape([1, 1, 6, 7])?;
    // small uniform start in [-0.5, 0.5), like a freshly initialised conv layer
    let kernel = Var::new(&Tensor::rand([1, 1, 1, 2], 42, &dev)?.sub_scalar(0.5)?);
    let lr = 3e-2;
    for epoch in 1..=10 {
        let pred = conv2d(&x, &kernel.as_tensor(), None, &Conv2dOptions::default())?;
        let loss = pred.sub(&target)?.square()?.sum_all()?;
        let grads = loss.backward()?;
        let g = grads.get_var(&kernel).expect("kernel takes part in the loss");
        kernel.set(&convshade::no_grad(|| kernel.as_tensor().sub(&g.mul_scalar(lr)?))?)?;
        if epoch % 2 == 0 {
            println!("epoch {epoch}, loss {:.4}", loss.to_scalar()?);
        }
    }
    println!("learned kernel: {:?} (the edge kernel is [1, -1])", kernel.as_tensor().to_vec()?);
    Ok(())
}
