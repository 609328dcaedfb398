//! NPY and IDX (MNIST) files: round trips, gzip, and clear errors naming the file.

use std::io::Write;
use std::path::PathBuf;

use convshade::io::{load_idx_images, load_idx_labels, load_npy, read_idx, save_npy};
use convshade::{Device, Error, Tensor};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convshade-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

#[test]
fn idx_images_and_labels_plain_and_gzipped() {
    let d = Device::cpu();
    let pixels: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
    let images = idx(&[3, 2, 3], &pixels);
    let plain = scratch("images-idx3-ubyte");
    std::fs::write(&plain, &images).unwrap();
    let t = load_idx_images(&plain, &d).unwrap();
    assert_eq!(t.dims(), &[3, 1, 2, 3]);
    let v = t.to_vec().unwrap();
    assert_eq!(v[1], 15.0 / 255.0);
    assert_eq!(v[17], 255.0 / 255.0);

    let gz = scratch("images-idx3-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&images).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert_eq!(load_idx_images(&gz, &d).unwrap().to_vec().unwrap(), v);

    let labels = scratch("labels-idx1-ubyte");
    std::fs::write(&labels, idx(&[3], &[7, 0, 9])).unwrap();
    assert_eq!(load_idx_labels(&labels).unwrap(), vec![7, 0, 9]);
}

#[test]
fn malformed_idx_files_are_errors_naming_the_file() {
    let bad = scratch("bad-magic");
    std::fs::write(&bad, b"\x01\x02\x08\x01\x00\x00\x00\x01\x05").unwrap();
    let e = read_idx(&bad).unwrap_err();
    assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("bad-magic"), "{e}");
    let short = scratch("short");
    std::fs::write(&short, idx(&[2, 2, 2], &[1, 2, 3])).unwrap();
    let e = read_idx(&short).unwrap_err().to_string();
    assert!(e.contains("need 8 bytes"), "{e}");
    let floats = scratch("floats");
    std::fs::write(&floats, [0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    assert!(read_idx(&floats).unwrap_err().to_string().contains("unsigned bytes"));
    let labels = scratch("labels-2d");
    std::fs::write(&labels, idx(&[1, 2], &[1, 2])).unwrap();
    assert!(load_idx_labels(&labels).unwrap_err().to_string().contains("1 dimension"));
    let e = read_idx(scratch("missing")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let gz = scratch("broken.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    assert!(read_idx(&gz).unwrap_err().to_string().contains("gzip"));
}

#[test]
fn npy_round_trip_and_errors() {
    let d = Device::cpu();
    let t = Tensor::randn([2, 3, 4], 1, &d).unwrap();
    let p = scratch("t.npy");
    save_npy(&p, &t).unwrap();
    let back = load_npy(&p, &d).unwrap();
    assert_eq!(back.dims(), t.dims());
    assert_eq!(back.to_vec().unwrap(), t.to_vec().unwrap());
    std::fs::write(&p, b"not npy").unwrap();
    let e = load_npy(&p, &d).unwrap_err();
    assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("t.npy"), "{e}");
}
