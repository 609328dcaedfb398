//! Dropout: PyTorch's scaling, seeded masks equal on both devices, the mask as gradient, the
//! identity in evaluation (through Sequential), and p outside [0, 1) refused.

mod common;

use common::gpu;
use convshade::nn::{Dropout, Module, ReLU, Sequential};
use convshade::{Device, Tensor};

fn input(dev: &Device) -> Tensor {
    let v: Vec<f32> = (0..10_000).map(|i| 1.0 + (i % 7) as f32).collect();
    Tensor::from_vec(v, [100, 100], dev).unwrap().requires_grad_()
}

#[test]
fn dropout_zeroes_about_p_and_scales_the_rest() {
    let mut outs = Vec::new();
    for dev in std::iter::once(Device::cpu()).chain(gpu()) {
        let d = Dropout::new(0.3, 5).unwrap();
        let x = input(&dev);
        let y = d.forward(&x).unwrap();
        let (xv, yv) = (x.to_vec().unwrap(), y.to_vec().unwrap());
        let zeros = yv.iter().filter(|v| **v == 0.0).count();
        assert!((2700..3300).contains(&zeros), "{dev:?}: {zeros} of 10,000 zeroed");
        for (a, b) in xv.iter().zip(&yv) {
            assert!(*b == 0.0 || *b == a * (1.0 / 0.7), "{dev:?}: {a} -> {b}");
        }
        // the gradient of sum(y) is the mask
        let g = y.sum_all().unwrap().backward().unwrap();
        let gv = g.get(&x).unwrap().to_vec().unwrap();
        let keep = 1.0 / (1.0 - 0.3f32);
        for (b, gi) in yv.iter().zip(&gv) {
            assert_eq!(*gi, if *b == 0.0 { 0.0 } else { keep }, "{dev:?}");
        }
        // a second call draws a new mask
        let y2 = d.forward(&x).unwrap().to_vec().unwrap();
        assert_ne!(y2, yv);
        outs.push(yv.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
    if outs.len() == 2 {
        assert_eq!(outs[0], outs[1], "the same mask on both devices");
    }
}

#[test]
fn evaluation_passes_the_input_through() {
    let mut net = Sequential::new().push(Dropout::new(0.5, 1).unwrap()).push(ReLU);
    let x = input(&Device::cpu());
    assert_ne!(net.forward(&x).unwrap().to_vec().unwrap(), x.to_vec().unwrap());
    net.set_training(false);
    assert_eq!(net.forward(&x).unwrap().to_vec().unwrap(), x.to_vec().unwrap());
    net.set_training(true);
    assert_ne!(net.forward(&x).unwrap().to_vec().unwrap(), x.to_vec().unwrap());
}

#[test]
fn p_outside_zero_to_one_is_refused() {
    for p in [-0.1, 1.0, 1.5, f32::NAN] {
        let e = Dropout::new(p, 0).err().expect("refused").to_string();
        assert!(e.starts_with("dropout: probability p must lie in [0, 1)"), "{e}");
    }
    assert!(Dropout::new(0.0, 0).is_ok());
}
