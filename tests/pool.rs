//! Pooling, upsampling and activations: hand-checked cases, GPU against CPU forward and
//! backward, determinism, and clear errors.

mod common;

use common::{check_op, gpu, randv};
use convshade::{
    adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_pool2d_with_indices, upsample,
    AvgPool2dOptions, Device, MaxPool2dOptions, Tensor, UpsampleOptions, UpsampleSize,
};
use proptest::prelude::*;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

fn t(v: Vec<f32>, s: [usize; 4], d: &Device) -> Tensor {
    Tensor::from_vec(v, s, d).unwrap()
}

fn arange4(n: usize, s: [usize; 4], d: &Device) -> Tensor {
    Tensor::arange(0.0, n as f32, d).unwrap().reshape(s).unwrap()
}

#[test]
fn tutorial_2x2_pooling() {
    for d in devices() {
        let x = arange4(9, [1, 1, 3, 3], &d);
        let o = MaxPool2dOptions::new(2).stride(1);
        assert_eq!(max_pool2d(&x, &o).unwrap().to_vec().unwrap(), vec![4.0, 5.0, 7.0, 8.0]);
        let a = AvgPool2dOptions::new(2).stride(1);
        assert_eq!(avg_pool2d(&x, &a).unwrap().to_vec().unwrap(), vec![2.0, 3.0, 5.0, 6.0]);
        // 4x4 with padding and stride, two channels
        let x = arange4(16, [1, 1, 4, 4], &d);
        assert_eq!(
            max_pool2d(&x, &MaxPool2dOptions::new(3)).unwrap().to_vec().unwrap(),
            vec![10.0]
        );
        let o = MaxPool2dOptions::new(3).padding(1).stride(2);
        assert_eq!(max_pool2d(&x, &o).unwrap().to_vec().unwrap(), vec![5.0, 7.0, 13.0, 15.0]);
        let o = MaxPool2dOptions::new((2, 3)).padding((0, 1)).stride((2, 3));
        assert_eq!(max_pool2d(&x, &o).unwrap().to_vec().unwrap(), vec![5.0, 7.0, 13.0, 15.0]);
        let x2 = Tensor::arange(0.0, 16.0, &d).unwrap().reshape([1, 1, 4, 4]).unwrap();
        let both = t(
            [x2.to_vec().unwrap(), x2.add_scalar(1.0).unwrap().to_vec().unwrap()].concat(),
            [1, 2, 4, 4],
            &d,
        );
        let o = MaxPool2dOptions::new(3).padding(1).stride(2);
        assert_eq!(
            max_pool2d(&both, &o).unwrap().to_vec().unwrap(),
            vec![5.0, 7.0, 13.0, 15.0, 6.0, 8.0, 14.0, 16.0]
        );
    }
}

#[test]
fn layer_shapes_of_the_cnn_tutorial() {
    // (1, 16, 14, 14): max pool 2/2 and avg pool 2/2 halve it, nearest x2 doubles it, relu keeps it.
    let d = Device::cpu();
    let x = Tensor::randn([1, 16, 14, 14], 0, &d).unwrap();
    assert_eq!(max_pool2d(&x, &MaxPool2dOptions::new(2).stride(2)).unwrap().dims(), &[1, 16, 7, 7]);
    assert_eq!(avg_pool2d(&x, &AvgPool2dOptions::new(2).stride(2)).unwrap().dims(), &[1, 16, 7, 7]);
    let up = upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Scale(2.0, 2.0))).unwrap();
    assert_eq!(up.dims(), &[1, 16, 28, 28]);
    assert_eq!(x.relu().unwrap().dims(), x.dims());
}

#[test]
fn max_pool_indices_and_overlapping_backward() {
    for d in devices() {
        let x =
            t(vec![1.0, 9.0, 2.0, 3.0, 4.0, 8.0, 7.0, 5.0, 6.0], [1, 1, 3, 3], &d).requires_grad_();
        let (y, idx) = max_pool2d_with_indices(&x, &MaxPool2dOptions::new(2).stride(1)).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![9.0, 9.0, 7.0, 8.0]);
        assert_eq!(idx.to_vec().unwrap(), vec![1.0, 1.0, 6.0, 5.0]);
        // 9 wins two overlapping windows: its gradient is 2.
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            g.get(&x).unwrap().to_vec().unwrap(),
            vec![0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
        );
        // padding counts as -inf: all-negative input never picks a pad
        let neg = t(vec![-5.0, -3.0, -4.0, -6.0], [1, 1, 2, 2], &d);
        let y = max_pool2d(&neg, &MaxPool2dOptions::new(2).stride(1).padding(1)).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![-5.0, -3.0, -3.0, -4.0, -3.0, -3.0, -4.0, -4.0, -6.0]);
    }
}

#[test]
fn ceil_mode_follows_pytorch() {
    let d = Device::cpu();
    let x = arange4(25, [1, 1, 5, 5], &d);
    // k2 s2 p1: ceil would give 4 but the 4th window starts in the padding: dropped -> 3
    let y = max_pool2d(&x, &MaxPool2dOptions::new(2).stride(2).padding(1).ceil_mode(true)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    // k2 s2 no padding: ceil keeps a partial last window
    let y = max_pool2d(&x, &MaxPool2dOptions::new(2).ceil_mode(true)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    assert_eq!(y.to_vec().unwrap()[8], 24.0);
    let y = max_pool2d(&x, &MaxPool2dOptions::new(2)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
}

#[test]
fn avg_pool_padding_rules() {
    let d = Device::cpu();
    let x = Tensor::ones([1, 1, 3, 3], &d).unwrap();
    let incl = avg_pool2d(&x, &AvgPool2dOptions::new(2).stride(2).padding(1)).unwrap();
    // corner window holds 1 real element of 4
    assert_eq!(incl.to_vec().unwrap(), vec![0.25, 0.5, 0.5, 1.0]);
    let excl =
        avg_pool2d(&x, &AvgPool2dOptions::new(2).stride(2).padding(1).count_include_pad(false))
            .unwrap();
    assert_eq!(excl.to_vec().unwrap(), vec![1.0; 4]);
    let ovr =
        avg_pool2d(&x, &AvgPool2dOptions::new(2).stride(2).padding(1).divisor_override(2)).unwrap();
    assert_eq!(ovr.to_vec().unwrap(), vec![0.5, 1.0, 1.0, 2.0]);
    // ceil_mode with padding: H=6 k3 s2 p1 -> last window clipped at H + pad: divides by 2 rows
    let x = Tensor::ones([1, 1, 6, 1], &d).unwrap();
    let y = avg_pool2d(
        &x,
        &AvgPool2dOptions::new((3, 1)).stride((2, 1)).padding((1, 0)).ceil_mode(true),
    )
    .unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![2.0 / 3.0, 1.0, 1.0, 0.5]);
}

#[test]
fn adaptive_and_global_average_pooling() {
    for d in devices() {
        let x = Tensor::randn([2, 3, 5, 7], 4, &d).unwrap();
        let g = adaptive_avg_pool2d(&x, 1).unwrap();
        let mean = x.reshape([2, 3, 35]).unwrap().mean_axis(2, false).unwrap();
        common::close(&g.reshape([2, 3]).unwrap(), &mean, 1e-5, 1e-6, "global average");
        // 5 -> 3 windows: [0,2), [1,4), [3,5)
        let r = arange4(5, [1, 1, 5, 1], &d);
        let y = adaptive_avg_pool2d(&r, (3, 1)).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![0.5, 2.0, 3.5]);
    }
}

#[test]
fn upsample_hand_cases() {
    for d in devices() {
        let x = t(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], &d);
        let y = upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Scale(2.0, 2.0))).unwrap();
        assert_eq!(
            y.to_vec().unwrap(),
            vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]
        );
        let row = t(vec![0.0, 1.0], [1, 1, 1, 2], &d);
        let ac =
            upsample(&row, &UpsampleOptions::bilinear(UpsampleSize::Size(1, 3), true)).unwrap();
        assert_eq!(ac.to_vec().unwrap(), vec![0.0, 0.5, 1.0]);
        let hp =
            upsample(&row, &UpsampleOptions::bilinear(UpsampleSize::Size(1, 4), false)).unwrap();
        assert_eq!(hp.to_vec().unwrap(), vec![0.0, 0.25, 0.75, 1.0]);
        // nearest 3 -> 2 uses floor(dst * 1.5): sources 0 and 1
        let r3 = t(vec![5.0, 6.0, 7.0], [1, 1, 1, 3], &d);
        let dn = upsample(&r3, &UpsampleOptions::nearest(UpsampleSize::Size(1, 2))).unwrap();
        assert_eq!(dn.to_vec().unwrap(), vec![5.0, 6.0]);
    }
}

#[test]
fn activation_values() {
    for d in devices() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0], [3], &d).unwrap().requires_grad_();
        assert_eq!(x.leaky_relu(0.1).unwrap().to_vec().unwrap(), vec![-0.2, 0.0, 3.0]);
        let s = x.sigmoid().unwrap().to_vec().unwrap();
        assert!((s[1] - 0.5).abs() < 1e-7 && (s[2] - 0.952_574_1).abs() < 1e-6);
        let th = x.tanh().unwrap().to_vec().unwrap();
        assert!((th[0] + 0.964_027_6).abs() < 1e-6 && th[1] == 0.0);
        let g = x.relu().unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 1.0]);
        // tanh stays finite for large inputs
        let big = Tensor::from_vec(vec![-100.0, 100.0], [2], &d).unwrap();
        assert_eq!(big.tanh().unwrap().to_vec().unwrap(), vec![-1.0, 1.0]);
    }
}

/// Values without ties, so max pooling's argmax is unambiguous on both devices.
fn distinct(n: usize, seed: u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
    let r = randv(n, seed);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|a, b| r[*a].partial_cmp(&r[*b]).unwrap());
    let shuffled: Vec<f32> = idx.iter().map(|&i| v[i] * 2.0 - 1.0).collect();
    v.copy_from_slice(&shuffled);
    v
}

/// dims, kernel, stride, padding, dilation, ceil_mode
type PoolCfg = ([usize; 4], (usize, usize), (usize, usize), (usize, usize), (usize, usize), bool);

fn pool_cfg() -> impl Strategy<Value = PoolCfg> {
    (
        (1usize..3, 1usize..4, 1usize..14, 1usize..14),
        (1usize..5, 1usize..5),
        (1usize..4, 1usize..4),
        (0usize..3, 0usize..3),
        (1usize..3, 1usize..3),
        any::<bool>(),
    )
        .prop_map(|((n, c, h, w), k, s, p, dl, ceil)| {
            ([n, c, h, w], k, s, (p.0.min(k.0 / 2), p.1.min(k.1 / 2)), dl, ceil)
        })
        .prop_filter("window fits", |(d, k, _, p, dl, _)| {
            dl.0 * (k.0 - 1) < d[2] + 2 * p.0 && dl.1 * (k.1 - 1) < d[3] + 2 * p.1
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn gpu_max_pool_matches_cpu((dims, k, s, p, dl, ceil) in pool_cfg(), seed in 0u64..1000) {
        let n = dims.iter().product();
        let inp = vec![(dims.to_vec(), distinct(n, seed))];
        let o = MaxPool2dOptions::new(k).stride(s).padding(p).dilation(dl).ceil_mode(ceil);
        check_op("max_pool2d", &inp, 0.0, 0.0, &|t| max_pool2d(&t[0], &o));
    }

    #[test]
    fn gpu_avg_pool_matches_cpu((dims, k, s, p, _dl, ceil) in pool_cfg(), incl in any::<bool>(), div in 0usize..3, seed in 0u64..1000) {
        let n = dims.iter().product();
        let inp = vec![(dims.to_vec(), randv(n, seed))];
        let mut o = AvgPool2dOptions::new(k).stride(s).padding(p).ceil_mode(ceil).count_include_pad(incl);
        if div > 0 {
            o = o.divisor_override(div + 1);
        }
        check_op("avg_pool2d", &inp, 1e-5, 1e-6, &|t| avg_pool2d(&t[0], &o));
    }

    #[test]
    fn gpu_adaptive_pool_matches_cpu(n in 1usize..3, c in 1usize..4, h in 1usize..15, w in 1usize..15, oh in 1usize..8, ow in 1usize..8, seed in 0u64..1000) {
        let inp = vec![(vec![n, c, h, w], randv(n * c * h * w, seed))];
        check_op("adaptive_avg_pool2d", &inp, 1e-5, 1e-6, &|t| adaptive_avg_pool2d(&t[0], (oh, ow)));
    }

    #[test]
    fn gpu_upsample_matches_cpu(n in 1usize..3, c in 1usize..3, h in 1usize..12, w in 1usize..12, oh in 1usize..20, ow in 1usize..20, mode in 0usize..3, seed in 0u64..1000) {
        let inp = vec![(vec![n, c, h, w], randv(n * c * h * w, seed))];
        let size = UpsampleSize::Size(oh, ow);
        let o = match mode {
            0 => UpsampleOptions::nearest(size),
            1 => UpsampleOptions::bilinear(size, false),
            _ => UpsampleOptions::bilinear(size, true),
        };
        check_op("upsample", &inp, 1e-5, 1e-5, &|t| upsample(&t[0], &o));
    }

    #[test]
    fn gpu_upsample_by_scale_matches_cpu(h in 1usize..9, w in 1usize..9, sh in 1usize..4, sw in 1usize..4, half in any::<bool>(), seed in 0u64..1000) {
        let inp = vec![(vec![1, 2, h, w], randv(2 * h * w, seed))];
        let f = |v: usize| if half { v as f64 + 0.5 } else { v as f64 };
        let o = UpsampleOptions::nearest(UpsampleSize::Scale(f(sh), f(sw)));
        check_op("upsample scale", &inp, 1e-5, 1e-5, &|t| upsample(&t[0], &o));
    }
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let inp = vec![(vec![1, 2, 5, 6], distinct(60, 3))];
    let o = MaxPool2dOptions::new(3).stride(2).padding(1).ceil_mode(true);
    common::gradcheck(&inp, &|t| max_pool2d(&t[0], &o), 1e-3, 1e-2);
    let a = AvgPool2dOptions::new((3, 2))
        .stride((2, 1))
        .padding((1, 1))
        .ceil_mode(true)
        .count_include_pad(false);
    common::gradcheck(&inp, &|t| avg_pool2d(&t[0], &a), 1e-2, 1e-2);
    common::gradcheck(&inp, &|t| adaptive_avg_pool2d(&t[0], (3, 4)), 1e-2, 1e-2);
    let u = UpsampleOptions::bilinear(UpsampleSize::Size(7, 4), false);
    common::gradcheck(&inp, &|t| upsample(&t[0], &u), 1e-2, 1e-2);
}

#[test]
fn gpu_pool_and_upsample_backward_are_bit_reproducible() {
    let Some(g) = gpu() else { return };
    let inp = vec![(vec![2, 3, 17, 13], randv(2 * 3 * 17 * 13, 8))];
    let f = |t: &[Tensor]| {
        let a = avg_pool2d(&t[0], &AvgPool2dOptions::new(3).stride(1).padding(1))?;
        let m = max_pool2d(&a, &MaxPool2dOptions::new(3).stride(2))?;
        upsample(&m, &UpsampleOptions::bilinear(UpsampleSize::Size(17, 13), false))
    };
    let (_, g1) = common::run_op(&g, &inp, &f);
    let (_, g2) = common::run_op(&g, &inp, &f);
    let bits = |t: &Tensor| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(g1[0].as_ref().unwrap()), bits(g2[0].as_ref().unwrap()));
}

/// Windows that tile the input (kernel = stride, no padding, nothing left over) run a thread per
/// window on the GPU, forward and backward: the CPU's bits, with ties (the first maximum wins),
/// a NaN (it is the maximum), -0 and +0, and 1x1 windows.
#[test]
fn gpu_max_pool_over_tiling_windows_gives_the_cpu_bits() {
    let Some(g) = gpu() else { return };
    let bits = |t: &Tensor| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (dims, k) in [([2, 3, 8, 6], (2, 2)), ([1, 2, 9, 4], (3, 2)), ([1, 1, 3, 5], (1, 1))] {
        let n: usize = dims.iter().product();
        let mut v = randv(n, 21);
        v[1] = v[0];
        v[2 * dims[3]] = f32::NAN;
        v[n - 1] = -0.0;
        v[n - 2] = 0.0;
        let inp = vec![(dims.to_vec(), v)];
        let o = MaxPool2dOptions::new(k).stride(k);
        let f = |t: &[Tensor]| max_pool2d(&t[0], &o);
        let (yc, gc) = common::run_op(&Device::cpu(), &inp, &f);
        let (yg, gg) = common::run_op(&g, &inp, &f);
        assert_eq!(bits(&yg), bits(&yc), "{dims:?} {k:?}: forward");
        assert_eq!(bits(gg[0].as_ref().unwrap()), bits(gc[0].as_ref().unwrap()), "{dims:?} {k:?}");
        let x = |d: &Device| Tensor::from_vec(inp[0].1.clone(), dims, d).unwrap();
        let idx = |d: &Device| max_pool2d_with_indices(&x(d), &o).unwrap().1;
        assert_eq!(bits(&idx(&g)), bits(&idx(&Device::cpu())), "{dims:?} {k:?}: indices");
    }
}

#[test]
fn bad_pool_arguments_give_clear_errors() {
    let d = Device::cpu();
    let x = Tensor::ones([1, 1, 4, 4], &d).unwrap();
    let e = max_pool2d(&x, &MaxPool2dOptions::new(2).padding(2)).unwrap_err().to_string();
    assert!(e.contains("max_pool2d") && e.contains("half of the kernel"), "{e}");
    let e = max_pool2d(&x, &MaxPool2dOptions::new(0)).unwrap_err().to_string();
    assert!(e.contains("kernel size must be positive"), "{e}");
    let e = avg_pool2d(&x, &AvgPool2dOptions::new(2).stride(0)).unwrap_err().to_string();
    assert!(e.contains("avg_pool2d") && e.contains("stride"), "{e}");
    let e = avg_pool2d(&x, &AvgPool2dOptions::new(5)).unwrap_err().to_string();
    assert!(e.contains("larger than the padded input"), "{e}");
    let e = avg_pool2d(&x, &AvgPool2dOptions::new(2).divisor_override(0)).unwrap_err().to_string();
    assert!(e.contains("divisor_override"), "{e}");
    let e = adaptive_avg_pool2d(&x, (0, 2)).unwrap_err().to_string();
    assert!(e.contains("output size"), "{e}");
    let e =
        upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Size(0, 3))).unwrap_err().to_string();
    assert!(e.contains("upsample") && e.contains("positive"), "{e}");
    let e = upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Scale(f64::NAN, 2.0)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("scale factor"), "{e}");
    let e = upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Scale(0.1, 2.0)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("output size is 0"), "{e}");
    let e = max_pool2d(&Tensor::ones([4, 4], &d).unwrap(), &MaxPool2dOptions::new(2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(n, c, h, w)"), "{e}");
    let e = x.leaky_relu(f32::NAN).unwrap_err().to_string();
    assert!(e.contains("leaky_relu"), "{e}");
}

#[test]
fn ceil_mode_accepts_a_kernel_larger_than_the_input() {
    for d in devices() {
        let x = arange4(9, [1, 1, 3, 3], &d);
        let m = max_pool2d(&x, &MaxPool2dOptions::new(4).stride(4).ceil_mode(true)).unwrap();
        assert_eq!(m.to_vec().unwrap(), vec![8.0], "{d:?}");
        let a = avg_pool2d(&x, &AvgPool2dOptions::new(4).stride(4).ceil_mode(true)).unwrap();
        assert_eq!(a.to_vec().unwrap(), vec![4.0], "{d:?}");
        let p =
            avg_pool2d(&x, &AvgPool2dOptions::new(4).stride(4).padding(1).ceil_mode(true)).unwrap();
        assert_eq!(p.to_vec().unwrap(), vec![2.25], "{d:?}");
        let one = Tensor::ones([1, 1, 1, 1], &d).unwrap();
        let o = max_pool2d(&one, &MaxPool2dOptions::new(2).ceil_mode(true)).unwrap();
        assert_eq!(o.to_vec().unwrap(), vec![1.0]);
        // without ceil_mode the output would be empty: an error, as in PyTorch
        assert!(max_pool2d(&x, &MaxPool2dOptions::new(4).stride(4)).is_err());
    }
}

#[test]
fn scale_factors_follow_pytorch_special_cases() {
    for d in devices() {
        let x = t(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 1, 4], &d);
        // 4 * 1.2 floors to 4: the axis is copied unchanged
        for o in [
            UpsampleOptions::nearest(UpsampleSize::Scale(1.0, 1.2)),
            UpsampleOptions::bilinear(UpsampleSize::Scale(1.0, 1.2), false),
        ] {
            assert_eq!(
                upsample(&x, &o).unwrap().to_vec().unwrap(),
                vec![0.0, 1.0, 2.0, 3.0],
                "{d:?} {o:?}"
            );
        }
        let x = t(vec![0.0, 1.0, 2.0], [1, 1, 1, 3], &d);
        // 3 * 2.2 floors to 6 = 2 * 3: nearest takes dst >> 1
        let n = upsample(&x, &UpsampleOptions::nearest(UpsampleSize::Scale(1.0, 2.2))).unwrap();
        assert_eq!(n.to_vec().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        // bilinear keeps the factor's scale 1 / 2.2 (values from PyTorch)
        let b =
            upsample(&x, &UpsampleOptions::bilinear(UpsampleSize::Scale(1.0, 2.2), false)).unwrap();
        common::assert_close(
            &b.to_vec().unwrap(),
            &[0.0, 0.181_818_2, 0.636_363_6, 1.090_909_1, 1.545_454_5, 2.0],
            0.0,
            1e-6,
            "bilinear by 2.2",
        );
    }
}
