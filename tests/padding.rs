//! `pad` in its four modes, convolutions with a `padding_mode`, adaptive max pooling and exact
//! GELU: against references written here, numerical gradients, GPU against CPU (with passes
//! split by a low loop budget), and clear errors.

mod common;

use common::{assert_close, check_op, gpu, gradcheck, randv, run_op};
use convshade::gpu::GpuOptions;
use convshade::{
    adaptive_max_pool2d, adaptive_max_pool2d_with_indices, conv2d, pad, Conv2dOptions, Device,
    PadMode, PaddingMode, Tensor,
};

type Op = dyn Fn(&[Tensor]) -> convshade::Result<Tensor>;

fn cpu(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s.to_vec(), &Device::cpu()).unwrap()
}

/// The input index output `o` reads, from the definition of each mode (not the library's).
fn source(o: isize, before: isize, n: isize, mode: PadMode) -> Option<isize> {
    let s = o - before;
    match mode {
        PadMode::Constant(_) => (0..n).contains(&s).then_some(s),
        // the mirror image has period 2(n-1)
        PadMode::Reflect if n == 1 => Some(0),
        PadMode::Reflect => {
            let p = 2 * (n - 1);
            let m = s.rem_euclid(p);
            Some(if m < n { m } else { p - m })
        }
        PadMode::Replicate => Some(s.clamp(0, n - 1)),
        PadMode::Circular => Some(s.rem_euclid(n)),
    }
}

/// `pad` of a (p, h, w) input and its input gradient for upstream `g`, scattered in raster
/// order, both from the definitions.
fn pad_ref(
    x: &[f32], (p, h, w): (usize, usize, usize), [l, r, t, b]: [isize; 4], mode: PadMode, g: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = (h as isize + t + b, w as isize + l + r);
    let (mut y, mut dx) = (Vec::new(), vec![0.0f32; x.len()]);
    let fill = match mode {
        PadMode::Constant(v) => v,
        _ => 0.0,
    };
    for plane in 0..p {
        for oy in 0..oh {
            for ox in 0..ow {
                let src = source(oy, t, h as isize, mode).zip(source(ox, l, w as isize, mode));
                let gi = y.len();
                match src {
                    Some((i, j)) => {
                        let at = plane * h * w + i as usize * w + j as usize;
                        y.push(x[at]);
                        dx[at] += g[gi];
                    }
                    None => y.push(fill),
                }
            }
        }
    }
    (y, dx)
}

const MODES: [PadMode; 4] =
    [PadMode::Constant(-1.5), PadMode::Reflect, PadMode::Replicate, PadMode::Circular];

/// Widths each mode accepts on a 3x4 plane, edge cases included: reflect at its widest,
/// circular at the full length, replicate wider than the input, constant cropping.
fn widths_for(mode: PadMode) -> Vec<[isize; 4]> {
    let mut w = vec![[1, 2, 0, 1], [0, 0, 0, 0], [3, 1, 2, 2]];
    match mode {
        PadMode::Constant(_) => w.extend([[-1, 2, 1, -2], [-3, 0, 0, 0], [5, 4, 7, 6]]),
        PadMode::Reflect => w[2] = [3, 3, 2, 2],
        PadMode::Replicate => w.push([6, 9, 7, 5]),
        PadMode::Circular => w.push([4, 4, 3, 3]),
    }
    w
}

#[test]
fn pad_matches_its_definition_forward_and_backward() {
    let dims = (2, 3, 4);
    let x = randv(24, 1);
    for mode in MODES {
        for wd in widths_for(mode) {
            let what = format!("{mode:?} {wd:?}");
            let xt = cpu(&x, &[1, 2, 3, 4]).requires_grad_();
            let y = pad(&xt, &wd, mode).unwrap();
            let g = randv(y.elem_count(), 2);
            let (want_y, want_dx) = pad_ref(&x, dims, wd, mode, &g);
            let oh = (3 + wd[2] + wd[3]) as usize;
            let ow = (4 + wd[0] + wd[1]) as usize;
            assert_eq!(y.dims(), &[1, 2, oh, ow], "{what}");
            assert_eq!(y.to_vec().unwrap(), want_y, "{what}");
            let gt = cpu(&g, y.dims());
            let grads = y.mul(&gt).unwrap().sum_all().unwrap().backward().unwrap();
            // the same sums in the same order: exact
            assert_eq!(grads.get(&xt).unwrap().to_vec().unwrap(), want_dx, "{what}");
        }
    }
}

#[test]
fn pad_examples_from_pytorchs_documentation() {
    let x = cpu(&[1.0, 2.0, 3.0], &[1, 3]);
    let row = |m| pad(&x, &[2, 2], m).unwrap().to_vec().unwrap();
    assert_eq!(row(PadMode::Reflect), [3., 2., 1., 2., 3., 2., 1.]);
    assert_eq!(row(PadMode::Replicate), [1., 1., 1., 2., 3., 3., 3.]);
    assert_eq!(row(PadMode::Circular), [2., 3., 1., 2., 3., 1., 2.]);
    assert_eq!(row(PadMode::Constant(9.0)), [9., 9., 1., 2., 3., 9., 9.]);
    // constant mode pads any rank; a 1-d input with two widths
    let v = cpu(&[4.0, 5.0], &[2]);
    let y = pad(&v, &[1, 0], PadMode::Constant(0.0)).unwrap();
    assert_eq!(y.to_vec().unwrap(), [0.0, 4.0, 5.0]);
}

#[test]
fn pad_gradients_are_right_and_the_gpu_agrees() {
    let x = vec![(vec![2, 1, 3, 4], randv(24, 3))];
    for mode in MODES {
        for wd in widths_for(mode) {
            let f = move |t: &[Tensor]| pad(&t[0], &wd, mode);
            gradcheck(&x, &f, 1e-2, 1e-2);
            check_op(&format!("pad {mode:?} {wd:?}"), &x, 0.0, 0.0, &f);
        }
    }
}

/// A GPU context whose kernels run at most 160 loop iterations per invocation, so the split
/// paths run on small inputs.
fn low_cap() -> Device {
    Device::gpu_with(GpuOptions { loop_cap: Some(160), ..Default::default() }).unwrap()
}

/// A budget of 160 loop iterations splits replicate's wide gathers into passes; the result is
/// the CPU's, bit for bit.
#[test]
fn pad_backward_split_into_passes_matches_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let dev = low_cap();
    let x = vec![(vec![1, 2, 3, 2], randv(12, 4))];
    let f = |t: &[Tensor]| pad(&t[0], &[40, 30, 25, 20], PadMode::Replicate);
    let (yc, gc) = run_op(&Device::cpu(), &x, &f);
    let (yg, gg) = run_op(&dev, &x, &f);
    assert_eq!(yg.to_vec().unwrap(), yc.to_vec().unwrap());
    let bits = |t: &Option<Tensor>| t.as_ref().unwrap().to_vec().unwrap();
    assert_eq!(bits(&gg[0]), bits(&gc[0]));
}

#[test]
fn bad_widths_are_clear_errors() {
    let x = cpu(&randv(24, 5), &[1, 2, 3, 4]);
    let err = |w: &[isize], m| pad(&x, w, m).unwrap_err().to_string();
    let e = err(&[4, 0, 0, 0], PadMode::Reflect);
    assert!(e.starts_with("pad: reflect padding (4, 0)") && e.contains("width of 4"), "{e}");
    let e = err(&[0, 0, 0, 4], PadMode::Circular);
    assert!(e.contains("circular padding (0, 4) must be at most the input's height of 3"), "{e}");
    let e = err(&[-1, 0, 0, 0], PadMode::Replicate);
    assert!(e.contains("no negative widths"), "{e}");
    let e = err(&[1, 2, 3], PadMode::Constant(0.0));
    assert!(e.contains("got 3 values"), "{e}");
    let e = err(&[-2, -2, 0, 0], PadMode::Constant(0.0));
    assert!(e.contains("leave nothing"), "{e}");
    // reflect needs a batch of images: at most two leading axes
    let five = cpu(&randv(48, 6), &[2, 1, 2, 3, 4]);
    let e = pad(&five, &[1, 1, 1, 1], PadMode::Reflect).unwrap_err().to_string();
    assert!(e.contains("needs a 2- to 4-d input"), "{e}");
}

/// `nn.Conv2d(padding_mode=...)` from the definition: each tap reads the mode's source index.
fn conv_ref(
    x: &[f32], w: &[f32], (c, h, wd): (usize, usize, usize), (d, k): (usize, usize),
    (pad_h, pad_w, stride): (usize, usize, usize), mode: PadMode,
) -> Vec<f32> {
    let oh = (h + 2 * pad_h - k) / stride + 1;
    let ow = (wd + 2 * pad_w - k) / stride + 1;
    let mut y = vec![0.0f32; d * oh * ow];
    for o in 0..d {
        for i in 0..oh {
            for j in 0..ow {
                let mut acc = 0.0f64;
                for ch in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let sy = source(
                                (i * stride + ky) as isize,
                                pad_h as isize,
                                h as isize,
                                mode,
                            );
                            let sx = source(
                                (j * stride + kx) as isize,
                                pad_w as isize,
                                wd as isize,
                                mode,
                            );
                            if let (Some(sy), Some(sx)) = (sy, sx) {
                                let xv = x[(ch * h + sy as usize) * wd + sx as usize] as f64;
                                acc += xv * w[((o * c + ch) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                }
                y[(o * oh + i) * ow + j] = acc as f32;
            }
        }
    }
    y
}

#[test]
fn conv_padding_modes_match_their_definition() {
    let (x, w) = (randv(2 * 5 * 6, 7), randv(3 * 2 * 9, 8));
    let modes = [
        (PaddingMode::Zeros, PadMode::Constant(0.0)),
        (PaddingMode::Reflect, PadMode::Reflect),
        (PaddingMode::Replicate, PadMode::Replicate),
        (PaddingMode::Circular, PadMode::Circular),
    ];
    for (pm, mode) in modes {
        // reflect at its widest (4 of a height of 5)
        for (ph, pw, s) in [(1, 1, 1), (2, 1, 2), (4, 3, 1)] {
            let opts = Conv2dOptions::new().padding((ph, pw)).stride(s).padding_mode(pm);
            let y = conv2d(&cpu(&x, &[1, 2, 5, 6]), &cpu(&w, &[3, 2, 3, 3]), None, &opts);
            let want = conv_ref(&x, &w, (2, 5, 6), (3, 3), (ph, pw, s), mode);
            assert_close(&y.unwrap().to_vec().unwrap(), &want, 1e-5, 1e-6, &format!("{pm:?}"));
            let inputs = vec![(vec![1, 2, 5, 6], x.clone()), (vec![3, 2, 3, 3], w.clone())];
            let f = move |t: &[Tensor]| conv2d(&t[0], &t[1], None, &opts);
            gradcheck(&inputs, &f, 1e-2, 2e-2);
            check_op(&format!("conv2d {pm:?}"), &inputs, 1e-4, 1e-5, &f);
        }
    }
    // reflect padding as wide as the input is refused, naming the convolution
    let opts = Conv2dOptions::new().padding(5).padding_mode(PaddingMode::Reflect);
    let e = conv2d(&cpu(&x, &[1, 2, 5, 6]), &cpu(&w, &[3, 2, 3, 3]), None, &opts).unwrap_err();
    assert!(e.to_string().starts_with("conv2d: padding_mode Reflect: reflect padding"), "{e}");
}

/// Adaptive max pooling from the definition: PyTorch's windows, the first maximum, NaN wins.
fn adaptive_max_ref(
    x: &[f32], (h, w): (usize, usize), (oh, ow): (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let win = |o: usize, n: usize, out: usize| (o * n / out, ((o + 1) * n).div_ceil(out));
    let (mut y, mut idx) = (Vec::new(), Vec::new());
    for plane in x.chunks(h * w) {
        for i in 0..oh {
            for j in 0..ow {
                let ((h0, h1), (w0, w1)) = (win(i, h, oh), win(j, w, ow));
                let mut best: Option<(f32, usize)> = None;
                for a in h0..h1 {
                    for b in w0..w1 {
                        let v = plane[a * w + b];
                        if best.is_none_or(|(m, _)| v > m || v.is_nan()) {
                            best = Some((v, a * w + b));
                        }
                    }
                }
                let (v, at) = best.unwrap();
                y.push(v);
                idx.push(at as f32);
            }
        }
    }
    (y, idx)
}

#[test]
fn adaptive_max_pool_matches_its_definition() {
    let mut x = randv(2 * 10 * 7, 9);
    x[17] = f32::NAN;
    for (out, h, w) in [((4, 3), 10, 7), ((1, 1), 10, 7), ((10, 7), 10, 7), ((13, 9), 10, 7)] {
        let (y, idx) = adaptive_max_pool2d_with_indices(&cpu(&x, &[1, 2, h, w]), out).unwrap();
        let (want_y, want_idx) = adaptive_max_ref(&x, (h, w), out);
        let got = y.to_vec().unwrap();
        assert_eq!(idx.to_vec().unwrap(), want_idx, "{out:?}");
        let same = got.iter().zip(&want_y).all(|(a, b)| a == b || a.is_nan() && b.is_nan());
        assert!(same, "{out:?}: {got:?} != {want_y:?}");
        assert!(got.iter().any(|v| v.is_nan()), "NaN propagates");
    }
    let e = adaptive_max_pool2d(&cpu(&x, &[1, 2, 10, 7]), (0, 2)).unwrap_err();
    assert!(e.to_string().starts_with("adaptive_max_pool2d: output size must be positive"), "{e}");
    let e = adaptive_max_pool2d(&cpu(&x, &[2, 10, 7]), 2).unwrap_err();
    assert!(e.to_string().starts_with("adaptive_max_pool2d: input must be (n, c, h, w)"), "{e}");
}

#[test]
fn adaptive_max_pool_gradients_and_the_gpu() {
    // distinct values 0.01 apart: no perturbation of the numerical gradient changes a maximum
    let spread: Vec<f32> = (0..252).map(|i| ((i * 37) % 252) as f32 * 0.01).collect();
    let x = vec![(vec![2, 2, 9, 7], spread)];
    for out in [(4, 3), (1, 1), (9, 7), (12, 10), (2, 5)] {
        let f = move |t: &[Tensor]| adaptive_max_pool2d(&t[0], out);
        gradcheck(&x, &f, 1e-3, 1e-2);
        check_op(&format!("adaptive_max_pool2d {out:?}"), &x, 0.0, 0.0, &f);
    }
    // passes split by a low budget: the CPU's result bit for bit
    if gpu().is_none() {
        return;
    }
    let dev = low_cap();
    let big = vec![(vec![1, 1, 40, 30], randv(1200, 11))];
    for out in [(1, 1), (3, 2), (70, 50)] {
        let f = move |t: &[Tensor]| adaptive_max_pool2d(&t[0], out);
        let (yc, gc) = run_op(&Device::cpu(), &big, &f);
        let (yg, gg) = run_op(&dev, &big, &f);
        assert_eq!(yg.to_vec().unwrap(), yc.to_vec().unwrap(), "{out:?}");
        let g = |t: &Option<Tensor>| t.as_ref().unwrap().to_vec().unwrap();
        assert_eq!(g(&gg[0]), g(&gc[0]), "{out:?}");
    }
}

/// erf in f64 from its Maclaurin series (|x| <= 4, about 1e-10 absolute), 1 beyond.
fn erf_ref(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..120 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn erf_and_exact_gelu_match_their_definitions() {
    // tabulated values: the series itself is right
    for (x, v) in [(0.5, 0.520_499_877_8), (1.0, 0.842_700_792_9), (2.0, 0.995_322_265_0)] {
        assert!((erf_ref(x) - v).abs() < 1e-9, "erf_ref({x})");
    }
    let mut v: Vec<f32> = randv(200, 12).iter().map(|x| x * 8.0).collect();
    v.extend([0.0, 1e-6, -1e-6, 3.9, 4.0, 4.1, -30.0, 30.0]);
    let x = cpu(&v, &[v.len()]);
    let erf: Vec<f32> = v.iter().map(|&a| erf_ref(a as f64) as f32).collect();
    assert_close(&x.erf().unwrap().to_vec().unwrap(), &erf, 0.0, 3e-7, "erf");
    let gelu: Vec<f32> = v
        .iter()
        .map(|&a| (0.5 * a as f64 * (1.0 + erf_ref(a as f64 / 2f64.sqrt()))) as f32)
        .collect();
    assert_close(&x.gelu().unwrap().to_vec().unwrap(), &gelu, 1e-6, 1e-6, "gelu");
    // relative accuracy where erf is tiny
    let tiny = cpu(&[1e-3, -2e-4], &[2]).erf().unwrap().to_vec().unwrap();
    for (got, a) in tiny.iter().zip([1e-3f64, -2e-4]) {
        assert!(((*got as f64) / erf_ref(a) - 1.0).abs() < 1e-6, "erf({a}) = {got}");
    }
    let nan = cpu(&[f32::NAN], &[1]).gelu().unwrap().to_vec().unwrap();
    assert!(nan[0].is_nan());
}

#[test]
fn exact_gelu_gradients_and_the_gpu() {
    let x = vec![(vec![4, 25], randv(100, 13).iter().map(|v| v * 5.0).collect())];
    let cases: Vec<(&str, Box<Op>)> =
        vec![("erf", Box::new(|t| t[0].erf())), ("gelu", Box::new(|t| t[0].gelu()))];
    for (name, f) in &cases {
        gradcheck(&x, f.as_ref(), 1e-3, 2e-2);
        check_op(name, &x, 1e-5, 1e-6, f.as_ref());
    }
}

#[test]
fn the_layers_are_their_functions() {
    use convshade::nn::{AdaptiveMaxPool2d, Module, SiLU, GELU};
    let x = cpu(&randv(2 * 3 * 5 * 4, 14), &[2, 3, 5, 4]);
    let same = |a: Tensor, b: Tensor| assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
    same(AdaptiveMaxPool2d((2, 3)).forward(&x).unwrap(), adaptive_max_pool2d(&x, (2, 3)).unwrap());
    same(GELU(false).forward(&x).unwrap(), x.gelu().unwrap());
    same(GELU(true).forward(&x).unwrap(), x.gelu_tanh().unwrap());
    same(SiLU.forward(&x).unwrap(), x.silu().unwrap());
}
