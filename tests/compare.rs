//! `argmax` and `eq`: PyTorch's semantics (first maximum, NaN the largest; NaN equals nothing)
//! on each device against a host reference, and their errors.

mod common;

use common::{gpu, randv};
use convshade::{Device, Error, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

/// The first maximum of each line along `axis` of a row-major `dims` array, NaN the largest.
fn argmax_ref(v: &[f32], dims: &[usize], axis: usize) -> Vec<f32> {
    let outer: usize = dims[..axis].iter().product();
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| v[(o * len + k) * inner + i];
            let mut best = 0;
            for k in 1..len {
                let (x, b) = (at(k), at(best));
                if !b.is_nan() && (x > b || x.is_nan()) {
                    best = k;
                }
            }
            out.push(best as f32);
        }
    }
    out
}

/// Values drawn from a few levels, so lines hold ties, with NaNs in some lines.
fn tied(n: usize, seed: u64, nans: bool) -> Vec<f32> {
    let mut v: Vec<f32> = randv(n, seed).iter().map(|x| (x * 3.0).round()).collect();
    if nans {
        for i in (5..n).step_by(17) {
            v[i] = f32::NAN;
        }
    }
    v
}

#[test]
fn argmax_takes_the_first_maximum_along_any_axis() {
    let dims = [3, 7, 5];
    for nans in [false, true] {
        let v = tied(3 * 7 * 5, 4, nans);
        for dev in devices() {
            let x = Tensor::from_vec(v.clone(), dims, &dev).unwrap();
            for axis in 0..3 {
                let want = argmax_ref(&v, &dims, axis);
                let got = x.argmax(axis, false).unwrap();
                let mut out = dims.to_vec();
                out.remove(axis);
                assert_eq!(got.dims(), out, "{dev:?} axis {axis}");
                assert_eq!(got.to_vec().unwrap(), want, "{dev:?} axis {axis} nans {nans}");
                let kept = x.argmax(axis, true).unwrap();
                out.insert(axis, 1);
                assert_eq!(kept.dims(), out, "{dev:?} axis {axis}, keepdim");
            }
        }
    }
}

#[test]
fn argmax_of_classifier_rows_matches_argmax_rows() {
    for dev in devices() {
        let v = randv(64 * 10, 8);
        let x = Tensor::from_vec(v, [64, 10], &dev).unwrap();
        let host: Vec<f32> = x.argmax_rows().unwrap().iter().map(|&i| i as f32).collect();
        assert_eq!(x.argmax(1, false).unwrap().to_vec().unwrap(), host, "{dev:?}");
    }
}

#[test]
fn argmax_records_no_gradient_and_rejects_bad_axes() {
    for dev in devices() {
        let x = Tensor::from_vec(randv(6, 1), [2, 3], &dev).unwrap().requires_grad_();
        assert!(!x.argmax(1, false).unwrap().requires_grad(), "{dev:?}");
        for (t, axis) in [(x.clone(), 2), (Tensor::zeros([2, 0], &dev).unwrap(), 1)] {
            match t.argmax(axis, false) {
                Err(Error::Invalid { op: "argmax", .. }) => {}
                other => panic!("{dev:?}: axis {axis} of {:?}: {other:?}", t.dims()),
            }
        }
    }
}

#[test]
fn eq_compares_with_broadcasting_and_nan_equals_nothing() {
    let a = vec![1.0, 2.0, f32::NAN, -0.0, 3.0, 2.0];
    let b = vec![1.0, 5.0, f32::NAN];
    for dev in devices() {
        let ta = Tensor::from_vec(a.clone(), [2, 3], &dev).unwrap();
        let tb = Tensor::from_vec(b.clone(), [3], &dev).unwrap();
        let want = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(ta.eq(&tb).unwrap().to_vec().unwrap(), want, "{dev:?}");
        let zero = Tensor::from_vec(vec![0.0], [1], &dev).unwrap();
        assert_eq!(ta.eq(&zero).unwrap().to_vec().unwrap(), [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let bad = Tensor::zeros([4], &dev).unwrap();
        assert!(matches!(ta.eq(&bad), Err(Error::Invalid { op: "eq", .. })), "{dev:?}");
    }
}

#[test]
fn accuracy_counted_on_the_device() {
    // the training examples' count: rows whose first maximum is at the label
    for dev in devices() {
        let logits = Tensor::from_vec(tied(32 * 10, 3, false), [32, 10], &dev).unwrap();
        let labels: Vec<usize> = (0..32).map(|i| (i * 3) % 10).collect();
        let host = logits.argmax_rows().unwrap();
        let want = host.iter().zip(&labels).filter(|(p, l)| p == l).count();
        let y = Tensor::from_vec(labels.iter().map(|&l| l as f32).collect(), [32], &dev).unwrap();
        let got = logits.argmax(1, false).unwrap().eq(&y).unwrap().sum_all().unwrap();
        assert_eq!(got.to_scalar().unwrap(), want as f32, "{dev:?}");
        assert!(want > 0, "the case must count some rows right");
    }
}
