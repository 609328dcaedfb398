//! Convolution: the tutorials' numbers, im2row/row2im, conv2d against a direct-loop oracle,
//! GPU against CPU forward and backward, determinism, and clear errors.

mod common;

use common::{assert_close, check_op, gpu, randv};
use convshade::testing::conv2d_direct;
use convshade::{
    conv2d, convolve2d, corr2d, im2row, row2im, Conv2dOptions, Device, Padding, Tensor,
};
use proptest::prelude::*;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

#[test]
fn corr2d_reproduces_the_tutorial() {
    for dev in devices() {
        let x = Tensor::arange(0.0, 9.0, &dev).unwrap().reshape([3, 3]).unwrap();
        let k = Tensor::arange(0.0, 4.0, &dev).unwrap().reshape([2, 2]).unwrap();
        let y = corr2d(&x, &k).unwrap();
        assert_eq!(y.to_vec2().unwrap(), vec![vec![19.0, 25.0], vec![37.0, 43.0]], "{dev:?}");
        let k2 = Tensor::from_vec(vec![1.0, 0.0, 1.0, 3.0], [2, 2], &dev).unwrap();
        assert_eq!(corr2d(&y, &k2).unwrap().to_vec2().unwrap(), vec![vec![185.0]], "{dev:?}");
    }
}

#[test]
fn edge_kernel_marks_the_edges() {
    for dev in devices() {
        let mut img = vec![1.0f32; 48];
        for r in 0..6 {
            for c in 2..6 {
                img[r * 8 + c] = 0.0;
            }
        }
        let x = Tensor::from_vec(img, [6, 8], &dev).unwrap();
        let k = Tensor::from_vec(vec![1.0, -1.0], [1, 2], &dev).unwrap();
        let y = corr2d(&x, &k).unwrap().to_vec2().unwrap();
        for row in &y {
            assert_eq!(row, &vec![0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0], "{dev:?}");
        }
        // The transposed image has horizontal edges only: the same kernel sees none.
        let xt = x.transpose(0, 1).unwrap();
        let yt = corr2d(&xt, &k).unwrap().to_vec().unwrap();
        assert!(yt.iter().all(|&v| v == 0.0));
    }
}

#[test]
fn cross_correlation_differs_from_true_convolution() {
    let dev = Device::cpu();
    let x = Tensor::arange(0.0, 9.0, &dev).unwrap().reshape([3, 3]).unwrap();
    let k = Tensor::arange(0.0, 4.0, &dev).unwrap().reshape([2, 2]).unwrap();
    // Flipped kernel [[3, 2], [1, 0]]: 0*3 + 1*2 + 3*1 + 4*0 = 5, ...
    let conv = convolve2d(&x, &k).unwrap();
    assert_eq!(conv.to_vec2().unwrap(), vec![vec![5.0, 11.0], vec![23.0, 29.0]]);
    let flipped = k.flip(&[0, 1]).unwrap();
    assert_eq!(corr2d(&x, &flipped).unwrap().to_vec().unwrap(), conv.to_vec().unwrap());
    if let Some(g) = gpu() {
        let xg = x.to_device(&g).unwrap();
        let kg = k.to_device(&g).unwrap();
        assert_eq!(convolve2d(&xg, &kg).unwrap().to_vec().unwrap(), conv.to_vec().unwrap());
    }
}

/// The 2x2x2x3 example image of the im2row tutorial and its published rows.
#[test]
fn im2row_reproduces_the_tutorial_rows() {
    let img = vec![
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, //
        0.0, 1.0, 0.0, 2.0, 2.0, 3.0, 2.0, 3.0, 3.0, 6.0, 6.0, 6.0,
    ];
    let want = vec![
        vec![1.0, 2.0, 4.0, 5.0, 6.0, 5.0, 3.0, 2.0],
        vec![2.0, 3.0, 5.0, 6.0, 5.0, 4.0, 2.0, 1.0],
        vec![0.0, 1.0, 2.0, 2.0, 2.0, 3.0, 6.0, 6.0],
        vec![1.0, 0.0, 2.0, 3.0, 3.0, 3.0, 6.0, 6.0],
    ];
    for dev in devices() {
        let x = Tensor::from_vec(img.clone(), [2, 2, 2, 3], &dev).unwrap();
        let rows = im2row(&x, 2, 1, 0, 1).unwrap();
        assert_eq!(rows.to_vec2().unwrap(), want, "{dev:?}");
        // row2im sums overlapping windows: the middle column is read twice.
        let back = row2im(&rows, (2, 2, 2, 3), 2, 1, 0, 1).unwrap().to_vec().unwrap();
        assert_eq!(&back[..3], &[1.0, 4.0, 3.0]);
    }
}

#[test]
fn row2im_is_the_adjoint_of_im2row() {
    // <im2row(x), r> == <x, row2im(r)> for any x, r.
    for dev in devices() {
        let (n, c, h, w) = (2, 3, 7, 6);
        let x = Tensor::from_vec(randv(n * c * h * w, 1), [n, c, h, w], &dev).unwrap();
        let rows = im2row(&x, (3, 2), (2, 1), Padding::Explicit([1, 2, 0, 1]), (1, 2)).unwrap();
        let r = Tensor::from_vec(randv(rows.elem_count(), 2), rows.dims().to_vec(), &dev).unwrap();
        let lhs = rows.mul(&r).unwrap().sum_all().unwrap().to_scalar().unwrap();
        let back =
            row2im(&r, (n, c, h, w), (3, 2), (2, 1), Padding::Explicit([1, 2, 0, 1]), (1, 2))
                .unwrap();
        let rhs = x.mul(&back).unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!((lhs - rhs).abs() < 1e-3, "{dev:?}: {lhs} vs {rhs}");
    }
}

/// A random but valid conv configuration.
#[derive(Clone, Debug)]
struct Cfg {
    n: usize,
    groups: usize,
    cg: usize,
    dg: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: (usize, usize),
    pad: [usize; 4],
    dil: (usize, usize),
    bias: bool,
}

impl Cfg {
    fn valid(&self) -> bool {
        let eh = self.dil.0 * (self.kh - 1) + 1;
        let ew = self.dil.1 * (self.kw - 1) + 1;
        eh <= self.h + self.pad[0] + self.pad[1] && ew <= self.w + self.pad[2] + self.pad[3]
    }
    fn opts(&self) -> Conv2dOptions {
        Conv2dOptions::new()
            .stride(self.stride)
            .padding(Padding::Explicit(self.pad))
            .dilation(self.dil)
            .groups(self.groups)
    }
    fn inputs(&self, seed: u64) -> Vec<(Vec<usize>, Vec<f32>)> {
        let (c, d) = (self.cg * self.groups, self.dg * self.groups);
        let mut v = vec![
            (vec![self.n, c, self.h, self.w], randv(self.n * c * self.h * self.w, seed)),
            (vec![d, self.cg, self.kh, self.kw], randv(d * self.cg * self.kh * self.kw, seed + 1)),
        ];
        if self.bias {
            v.push((vec![d], randv(d, seed + 2)));
        }
        v
    }
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        (1usize..3, prop_oneof![Just(1usize), Just(2), Just(3)], 1usize..4, 1usize..4),
        (1usize..12, 1usize..12, 1usize..5, 1usize..5),
        (
            (1usize..4, 1usize..4),
            (0usize..3, 0usize..3, 0usize..3, 0usize..3),
            (1usize..3, 1usize..3),
        ),
        any::<bool>(),
    )
        .prop_map(|((n, groups, cg, dg), (h, w, kh, kw), (stride, p, dil), bias)| Cfg {
            n,
            groups,
            cg,
            dg,
            h,
            w,
            kh,
            kw,
            stride,
            pad: [p.0, p.1, p.2, p.3],
            dil,
            bias,
        })
        .prop_filter("kernel fits the padded input", Cfg::valid)
}

fn conv_of(cfg: &Cfg) -> impl Fn(&[Tensor]) -> convshade::Result<Tensor> + '_ {
    move |t: &[Tensor]| conv2d(&t[0], &t[1], t.get(2), &cfg.opts())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn cpu_conv2d_matches_direct_loops(cfg in cfg_strategy(), seed in 0u64..1000) {
        let inp = cfg.inputs(seed);
        let dev = Device::cpu();
        let x = Tensor::from_vec(inp[0].1.clone(), inp[0].0.clone(), &dev).unwrap();
        let w = Tensor::from_vec(inp[1].1.clone(), inp[1].0.clone(), &dev).unwrap();
        let b = inp.get(2).map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), &dev).unwrap());
        let y = conv2d(&x, &w, b.as_ref(), &cfg.opts()).unwrap();
        let xd = (inp[0].0[0], inp[0].0[1], inp[0].0[2], inp[0].0[3]);
        let wd = (inp[1].0[0], inp[1].0[1], inp[1].0[2], inp[1].0[3]);
        let (want, dims) = conv2d_direct(&inp[0].1, xd, &inp[1].1, wd, inp.get(2).map(|b| b.1.as_slice()), cfg.stride, cfg.pad, cfg.dil, cfg.groups);
        prop_assert_eq!(y.dims4().unwrap(), dims);
        assert_close(&y.to_vec().unwrap(), &want, 1e-5, 1e-5, "conv2d vs direct loops");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn gpu_conv2d_forward_and_gradients_match_cpu(cfg in cfg_strategy(), seed in 0u64..1000) {
        check_op("conv2d", &cfg.inputs(seed), 1e-4, 1e-5, &conv_of(&cfg));
    }

    #[test]
    fn gpu_im2row_and_row2im_match_cpu(cfg in cfg_strategy(), seed in 0u64..1000) {
        let inp = vec![cfg.inputs(seed)[0].clone()];
        let c = cfg.cg * cfg.groups;
        let f = |t: &[Tensor]| {
            let rows = im2row(&t[0], (cfg.kh, cfg.kw), cfg.stride, Padding::Explicit(cfg.pad), cfg.dil)?;
            // row2im of a nonlinear function of the rows, so both kernels are exercised
            let back = row2im(&rows.square()?, (cfg.n, c, cfg.h, cfg.w), (cfg.kh, cfg.kw), cfg.stride, Padding::Explicit(cfg.pad), cfg.dil)?;
            back.add(&t[0])
        };
        check_op("im2row/row2im", &inp, 1e-5, 1e-5, &f);
    }
}

#[test]
fn gpu_conv2d_on_sizes_spanning_many_workgroups() {
    // 64 channels, 3x3, batch 3 on 29x31 images: K = 576, N*OH*OW = 2697 rows, odd everything.
    let cfg = Cfg {
        n: 3,
        groups: 1,
        cg: 19,
        dg: 67,
        h: 29,
        w: 31,
        kh: 3,
        kw: 3,
        stride: (1, 1),
        pad: [1, 1, 1, 1],
        dil: (1, 1),
        bias: true,
    };
    check_op("conv2d large", &cfg.inputs(5), 1e-4, 1e-4, &conv_of(&cfg));
    // depthwise with channel multiplier 2
    let dw = Cfg { groups: 7, cg: 1, dg: 2, stride: (2, 2), ..cfg };
    check_op("conv2d depthwise", &dw.inputs(6), 1e-4, 1e-5, &conv_of(&dw));
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let cfg = Cfg {
        n: 2,
        groups: 2,
        cg: 2,
        dg: 1,
        h: 5,
        w: 4,
        kh: 3,
        kw: 2,
        stride: (2, 1),
        pad: [1, 0, 1, 1],
        dil: (1, 2),
        bias: true,
    };
    common::gradcheck(&cfg.inputs(3), &conv_of(&cfg), 1e-2, 1e-2);
    // depthwise (direct kernels) with two filters per channel
    let dw = Cfg { groups: 3, cg: 1, dg: 2, ..cfg };
    common::gradcheck(&dw.inputs(4), &conv_of(&dw), 1e-2, 1e-2);
}

#[test]
fn same_and_valid_padding_follow_pytorch() {
    let dev = Device::cpu();
    let x = Tensor::ones([1, 1, 5, 6], &dev).unwrap();
    // even kernel: PyTorch pads (k-1)/2 before and the rest after
    let w = Tensor::ones([1, 1, 2, 4], &dev).unwrap();
    let y = conv2d(&x, &w, None, &Conv2dOptions::new().padding(Padding::Same)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 5, 6]);
    let v = y.to_vec().unwrap();
    // top-left output: rows 0..2, cols -1..3 -> 2 * 3 ones
    assert_eq!(v[0], 6.0);
    // bottom-right: row 4 only (row 5 is padding), cols 4..6 (6, 7 padding) -> 1 * 2
    assert_eq!(v[29], 2.0);
    let y = conv2d(&x, &w, None, &Conv2dOptions::new().padding(Padding::Valid)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 4, 3]);
}

#[test]
fn gpu_conv2d_is_bit_reproducible() {
    let Some(g) = gpu() else { return };
    let cfg = Cfg {
        n: 2,
        groups: 1,
        cg: 5,
        dg: 6,
        h: 17,
        w: 13,
        kh: 3,
        kw: 3,
        stride: (2, 1),
        pad: [1, 1, 1, 1],
        dil: (1, 1),
        bias: true,
    };
    let f = conv_of(&cfg);
    let inp = cfg.inputs(11);
    let (y1, g1) = common::run_op(&g, &inp, &f);
    let (y2, g2) = common::run_op(&g, &inp, &f);
    let bits = |t: &Tensor| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&y1), bits(&y2));
    for (a, b) in g1.iter().zip(&g2) {
        assert_eq!(bits(a.as_ref().unwrap()), bits(b.as_ref().unwrap()));
    }
}

#[test]
fn bad_conv_arguments_give_clear_errors() {
    let dev = Device::cpu();
    let x = Tensor::ones([1, 4, 5, 5], &dev).unwrap();
    let w = Tensor::ones([2, 4, 3, 3], &dev).unwrap();
    let err = |o: Conv2dOptions, w: &Tensor, b: Option<&Tensor>| {
        conv2d(&x, w, b, &o).unwrap_err().to_string()
    };
    let e = err(Conv2dOptions::new().stride(0), &w, None);
    assert!(e.contains("conv2d") && e.contains("stride"), "{e}");
    let e = err(Conv2dOptions::new().groups(3), &Tensor::ones([3, 1, 3, 3], &dev).unwrap(), None);
    assert!(e.contains("divisible by groups"), "{e}");
    let e = err(Conv2dOptions::new(), &Tensor::ones([2, 4, 6, 3], &dev).unwrap(), None);
    assert!(e.contains("larger than the padded input"), "{e}");
    let e = err(Conv2dOptions::new(), &Tensor::ones([2, 3, 3, 3], &dev).unwrap(), None);
    assert!(e.contains("input channels"), "{e}");
    let e = err(Conv2dOptions::new(), &w, Some(&Tensor::ones([3], &dev).unwrap()));
    assert!(e.contains("bias"), "{e}");
    let e = err(Conv2dOptions::new().dilation(0), &w, None);
    assert!(e.contains("dilation"), "{e}");
    let e = err(Conv2dOptions::new().stride(2).padding(Padding::Same), &w, None);
    assert!(e.contains("same"), "{e}");
    let e = conv2d(&Tensor::ones([4, 5, 5], &dev).unwrap(), &w, None, &Conv2dOptions::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("(n, c, h, w)"), "{e}");
    let e = corr2d(&Tensor::ones([2, 2], &dev).unwrap(), &Tensor::ones([3, 1], &dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("corr2d") && e.contains("larger"), "{e}");
    let e = row2im(&Tensor::ones([3, 3], &dev).unwrap(), (1, 1, 3, 3), 2, 1, 0, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row2im") && e.contains("rows must have shape"), "{e}");
    if let Some(g) = gpu() {
        let wg = w.to_device(&g).unwrap();
        let e = conv2d(&x, &wg, None, &Conv2dOptions::new()).unwrap_err();
        assert!(matches!(e, convshade::Error::DeviceMismatch { op: "conv2d", .. }), "{e}");
    }
}

#[test]
fn col2im_adds_in_the_same_order_on_both_devices() {
    // Both backends sum each input element's taps in (kh, kw) order: bit-identical results.
    let Some(g) = gpu() else { return };
    let (n, c, h, w) = (2, 3, 11, 9);
    let k = (3, 4);
    let rows_shape = {
        let x = Tensor::zeros([n, c, h, w], &Device::cpu()).unwrap();
        im2row(&x, k, (2, 1), 2, (2, 1)).unwrap().dims().to_vec()
    };
    let r = randv(rows_shape.iter().product(), 17);
    let on = |d: &Device| {
        let rows = Tensor::from_vec(r.clone(), rows_shape.clone(), d).unwrap();
        let x = row2im(&rows, (n, c, h, w), k, (2, 1), 2, (2, 1)).unwrap();
        x.to_vec().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(on(&Device::cpu()), on(&g));
}
