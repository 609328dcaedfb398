//! Bit-reproducibility across devices and thread counts of the backward passes that sum several
//! contributions per element: the CPU's pooling scatters add them in the order the GPU's
//! gathers do, so both give the same bits, on any number of rayon threads; the conv bias
//! gradient is one ordered f64 sum whatever the thread count; the CPU convolution and matmul
//! give the same bits on any number of threads.

mod common;

use convshade::{avg_pool2d, max_pool2d, AvgPool2dOptions, Device, MaxPool2dOptions, Tensor};

type Op = Box<dyn Fn(&[Tensor]) -> convshade::Result<Tensor> + Send + Sync>;

/// Pools whose windows overlap, so inputs receive up to 9 (or, dilated, 4) window gradients, and
/// max pools whose windows lie apart.
fn overlapping_pools() -> Vec<(&'static str, Op)> {
    vec![
        ("max 3x3/1", Box::new(|t| max_pool2d(&t[0], &MaxPool2dOptions::new(3).stride(1)))),
        (
            "max 3x3/2 pad 1 dilation 2",
            Box::new(|t| {
                let o = MaxPool2dOptions::new(3).stride(2).padding(1).dilation(2);
                max_pool2d(&t[0], &o)
            }),
        ),
        // windows apart: each input in one window at most (the loop-free backward)
        (
            "max 2x2/2 pad 1 ceil, apart",
            Box::new(|t| max_pool2d(&t[0], &MaxPool2dOptions::new(2).padding(1).ceil_mode(true))),
        ),
        (
            "max 2x2/3 dilation 2, apart",
            Box::new(|t| max_pool2d(&t[0], &MaxPool2dOptions::new(2).stride(3).dilation(2))),
        ),
        (
            "avg 3x3/1 pad 1",
            Box::new(|t| avg_pool2d(&t[0], &AvgPool2dOptions::new(3).stride(1).padding(1))),
        ),
        (
            "avg 3x3/2 pad 1 ceil, no pad count",
            Box::new(|t| {
                let o = AvgPool2dOptions::new(3)
                    .stride(2)
                    .padding(1)
                    .ceil_mode(true)
                    .count_include_pad(false);
                avg_pool2d(&t[0], &o)
            }),
        ),
    ]
}

fn grad_bits(dev: &Device, f: &Op) -> Vec<u32> {
    // a scale that makes the window sums round differently in another order
    let x: Vec<f32> = common::randv(2 * 3 * 19 * 17, 21)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % 7) as f32 * 1e3))
        .collect();
    let (_, g) = common::run_op(dev, &[(vec![2, 3, 19, 17], x)], f.as_ref());
    let g = g[0].as_ref().expect("an input gradient").to_vec().unwrap();
    g.iter().map(|v| v.to_bits()).collect()
}

fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap().install(f)
}

#[test]
fn cpu_pool_gradients_are_the_same_bits_on_1_2_and_4_threads() {
    for (name, f) in overlapping_pools() {
        let one = on_threads(1, || grad_bits(&Device::cpu(), &f));
        for n in [2, 4] {
            assert_eq!(on_threads(n, || grad_bits(&Device::cpu(), &f)), one, "{name}, {n}");
        }
    }
}

#[test]
fn cpu_and_gpu_pool_gradients_are_the_same_bits() {
    let Some(gpu) = common::gpu() else { return };
    for (name, f) in overlapping_pools() {
        let (cpu, gpu) = (grad_bits(&Device::cpu(), &f), grad_bits(&gpu, &f));
        let differ = cpu.iter().zip(&gpu).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{name}: {differ} of {} elements differ", cpu.len());
    }
}

/// conv2d's bias gradient sums each output plane in f64, then the images in order: the same
/// bits on any number of threads, and those of that sum written out here.
#[test]
fn cpu_conv_bias_gradient_is_the_ordered_f64_sum_on_any_thread_count() {
    let (n, d, side) = (5, 7, 12);
    let up: Vec<f32> = common::randv(n * d * side * side, 3)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % 5) as f32 * 1e4))
        .collect();
    let bias_grad = || {
        let cpu = Device::cpu();
        let x = Tensor::randn([n, 2, side, side], 1, &cpu).unwrap();
        let w = Tensor::randn([d, 2, 3, 3], 2, &cpu).unwrap();
        let b = Tensor::zeros([d], &cpu).unwrap().requires_grad_();
        let opts = convshade::Conv2dOptions::new().padding(1);
        let y = convshade::conv2d(&x, &w, Some(&b), &opts).unwrap();
        let g = Tensor::from_vec(up.clone(), y.dims().to_vec(), &cpu).unwrap();
        let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let got = grads.get(&b).unwrap().to_vec().unwrap();
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let plane = side * side;
    let want: Vec<u32> = (0..d)
        .map(|c| {
            let per_image = (0..n).map(|i| {
                let p = &up[(i * d + c) * plane..][..plane];
                p.iter().fold(0.0f64, |a, &v| a + v as f64) as f32
            });
            (per_image.fold(0.0f64, |a, v| a + v as f64) as f32).to_bits()
        })
        .collect();
    for threads in [1, 2, 4] {
        assert_eq!(on_threads(threads, bias_grad), want, "{threads} threads");
    }
}

/// The bits of conv2d's output and of its input, weight and bias gradients on the CPU.
fn cpu_conv_bits(x: [usize; 4], d: usize, k: usize, opts: convshade::Conv2dOptions) -> Vec<u32> {
    let cpu = Device::cpu();
    let [n, c, h, wd] = x;
    let xv = Tensor::randn(x, 11, &cpu).unwrap().requires_grad_();
    let w = Tensor::randn([d, c / opts.groups, k, k], 12, &cpu).unwrap().requires_grad_();
    let b = Tensor::randn([d], 13, &cpu).unwrap().requires_grad_();
    let y = convshade::conv2d(&xv, &w, Some(&b), &opts).unwrap();
    let up = Tensor::randn(y.dims().to_vec(), 14, &cpu).unwrap();
    let grads = y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
    let mut bits = Vec::new();
    for t in [&y, grads.get(&xv).unwrap(), grads.get(&w).unwrap(), grads.get(&b).unwrap()] {
        bits.extend(t.to_vec().unwrap().iter().map(|v| v.to_bits()));
    }
    assert!(bits.len() > n * d * h.min(wd));
    bits
}

/// One image (each product threaded), a few (one image per thread), many (the weight gradient
/// summed in chunks of images), groups, stride and a pointwise 1x1: the CPU convolution gives
/// the same bits on 1, 2 and 4 threads, and so does a threaded matmul.
#[test]
fn cpu_conv2d_and_matmul_are_the_same_bits_on_1_2_and_4_threads() {
    use convshade::Conv2dOptions as O;
    let cases: Vec<([usize; 4], usize, usize, O)> = vec![
        ([1, 8, 40, 40], 16, 3, O::new().padding(1)),
        ([3, 4, 17, 13], 6, 3, O::new().stride(2).padding(1)),
        ([37, 4, 9, 9], 8, 3, O::new().padding(1).groups(2)),
        ([5, 16, 12, 12], 8, 1, O::new()),
    ];
    for (x, d, k, opts) in cases {
        let one = on_threads(1, || cpu_conv_bits(x, d, k, opts));
        for threads in [2, 4] {
            assert!(
                on_threads(threads, || cpu_conv_bits(x, d, k, opts)) == one,
                "{x:?} d {d} k {k}, {threads} threads"
            );
        }
    }
    let matmul_bits = || {
        let cpu = Device::cpu();
        let a = Tensor::randn([300, 257], 1, &cpu).unwrap();
        let b = Tensor::randn([257, 411], 2, &cpu).unwrap();
        let y = a.matmul(&b).unwrap().to_vec().unwrap();
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let one = on_threads(1, matmul_bits);
    for threads in [2, 4] {
        assert!(on_threads(threads, matmul_bits) == one, "matmul, {threads} threads");
    }
}
