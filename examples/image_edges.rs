//! Edges of a real photograph: a grayscale PNG in, Sobel gradient magnitude out as a PNG.
//! `cargo run --release --example image_edges -- [INPUT.png] [OUTPUT.png]`; the default input
//! is data/images/china_gray.png. `--device cpu|gpu|auto` (default: `CONVSHADE_DEVICE`, else
//! auto).

use clap::Parser;
use convshade::{conv2d, Conv2dOptions, Device, Error, Result, Tensor};

/// Sobel edges of a grayscale PNG, written as a PNG.
#[derive(Parser)]
struct Args {
    /// Input image (default: data/images/china_gray.png)
    input: Option<String>,
    /// Output image (default: target/china_edges.png)
    output: Option<String>,
    /// Device to run on (default: CONVSHADE_DEVICE, else auto)
    #[arg(long, value_parser = ["cpu", "gpu", "auto"])]
    device: Option<String>,
}

const DEFAULT_INPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/images/china_gray.png");
const DEFAULT_OUTPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/china_edges.png");

fn main() -> Result<()> {
    let args = Args::parse();
    let input = args.input.as_deref().unwrap_or(DEFAULT_INPUT);
    let output = args.output.as_deref().unwrap_or(DEFAULT_OUTPUT);
    let dev = match &args.device {
        Some(d) => Device::from_name(d)?,
        None => Device::from_env()?,
    };
    println!("device: {}", dev.name());

    let img = image::open(input)
        .map_err(|e| Error::Io { path: input.to_string(), msg: e.to_string() })?
        .to_luma8();
    let (w, h) = img.dimensions();
    let (w, h) = (w as usize, h as usize);
    let pixels: Vec<f32> = img.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
    let x = Tensor::from_vec(pixels, [1, 1, h, w], &dev)?;

    // Two output channels: the horizontal and the vertical Sobel kernel.
    #[rustfmt::skip]
    let sobel = Tensor::from_vec(vec![
        -1.0, 0.0, 1.0,  -2.0, 0.0, 2.0,  -1.0, 0.0, 1.0,
        -1.0, -2.0, -1.0,  0.0, 0.0, 0.0,  1.0, 2.0, 1.0,
    ], [2, 1, 3, 3], &dev)?;
    let g = conv2d(&x, &sobel, None, &Conv2dOptions::new().padding(1))?; // (1, 2, h, w)
    let magnitude = g.square()?.sum_axis(1, false)?.sqrt()?; // (1, h, w)
    let v = magnitude.to_vec()?;
    let max = v.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
    let bytes: Vec<u8> = v.iter().map(|m| (m / max * 255.0).round() as u8).collect();
    let out = image::GrayImage::from_raw(w as u32, h as u32, bytes)
        .expect("buffer matches the image size");
    out.save(output).map_err(|e| Error::Io { path: output.to_string(), msg: e.to_string() })?;
    let strong = v.iter().filter(|&&m| m > 0.25 * max).count();
    println!(
        "{input}: {w}x{h}, strongest gradient {max:.3}, {:.1}% of pixels above a quarter of it",
        100.0 * strong as f32 / v.len() as f32
    );
    println!("wrote {output}");
    Ok(())
}
