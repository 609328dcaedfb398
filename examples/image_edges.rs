//! Edges of a real photograph: a grayscale PNG in, Sobel gradient magnitude out as a PNG.
//! `cargo run --release --example image_edges -- [INPUT.png] [OUTPUT.png]`; the default input
//! is data/images/china_gray.png. Runs on `CONVSHADE_DEVICE` (default auto).

use convshade::{conv2d, Conv2dOptions, Device, Error, Result, Tensor};

const DEFAULT_INPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/images/china_gray.png");
const DEFAULT_OUTPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/china_edges.png");

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = args.first().map_or(DEFAULT_INPUT, String::as_str);
    let output = args.get(1).map_or(DEFAULT_OUTPUT, String::as_str);
    let dev = Device::from_env()?;
    println!("device: {}", dev.name());

    let img = image::open(input)
        .map_err(|e| Error::Io {
            path: input.to_string(),
            msg: e.to_string(),
        })?
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
    out.save(output).map_err(|e| Error::Io {
        path: output.to_string(),
        msg: e.to_string(),
    })?;
    let strong = v.iter().filter(|&&m| m > 0.25 * max).count();
    println!(
        "{input}: {w}x{h}, strongest gradient {max:.3}, {:.1}% of pixels above a quarter of it",
        100.0 * strong as f32 / v.len() as f32
    );
    println!("wrote {output}");
    Ok(())
}
