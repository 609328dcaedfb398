//! The training examples' shared harness (examples/common): missing or corrupt data files are
//! errors naming the file and how to fetch it; a short run on a tiny dataset prints the per-epoch
//! line and ends with `test accuracy: XX.XX%`, and is reproducible from the seed.

mod common;

#[path = "../examples/common/mod.rs"]
#[allow(dead_code)]
mod train_common;

use std::io::Write;
use std::path::Path;

use common::gpu;
use convshade::nn::{Flatten, Linear, Sequential};
use convshade::Device;
use train_common::{load_data, Defaults, TrainFlags};

fn flags(dir: &Path) -> TrainFlags {
    TrainFlags {
        data: Some(dir.to_path_buf()),
        device: Some("cpu".into()),
        epochs: Some(2),
        batch_size: Some(4),
        lr: Some(1e-2),
        seed: 3,
        save: None,
        resume: None,
        distributed: false,
        sync_bn: false,
    }
}

const DEFAULTS: Defaults = Defaults { dataset: "mnist", epochs: 1, batch_size: 8, lr: 1e-3 };

/// Gzipped IDX files of `n` 4x4 images whose label is the brightest quadrant.
fn write_idx(dir: &Path, prefix: &str, n: usize) {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, n as u8, 0, 0, 0, 4, 0, 0, 0, 4];
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, n as u8];
    for i in 0..n {
        let q = i % 4;
        for p in 0..16 {
            let quadrant = (p / 8) * 2 + (p % 4) / 2;
            images.push(if quadrant == q { 250 } else { (i * 7 + p) as u8 % 40 });
        }
        labels.push(q as u8);
    }
    for (name, bytes) in [("images-idx3", images), ("labels-idx1", labels)] {
        let f = std::fs::File::create(dir.join(format!("{prefix}-{name}-ubyte.gz"))).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        gz.finish().unwrap();
    }
}

#[test]
fn missing_and_corrupt_files_name_the_file_and_the_fetch_script() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_data(&flags(dir.path()), &DEFAULTS).err().unwrap().to_string();
    assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");
    assert!(e.contains("bash tools/fetch_data.sh"), "{e}");
    write_idx(dir.path(), "train", 8);
    write_idx(dir.path(), "t10k", 4);
    // a truncated test image file
    let bad = dir.path().join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&bad, &std::fs::read(&bad).unwrap()[..20]).unwrap();
    let e = load_data(&flags(dir.path()), &DEFAULTS).err().unwrap().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
    assert!(e.contains("bash tools/fetch_data.sh"), "{e}");
}

#[test]
fn a_short_run_learns_and_repeats_from_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 64);
    write_idx(dir.path(), "t10k", 16);
    let run_on = |save: &str, dev: &Device| {
        let mut net =
            Sequential::new().push(Flatten).push(Linear::new(16, 4, true, 1, dev).unwrap());
        let mut f = flags(dir.path());
        f.save = Some(dir.path().join(save));
        let mut out = Vec::new();
        train_common::train(&mut net, &f, &DEFAULTS, dev, &train_common::OneProcess, &mut out)
            .unwrap();
        let bytes = std::fs::read(dir.path().join(save)).unwrap();
        (bytes, net, String::from_utf8(out).unwrap())
    };
    let run = |save: &str| run_on(save, &Device::cpu());
    let (a, _, text) = run("a.safetensors");
    let (b, mut net, _) = run("b.safetensors");
    assert_eq!(a, b, "the same seed gives the same weights");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("epoch 1/2: loss "), "{text}");
    assert!(lines[2].starts_with("epoch 2/2: loss "), "{text}");
    let last = lines.last().unwrap();
    let pct = last.strip_prefix("test accuracy: ").and_then(|r| r.strip_suffix('%'));
    let pct: f64 = pct.unwrap().parse().unwrap();
    assert_eq!(format!("test accuracy: {pct:.2}%"), *last, "two decimals");
    // the saved weights classify the quadrants
    let (_, test) = load_data(&flags(dir.path()), &DEFAULTS).unwrap();
    let x = convshade::data::DataLoader::new(16)
        .unwrap()
        .epoch(&test, 0, &Device::cpu())
        .next()
        .unwrap()
        .unwrap();
    use convshade::nn::Module;
    net.set_training(false);
    let pred = net.forward(&x.0).unwrap().argmax_rows().unwrap();
    assert_eq!(pred, x.1);
    // and on the GPU, bit for bit run to run
    if let Some(gpu) = gpu() {
        let (c, ..) = run_on("c.safetensors", &gpu);
        let (d, ..) = run_on("d.safetensors", &gpu);
        assert_eq!(c, d);
    }
}
