//! State dicts keyed as PyTorch's, loaded strictly; safetensors out and in (float32, and
//! int64 as PyTorch writes `num_batches_tracked`); a model trained on the GPU predicts the same
//! on the CPU; bad files are errors naming the file.

mod common;

use common::{gpu, randv};
use convshade::io::{load_safetensors, save_safetensors};
use convshade::nn::{
    BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential,
};
use convshade::{Conv2dOptions, Device, MaxPool2dOptions, Tensor};

fn net(seed: u64, dev: &Device) -> Sequential {
    let same = Conv2dOptions::new().padding(1);
    Sequential::new()
        .push(Conv2d::new(1, 4, 3, same, true, seed, dev).unwrap())
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Conv2d::new(4, 6, 3, same, false, seed + 1, dev).unwrap())
        .push(Flatten)
        .push(Linear::new(6 * 4 * 4, 3, true, seed + 2, dev).unwrap())
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn state_dicts_are_keyed_as_pytorch_and_round_trip_through_safetensors() {
    let cpu = Device::cpu();
    let a = net(1, &cpu);
    let keys: Vec<String> = a.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["0.weight", "0.bias", "3.weight", "5.weight", "5.bias"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.safetensors");
    save_safetensors(&file, &a.state_dict()).unwrap();
    let loaded = load_safetensors(&file, &cpu).unwrap();
    let mut b = net(50, &cpu);
    let x = Tensor::from_vec(randv(2 * 64, 3), [2, 1, 8, 8], &cpu).unwrap();
    assert_ne!(bits(&a.forward(&x).unwrap()), bits(&b.forward(&x).unwrap()));
    b.load_state_dict(&loaded).unwrap();
    assert_eq!(bits(&a.forward(&x).unwrap()), bits(&b.forward(&x).unwrap()));
}

#[test]
fn a_model_from_the_gpu_predicts_the_same_on_the_cpu() {
    let Some(g) = gpu() else { return };
    let cpu = Device::cpu();
    let trained = net(3, &g);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpu.safetensors");
    save_safetensors(&file, &trained.state_dict()).unwrap();
    let mut on_cpu = net(9, &cpu);
    on_cpu.load_state_dict(&load_safetensors(&file, &cpu).unwrap()).unwrap();
    let xv = randv(16 * 64, 5);
    let yg = trained.forward(&Tensor::from_vec(xv.clone(), [16, 1, 8, 8], &g).unwrap()).unwrap();
    let yc = on_cpu.forward(&Tensor::from_vec(xv, [16, 1, 8, 8], &cpu).unwrap()).unwrap();
    common::close(&yg, &yc, 1e-4, 1e-5, "logits");
    assert_eq!(yg.argmax_rows().unwrap(), yc.argmax_rows().unwrap());
}

#[test]
fn loading_is_strict_and_names_the_keys() {
    let cpu = Device::cpu();
    let mut m = net(1, &cpu);
    let before = m.state_dict();
    let mut sd = net(2, &cpu).state_dict();
    sd.retain(|(k, _)| k != "0.bias");
    sd.push(("7.weight".into(), Tensor::zeros([1], &cpu).unwrap()));
    sd[0].1 = Tensor::zeros([4, 1, 5, 5], &cpu).unwrap();
    let e = m.load_state_dict(&sd).unwrap_err().to_string();
    for part in [
        "load_state_dict",
        "missing keys [\"0.bias\"]",
        "unexpected keys [\"7.weight\"]",
        "0.weight: [4, 1, 5, 5] for [4, 1, 3, 3]",
    ] {
        assert!(e.contains(part), "{part} in {e}");
    }
    // nothing changed
    for ((_, a), (_, b)) in m.state_dict().iter().zip(&before) {
        assert_eq!(bits(a), bits(b));
    }
}

#[test]
fn integer_tensors_load_as_float_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bn.safetensors");
    let count = 7i64.to_le_bytes();
    let w: Vec<u8> = [0.5f32, -1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        (
            "1.num_batches_tracked",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &count).unwrap(),
        ),
        (
            "1.weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &w).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, &file).unwrap();
    let got = load_safetensors(&file, &Device::cpu()).unwrap();
    let find = |k: &str| got.iter().find(|(n, _)| n == k).unwrap().1.to_vec().unwrap();
    assert_eq!(find("1.num_batches_tracked"), [7.0]);
    assert_eq!(find("1.weight"), [0.5, -1.0]);
    // truncated, corrupt, missing
    let raw = std::fs::read(&file).unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, &raw[..raw.len() - 3]).unwrap();
    let e = load_safetensors(&bad, &Device::cpu()).unwrap_err().to_string();
    assert!(e.contains("bad.safetensors") && e.contains("not a valid safetensors"), "{e}");
    std::fs::write(&bad, b"garbage").unwrap();
    assert!(load_safetensors(&bad, &Device::cpu()).is_err());
    let e = load_safetensors(dir.path().join("none.safetensors"), &Device::cpu())
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.safetensors"), "{e}");
}

/// tools/export_torch_state.py's network: the same layers, indices and keys as PyTorch's.
fn torch_net(dev: &Device) -> Sequential {
    let same = Conv2dOptions::new().padding(1);
    Sequential::new()
        .push(Conv2d::new(1, 4, 3, same, true, 0, dev).unwrap())
        .push(BatchNorm2d::new(4, dev).unwrap())
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Conv2d::new(4, 6, 3, same, false, 1, dev).unwrap())
        .push(BatchNorm2d::new(6, dev).unwrap())
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Flatten)
        .push(Dropout::new(0.25, 2).unwrap())
        .push(Linear::new(24, 5, true, 3, dev).unwrap())
}

/// A state dict PyTorch saved (`safetensors.torch.save_file`, int64 `num_batches_tracked`)
/// loads as it is and reproduces PyTorch's eval-mode logits on every device.
#[test]
fn pytorch_saved_weights_reproduce_pytorchs_logits() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_state");
    let mut devices = vec![Device::cpu()];
    devices.extend(gpu());
    for dev in devices {
        let state = load_safetensors(format!("{dir}/state.safetensors"), &dev).unwrap();
        let mut net = torch_net(&dev);
        net.load_state_dict(&state).unwrap();
        net.set_training(false);
        // seven training steps were taken before saving
        let tracked = net.state_dict();
        let count = tracked.iter().find(|(k, _)| k == "1.num_batches_tracked").unwrap();
        assert_eq!(count.1.to_vec().unwrap(), [7.0]);
        let x = convshade::io::read_npy(format!("{dir}/input.npy")).unwrap();
        let want = convshade::io::read_npy(format!("{dir}/logits.npy")).unwrap();
        let got = net.forward(&Tensor::from_ndarray(&x, &dev).unwrap()).unwrap();
        assert_eq!(got.dims(), want.shape());
        let want: Vec<f32> = want.iter().copied().collect();
        common::assert_close(&got.to_vec().unwrap(), &want, 0.0, 1e-4, &dev.name());
    }
}
