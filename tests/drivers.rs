//! Right answers on every driver: the per-invocation loop budget (work past it is split into
//! passes), the adapter self-test and its refusal path, shadow mode, and host allocation
//! failures as errors.

mod common;

use common::{close, gpu, randv, run_op};
use convshade::gpu::{GpuOptions, LOOP_CAP};
use convshade::testing;
use convshade::{
    adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d, upsample, AvgPool2dOptions, Conv2dOptions,
    Device, Error, MaxPool2dOptions, Tensor, UpsampleOptions, UpsampleSize,
};

type Op<'a> = dyn Fn(&[Tensor]) -> convshade::Result<Tensor> + 'a;

/// A GPU context whose kernels run at most 160 loop iterations per invocation (the least a
/// context accepts), so every split path runs on small inputs.
fn low_cap() -> Option<Device> {
    gpu()?;
    Some(Device::gpu_with(GpuOptions { loop_cap: Some(160), ..Default::default() }).unwrap())
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// Forward and every input gradient on `dev` against the CPU backend; with `exact`, also
/// bit for bit against the default GPU context (a split that resumes in order changes nothing).
fn split_matches(
    dev: &Device, name: &str, inputs: &[(Vec<usize>, Vec<f32>)], f: &Op<'_>, exact: bool,
) {
    let (yc, gc) = run_op(&Device::cpu(), inputs, f);
    let (ys, gs) = run_op(dev, inputs, f);
    close(&ys, &yc, 1e-4, 1e-5, &format!("{name}: forward"));
    for (i, (s, c)) in gs.iter().zip(&gc).enumerate() {
        close(s.as_ref().unwrap(), c.as_ref().unwrap(), 1e-4, 1e-5, &format!("{name}: grad {i}"));
    }
    if exact {
        let (yd, gd) = run_op(&gpu().unwrap(), inputs, f);
        assert_eq!(bits(&ys), bits(&yd), "{name}: split forward differs from unsplit");
        for (i, (s, d)) in gs.iter().zip(&gd).enumerate() {
            assert_eq!(
                bits(s.as_ref().unwrap()),
                bits(d.as_ref().unwrap()),
                "{name}: split grad {i} differs from unsplit"
            );
        }
    }
}

fn input(shape: &[usize], seed: u64) -> (Vec<usize>, Vec<f32>) {
    (shape.to_vec(), randv(shape.iter().product(), seed))
}

#[test]
fn matmul_past_the_loop_budget_is_split_over_k() {
    let Some(dev) = low_cap() else { return };
    // 160 iterations allow 5 K tiles of 16 per dispatch: K = 1000 takes 13 dispatches
    let inputs = [input(&[7, 1000], 1), input(&[1000, 9], 2)];
    split_matches(&dev, "matmul", &inputs, &|t| t[0].matmul(&t[1]), true);
    // a batched product with a transposed operand
    let inputs = [input(&[3, 300, 5], 3), input(&[3, 4, 300], 4)];
    let f = |t: &[Tensor]| t[0].transpose(1, 2)?.matmul(&t[1].transpose(1, 2)?);
    split_matches(&dev, "batched matmul", &inputs, &f, true);
}

#[test]
fn matmul_past_the_drivers_loop_limit_is_exact() {
    let Some(g) = gpu() else { return };
    // K = 1.2M: a single dispatch would loop 1.6M times per invocation, far past the 65,535
    // at which Mesa 22's llvmpipe stops every loop. Ones make the exact answer known.
    let k = 1_200_000;
    let a = Tensor::ones([2, k], &g).unwrap();
    let b = Tensor::ones([k, 3], &g).unwrap();
    let c = a.matmul(&b).unwrap().to_vec().unwrap();
    assert_eq!(c, vec![k as f32; 6]);
}

#[test]
fn long_reductions_are_multi_pass_and_right() {
    let Some(g) = gpu() else { return };
    // 3 x 100,000 ones along the middle axis, with an inner axis: several chunks per output
    let x = Tensor::ones([3, 100_000, 2], &g).unwrap();
    let s = x.sum_axis(1, false).unwrap().to_vec().unwrap();
    assert_eq!(s, vec![100_000.0; 6]);
    let m = Tensor::arange(0.0, 300_000.0, &g)
        .unwrap()
        .reshape([3, 100_000])
        .unwrap()
        .max_axis(1, false)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(m, vec![99_999.0, 199_999.0, 299_999.0]);
    // random values against the CPU, and the same bits run after run
    let v = randv(3 * 70_000, 5);
    let on = |d: &Device| {
        Tensor::from_vec(v.clone(), [3, 70_000], d).unwrap().sum_axis(1, false).unwrap()
    };
    let (a, b) = (on(&g), on(&g));
    assert_eq!(bits(&a), bits(&b));
    close(&a, &on(&Device::cpu()), 1e-4, 1e-3, "sum of 70,000 random values");
}

#[test]
fn convolution_gathers_past_the_loop_budget_are_split() {
    let Some(dev) = low_cap() else { return };
    // a 15x15 kernel: col2im loops 15 * 16 = 240 times per element, in two passes
    let inputs = [input(&[1, 2, 20, 20], 1), input(&[3, 2, 15, 15], 2)];
    let opts = Conv2dOptions::new().padding(2);
    let f = |t: &[Tensor]| conv2d(&t[0], &t[1], None, &opts);
    split_matches(&dev, "conv2d 15x15", &inputs, &f, true);
    // depthwise, 2 filters per channel, 13x13: the input gradient loops over (m, kh) rows
    let inputs = [input(&[2, 3, 18, 18], 3), input(&[6, 1, 13, 13], 4)];
    let opts = Conv2dOptions::new().padding(3).groups(3);
    let f = |t: &[Tensor]| conv2d(&t[0], &t[1], None, &opts);
    split_matches(&dev, "depthwise 13x13", &inputs, &f, true);
}

#[test]
fn depthwise_weight_gradient_over_many_windows_is_chunked() {
    let Some(g) = gpu() else { return };
    // 2 x 100 x 100 = 20,000 windows per weight: two chunks of 16,384, summed in order
    let inputs = [input(&[2, 2, 100, 100], 7), input(&[2, 1, 3, 3], 8)];
    let opts = Conv2dOptions::new().padding(1).groups(2);
    let f = |t: &[Tensor]| conv2d(&t[0], &t[1], None, &opts);
    split_matches(&g, "depthwise weight gradient", &inputs, &f, false);
}

#[test]
fn pooling_past_the_loop_budget_is_split() {
    let Some(dev) = low_cap() else { return };
    let x = [input(&[1, 2, 24, 24], 1)];
    let mp = MaxPool2dOptions::new(15).stride(1);
    split_matches(&dev, "max_pool2d 15x15", &x, &|t| max_pool2d(&t[0], &mp), true);
    let ap = AvgPool2dOptions::new(15).stride(1).padding(7);
    split_matches(&dev, "avg_pool2d 15x15", &x, &|t| avg_pool2d(&t[0], &ap), true);
    let ap = AvgPool2dOptions::new(15).stride(1).count_include_pad(false);
    split_matches(&dev, "avg_pool2d no pad count", &x, &|t| avg_pool2d(&t[0], &ap), true);
    // global pooling: 24 rows of 24 in one window
    let f = |t: &[Tensor]| adaptive_avg_pool2d(&t[0], 1);
    split_matches(&dev, "global adaptive pool", &x, &f, true);
    // an output larger than the input: each input has many windows in its backward
    let small = [input(&[1, 2, 3, 3], 2)];
    let f = |t: &[Tensor]| adaptive_avg_pool2d(&t[0], 40);
    split_matches(&dev, "adaptive pool 3 -> 40", &small, &f, true);
}

#[test]
fn upsampling_backward_past_the_loop_budget_is_split() {
    let Some(dev) = low_cap() else { return };
    let x = [input(&[1, 2, 3, 2], 3)];
    let near = UpsampleOptions::nearest(UpsampleSize::Size(60, 50));
    split_matches(&dev, "nearest x20", &x, &|t| upsample(&t[0], &near), true);
    for corners in [false, true] {
        let bil = UpsampleOptions::bilinear(UpsampleSize::Size(60, 50), corners);
        let name = format!("bilinear x20, align_corners {corners}");
        split_matches(&dev, &name, &x, &|t| upsample(&t[0], &bil), true);
    }
}

#[test]
fn a_window_row_longer_than_the_budget_is_a_clear_error() {
    let Some(dev) = low_cap() else { return };
    // one row of 200 taps cannot be split into rows: refused before any dispatch
    let x = Tensor::ones([1, 1, 1, 300], &dev).unwrap();
    let e = max_pool2d(&x, &MaxPool2dOptions::new((1, 200))).unwrap_err();
    assert!(matches!(e, Error::TooLarge { op: "max_pool2d", .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "max_pool2d: a window row of 200 taps exceeds the GPU kernels' budget of 160"
        ),
        "{msg}"
    );
    // the same op is fine within the budget, and on the CPU
    let cpu = max_pool2d(&x.to_device(&Device::cpu()).unwrap(), &MaxPool2dOptions::new((1, 200)));
    assert_eq!(cpu.unwrap().dims(), &[1, 1, 1, 1]);
}

#[test]
fn the_self_test_passes_on_the_adapter_in_use_and_is_cheap() {
    let Some(Device::Gpu(ctx)) = gpu() else {
        return;
    };
    let report = ctx.self_test().expect("the self-test ran at creation");
    assert_eq!(report.failure, None);
    assert_eq!(
        report.passed,
        vec![
            format!("loop of {LOOP_CAP} iterations"),
            "64 barrier rounds in a loop".to_string(),
            "2-d grid".to_string(),
            "3-d grid".to_string(),
            "read at a non-zero binding offset".to_string(),
        ]
    );
    assert!(report.millis < 5_000.0, "self-test took {} ms", report.millis);
}

#[test]
fn an_adapter_that_fails_the_self_test_is_refused() {
    let Some(Device::Gpu(ctx)) = gpu() else {
        return;
    };
    let a = ctx.adapter().clone();
    let canaries = [
        ("loop", "loop of 16384 iterations"),
        ("barrier", "64 barrier rounds in a loop"),
        ("grid2", "2-d grid"),
        ("grid3", "3-d grid"),
        ("offset", "read at a non-zero binding offset"),
    ];
    for (key, what) in canaries {
        let opts = GpuOptions::default();
        let err = testing::gpu_with_faults(opts.clone(), Some(key), None).unwrap_err();
        assert!(matches!(err, Error::AdapterRefused(_)), "{err}");
        let msg = err.to_string();
        for part in [&a.name, &a.driver, &format!("failed the self-test: {what}")] {
            assert!(msg.contains(part.as_str()), "{key}: {msg:?} lacks {part:?}");
        }
        // auto falls back to the CPU backend
        assert_eq!(testing::auto_with_faults(opts, Some(key)), Device::Cpu);
    }
}

#[test]
fn shadow_mode_checks_every_op_and_reports_a_mismatch() {
    if gpu().is_none() {
        return;
    }
    let check = |fault| {
        let opts = GpuOptions { check: true, ..Default::default() };
        testing::gpu_with_faults(opts, None, fault).unwrap()
    };
    // a training-like step passes every check
    let dev = check(None);
    let inputs = [input(&[2, 3, 9, 9], 1), input(&[4, 3, 3, 3], 2)];
    let opts = Conv2dOptions::new().padding(1);
    let f = |t: &[Tensor]| {
        let y = conv2d(&t[0], &t[1], None, &opts)?.relu()?;
        max_pool2d(&y, &MaxPool2dOptions::new(2))
    };
    let (ys, _) = run_op(&dev, &inputs, &f);
    let (yc, _) = run_op(&Device::cpu(), &inputs, &f);
    close(&ys, &yc, 1e-4, 1e-5, "shadow-checked forward");

    // a wrong GPU result is an error naming the op, the shapes and the difference
    let dev = check(Some("reduce"));
    let e = Tensor::ones([3, 500], &dev).unwrap().sum_axis(1, false).unwrap_err();
    let Error::ShadowMismatch { op, shapes, detail } = &e else {
        panic!("not a shadow mismatch: {e}")
    };
    assert_eq!((*op, shapes.as_str()), ("reduce", "(outer, len, inner) = (3, 500, 1) (Sum)"));
    assert!(detail.starts_with("largest difference 1e0"), "{e}");
    // the message says it all too
    assert!(e.to_string().starts_with("shadow check: reduce on (outer, len, inner)"), "{e}");
    let dev = check(Some("matmul"));
    let a = Tensor::ones([4, 5], &dev).unwrap();
    let e = a.matmul(&a.transpose(0, 1).unwrap()).unwrap_err();
    assert!(
        matches!(&e, Error::ShadowMismatch { op: "matmul", shapes, .. } if shapes == "1 x (4, 5) x (5, 4)"),
        "{e}"
    );
    // other ops on the faulty context are still checked and pass
    let y = Tensor::ones([8], &dev).unwrap().relu().unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![1.0; 8]);
}

#[test]
fn host_allocations_that_cannot_be_made_are_errors() {
    let cpu = Device::cpu();
    let e = Tensor::zeros([1usize << 36], &cpu).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { op: "full", .. }), "{e}");
    assert!(
        e.to_string().starts_with("full: out of memory: cannot allocate 68719476736 elements"),
        "{e}"
    );
    let e = Tensor::arange(0.0, 1e30, &cpu).unwrap_err().to_string();
    assert!(e.starts_with("arange: "), "{e}");
    let e = Tensor::randn([1usize << 36], 0, &cpu).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { op: "randn", .. }), "{e}");
    // an op whose output cannot be allocated
    let x = Tensor::ones([1, 1], &cpu).unwrap();
    let big = x.broadcast_to([1 << 18, 1 << 18]);
    match big.and_then(|b| b.add_scalar(1.0)) {
        Err(e) => assert!(matches!(e, Error::OutOfMemory { .. }), "{e}"),
        Ok(_) => panic!("a 256 GiB result was allocated"),
    }
}

/// Every dispatch of a batch reads its own params from the uniform ring: 1,100 chained
/// `add_scalar`s with different scalars (past two automatic submits) give the CPU's values, in
/// three submits; one training step of the bench CNN submits a few command buffers at most.
#[test]
fn each_dispatch_reads_its_own_params_and_batches_stay_few() {
    if gpu().is_none() {
        return;
    }
    // a context of its own: other tests' submits would count on the shared one
    let dev = Device::gpu_with(GpuOptions::default()).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!("gpu() gives a GPU device") };
    let v = randv(1000, 9);
    let mut g = Tensor::from_vec(v.clone(), [1000], &dev).unwrap();
    let mut c = Tensor::from_vec(v, [1000], &Device::cpu()).unwrap();
    dev.sync().unwrap();
    let before = ctx.pool_stats();
    for i in 0..1100 {
        let s = (i % 7) as f32 * 0.25 - 0.75;
        g = g.add_scalar(s).unwrap();
        c = c.add_scalar(s).unwrap();
    }
    dev.sync().unwrap();
    let after = ctx.pool_stats();
    assert_eq!(after.submits - before.submits, 3);
    // one dispatch per op
    assert_eq!(after.dispatches - before.dispatches, 1100);
    close(&g, &c, 1e-6, 0.0, "1,100 add_scalar");

    use convshade::nn::Module;
    use convshade::Optimizer;
    let net = convshade::bench::suite::bench_net(&dev).unwrap();
    let x = Tensor::randn([64, 1, 28, 28], 4, &dev).unwrap();
    let labels: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let targets = convshade::one_hot(&labels, 10, &dev).unwrap();
    let mut sgd = convshade::Sgd::new(net.parameters(), 0.01).unwrap();
    let step = |sgd: &mut convshade::Sgd| {
        let loss = convshade::cross_entropy(&net.forward(&x).unwrap(), &targets).unwrap();
        sgd.step(&loss.backward().unwrap()).unwrap();
        dev.sync().unwrap();
    };
    step(&mut sgd);
    let before = ctx.pool_stats().submits;
    step(&mut sgd);
    let submits = ctx.pool_stats().submits - before;
    assert!((1..=3).contains(&submits), "{submits} submits for one step");
}
