//! softmax, log_softmax, SiLU, GELU (tanh) and cross_entropy from class indices with label
//! smoothing: against formulas computed here in f64, GPU against CPU, numerical gradients, and
//! clear errors.

mod common;

use common::{assert_close, check_op, gradcheck, randv};
use convshade::{cross_entropy_labels, CrossEntropyOptions, Device, Reduction, Tensor};

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s.to_vec(), &Device::cpu()).unwrap()
}

/// log_softmax along the last axis of rows of `k`, in f64.
fn log_softmax_ref(v: &[f32], k: usize) -> Vec<f64> {
    v.chunks(k)
        .flat_map(|r| {
            let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = r.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            r.iter().map(move |&x| x as f64 - m - lse).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn activations_match_their_formulas() {
    // large values: the shift keeps softmax finite
    let mut v = randv(24, 3);
    v[5] = 80.0;
    v[6] = -80.0;
    let x = t(&v, &[4, 6]);
    let want = log_softmax_ref(&v, 6);
    let f32s = |w: Vec<f64>| w.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let got = x.log_softmax(1).unwrap().to_vec().unwrap();
    assert_close(&got, &f32s(want.clone()), 1e-6, 1e-6, "log_softmax");
    let sm = x.softmax(1).unwrap().to_vec().unwrap();
    assert_close(&sm, &f32s(want.iter().map(|l| l.exp()).collect()), 1e-6, 1e-7, "softmax");
    // along axis 0: the transpose's rows
    let xt = t(&v, &[4, 6]).transpose(0, 1).unwrap();
    let by0 = x.softmax(0).unwrap().transpose(0, 1).unwrap();
    assert_close(
        &by0.to_vec().unwrap(),
        &xt.softmax(1).unwrap().to_vec().unwrap(),
        1e-6,
        1e-7,
        "axis 0",
    );
    let silu: Vec<f32> = v.iter().map(|&x| (x as f64 / (1.0 + (-x as f64).exp())) as f32).collect();
    assert_close(&x.silu().unwrap().to_vec().unwrap(), &silu, 1e-6, 1e-6, "silu");
    let gelu: Vec<f32> = v
        .iter()
        .map(|&x| {
            let x = x as f64;
            let k = (2.0 / std::f64::consts::PI).sqrt();
            (0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())) as f32
        })
        .collect();
    assert_close(&x.gelu_tanh().unwrap().to_vec().unwrap(), &gelu, 1e-5, 1e-6, "gelu tanh");
}

#[test]
fn cross_entropy_with_label_smoothing_matches_pytorchs_formula() {
    let v = randv(15, 4);
    let labels = [2, 0, 4];
    let logp = log_softmax_ref(&v, 5);
    for (s, red) in [(0.0, Reduction::Mean), (0.1, Reduction::Mean), (0.25, Reduction::Sum)] {
        let mut want = 0.0f64;
        for (i, &y) in labels.iter().enumerate() {
            let row = &logp[i * 5..i * 5 + 5];
            want += -(1.0 - s as f64) * row[y] - s as f64 / 5.0 * row.iter().sum::<f64>();
        }
        if red == Reduction::Mean {
            want /= 3.0;
        }
        let opts = CrossEntropyOptions { label_smoothing: s, reduction: red };
        let got = cross_entropy_labels(&t(&v, &[3, 5]), &labels, opts).unwrap();
        assert_close(&got.to_vec().unwrap(), &[want as f32], 1e-6, 1e-6, &format!("{s} {red:?}"));
    }
}

type Op = dyn Fn(&[Tensor]) -> convshade::Result<Tensor>;

#[test]
fn gradients_are_right_and_the_gpu_agrees() {
    let x = vec![(vec![3, 5], randv(15, 9))];
    let opts = CrossEntropyOptions { label_smoothing: 0.1, reduction: Reduction::Mean };
    let cases: Vec<(&str, Box<Op>)> = vec![
        ("log_softmax", Box::new(|t| t[0].log_softmax(1))),
        ("softmax axis 0", Box::new(|t| t[0].softmax(0))),
        ("silu", Box::new(|t| t[0].silu())),
        ("gelu_tanh", Box::new(|t| t[0].gelu_tanh())),
        ("cross_entropy", Box::new(move |t| cross_entropy_labels(&t[0], &[1, 4, 0], opts))),
    ];
    for (name, f) in &cases {
        gradcheck(&x, f.as_ref(), 1e-3, 2e-2);
        check_op(name, &x, 1e-4, 1e-5, f.as_ref());
    }
}

#[test]
fn bad_arguments_are_errors() {
    let x = t(&randv(6, 1), &[2, 3]);
    let e = x.softmax(2).unwrap_err().to_string();
    assert!(e.starts_with("softmax: axis 2 is out of range"), "{e}");
    let opts = |s| CrossEntropyOptions { label_smoothing: s, reduction: Reduction::Mean };
    let e = cross_entropy_labels(&x, &[0, 3], opts(0.0)).unwrap_err().to_string();
    assert!(e.starts_with("cross_entropy: label 3 at position 1"), "{e}");
    let e = cross_entropy_labels(&x, &[0], opts(0.0)).unwrap_err().to_string();
    assert!(e.starts_with("cross_entropy: 1 labels for 2 rows"), "{e}");
    for s in [-0.1, 1.5, f32::NAN] {
        let e = cross_entropy_labels(&x, &[0, 1], opts(s)).unwrap_err().to_string();
        assert!(e.starts_with("cross_entropy: label_smoothing"), "{e}");
    }
}
