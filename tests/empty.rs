//! Empty tensors (a dimension of 0) through the ops, forward and backward, with PyTorch's
//! results: empty outputs, zero gradients, `sum` of nothing 0 and `mean` of nothing NaN, the
//! padding of an empty axis the constant; and PyTorch's refusals (the maximum of nothing, an
//! empty spatial axis in a window op). On every device.

mod common;

use common::gpu;
use convshade::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, conv2d, cross_entropy_labels, max_pool2d,
    pad, upsample, AvgPool2dOptions, Conv2dOptions, CrossEntropyOptions, Device, MaxPool2dOptions,
    PadMode, Reduction, Tensor, UpsampleOptions, UpsampleSize,
};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

fn t(v: Vec<f32>, s: &[usize], dev: &Device) -> Tensor {
    Tensor::from_vec(v, s.to_vec(), dev).unwrap().requires_grad_()
}

#[test]
fn creation_elementwise_and_layout() {
    for dev in devices() {
        let e = t(vec![], &[0, 3], &dev);
        assert_eq!(e.dims(), &[0, 3]);
        assert!(e.to_vec().unwrap().is_empty());
        assert_eq!(Tensor::zeros([2, 0], &dev).unwrap().elem_count(), 0);
        let row = t(vec![1.0, 2.0, 3.0], &[1, 3], &dev);
        let y = e.add(&row).unwrap().relu().unwrap().mul_scalar(2.0).unwrap();
        assert_eq!(y.dims(), &[0, 3]);
        let g = y.sum_all().unwrap().backward().unwrap();
        // the broadcast operand's gradient sums over no rows: zeros
        assert_eq!(g.get(&row).unwrap().to_vec().unwrap(), [0.0; 3], "{}", dev.name());
        assert_eq!(g.get(&e).unwrap().dims(), &[0, 3]);
        assert_eq!(e.reshape([3, 0]).unwrap().dims(), &[3, 0]);
        assert_eq!(e.permute(&[1, 0]).unwrap().dims(), &[3, 0]);
        assert_eq!(e.broadcast_to([2, 0, 3]).unwrap().dims(), &[2, 0, 3]);
    }
}

#[test]
fn reductions_of_nothing() {
    for dev in devices() {
        let e = t(vec![], &[2, 0], &dev);
        assert_eq!(e.sum_all().unwrap().to_vec().unwrap(), [0.0]);
        assert!(e.mean_all().unwrap().to_vec().unwrap()[0].is_nan());
        // over the empty axis: one value per row
        assert_eq!(e.sum_axis(1, false).unwrap().to_vec().unwrap(), [0.0, 0.0]);
        let m = e.mean_axis(1, false).unwrap().to_vec().unwrap();
        assert!(m.iter().all(|v| v.is_nan()), "{m:?}");
        // over the other axis: nothing
        assert_eq!(e.sum_axis(0, false).unwrap().dims(), &[0]);
        // softmax over an empty axis is empty, as PyTorch's (no maximum is needed)
        assert_eq!(e.softmax(1).unwrap().dims(), &[2, 0]);
        assert_eq!(e.log_softmax(0).unwrap().dims(), &[2, 0]);
        let err = e.max_axis(1, false).err().unwrap().to_string();
        assert!(err.starts_with("max: ") && err.contains("empty"), "{err}");
        let g = e.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&e).unwrap().dims(), &[2, 0]);
    }
}

#[test]
fn products_over_nothing_are_zeros() {
    for dev in devices() {
        let a = t(vec![], &[2, 0], &dev);
        let b = t(vec![], &[0, 3], &dev);
        let y = a.matmul(&b).unwrap();
        assert_eq!(y.dims(), &[2, 3]);
        assert_eq!(y.to_vec().unwrap(), [0.0; 6], "{}", dev.name());
        // no rows
        let x = t(vec![], &[0, 4], &dev);
        let w = t(vec![1.0; 12], &[3, 4], &dev);
        let bias = t(vec![1.0, 2.0, 3.0], &[3], &dev);
        let y = x.linear(&w, Some(&bias)).unwrap();
        assert_eq!(y.dims(), &[0, 3]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&w).unwrap().to_vec().unwrap(), [0.0; 12]);
        assert_eq!(g.get(&bias).unwrap().to_vec().unwrap(), [0.0; 3]);
    }
}

#[test]
fn window_ops_on_an_empty_batch() {
    for dev in devices() {
        let x = t(vec![], &[0, 2, 5, 5], &dev);
        let w = t(vec![0.5; 3 * 2 * 9], &[3, 2, 3, 3], &dev);
        let b = t(vec![1.0; 3], &[3], &dev);
        let y = conv2d(&x, &w, Some(&b), &Conv2dOptions::new().padding(1)).unwrap();
        assert_eq!(y.dims(), &[0, 3, 5, 5]);
        let p = max_pool2d(&y, &MaxPool2dOptions::new(2)).unwrap();
        assert_eq!(p.dims(), &[0, 3, 2, 2]);
        let u = upsample(&p, &UpsampleOptions::nearest(UpsampleSize::Size(4, 4))).unwrap();
        assert_eq!(u.dims(), &[0, 3, 4, 4]);
        let g = u.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&w).unwrap().to_vec().unwrap(), vec![0.0; 54]);
        assert_eq!(g.get(&b).unwrap().to_vec().unwrap(), [0.0; 3]);
        assert_eq!(g.get(&x).unwrap().dims(), &[0, 2, 5, 5]);
        // an empty spatial axis is refused, as PyTorch refuses it
        let flat = t(vec![], &[1, 2, 0, 5], &dev);
        let e = max_pool2d(&flat, &MaxPool2dOptions::new(1)).err().unwrap().to_string();
        assert!(e.starts_with("max_pool2d: "), "{e}");
        // padding an empty axis with a constant fills it
        let row = t(vec![], &[2, 0], &dev);
        let y = pad(&row, &[1, 2], PadMode::Constant(7.0)).unwrap();
        assert_eq!(y.to_vec().unwrap(), [7.0; 6]);
        let e = pad(&row, &[1, 1], PadMode::Replicate).err().unwrap().to_string();
        assert!(e.starts_with("pad: "), "{e}");
    }
}

/// Zero channels: PyTorch refuses them in the pools (but the adaptive average), in upsampling
/// and in the non-constant pads; the adaptive average and constant padding give empty outputs.
#[test]
fn window_ops_on_zero_channels_as_pytorch() {
    for dev in devices() {
        let x = t(vec![], &[2, 0, 5, 5], &dev);
        let refused = [
            ("max_pool2d", max_pool2d(&x, &MaxPool2dOptions::new(2)).err()),
            ("avg_pool2d", avg_pool2d(&x, &AvgPool2dOptions::new(2)).err()),
            ("adaptive_max_pool2d", adaptive_max_pool2d(&x, (2, 2)).err()),
            ("upsample", upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Size(7, 7))).err()),
            ("pad", pad(&x, &[1, 1, 1, 1], PadMode::Reflect).err()),
        ];
        for (op, e) in refused {
            let e = e.unwrap_or_else(|| panic!("{op} of zero channels must be refused"));
            assert!(e.to_string().starts_with(&format!("{op}: ")), "{e}");
        }
        assert_eq!(adaptive_avg_pool2d(&x, (2, 2)).unwrap().dims(), &[2, 0, 2, 2]);
        let y = pad(&x, &[1, 1, 1, 1], PadMode::Constant(0.0)).unwrap();
        assert_eq!(y.dims(), &[2, 0, 7, 7]);
        // an empty batch is fine in every mode
        let batch = t(vec![], &[0, 2, 5, 5], &dev);
        let y = pad(&batch, &[1, 1, 1, 1], PadMode::Reflect).unwrap();
        assert_eq!(y.dims(), &[0, 2, 7, 7]);
    }
}

#[test]
fn losses_over_no_rows() {
    for dev in devices() {
        let logits = t(vec![], &[0, 4], &dev);
        let mean = CrossEntropyOptions::default();
        let l = cross_entropy_labels(&logits, &[], mean).unwrap();
        assert!(l.to_vec().unwrap()[0].is_nan(), "the mean of nothing, as PyTorch's");
        let sum = CrossEntropyOptions { reduction: Reduction::Sum, ..mean };
        let l = cross_entropy_labels(&logits, &[], sum).unwrap();
        assert_eq!(l.to_vec().unwrap(), [0.0]);
        let g = l.backward().unwrap();
        assert_eq!(g.get(&logits).unwrap().dims(), &[0, 4]);
    }
}
