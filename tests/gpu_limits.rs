//! The GPU context at its limits, against the CPU: tiled matmul, work beyond the dispatch
//! limit, threads sharing a device, the buffer pool, tensors larger than a binding, index
//! ranges, huge shapes and long sums.

mod common;

use common::{close, gpu, randv};
use convshade::{Device, Error, Tensor};

#[test]
fn gpu_matmul_is_tiled_and_exact_on_integers() {
    let Some(g) = gpu() else { return };
    // Integers small enough that every sum is exact: any tiling error shows as a mismatch.
    let (m, k, n) = (150, 70, 133);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
    let tc = Tensor::from_vec(a.clone(), [m, k], &Device::cpu()).unwrap();
    let bc = Tensor::from_vec(b.clone(), [k, n], &Device::cpu()).unwrap();
    let tg = Tensor::from_vec(a, [m, k], &g).unwrap();
    let bg = Tensor::from_vec(b, [k, n], &g).unwrap();
    close(&tg.matmul(&bg).unwrap(), &tc.matmul(&bc).unwrap(), 0.0, 0.0, "integer matmul");
}

#[test]
fn gpu_products_split_along_k_are_exact_on_integers() {
    let Some(g) = gpu() else { return };
    // few outputs and a long K: the chunks of K run side by side, then are summed; integer sums
    // are exact in any order, so the split must give the CPU's values exactly
    let narrow =
        convshade::gpu::GpuOptions { max_workgroups_per_dimension: Some(16), ..Default::default() };
    for dev in [g, Device::gpu_with(narrow).unwrap()] {
        for (batch, m, k, n) in [(1, 6, 9000, 5), (3, 4, 5000, 7), (1, 33, 70_000, 2)] {
            let a: Vec<f32> = (0..batch * m * k).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..batch * k * n).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
            let on = |d: &Device| {
                let ta = Tensor::from_vec(a.clone(), [batch, m, k], d).unwrap();
                let tb = Tensor::from_vec(b.clone(), [batch, k, n], d).unwrap();
                ta.matmul(&tb).unwrap()
            };
            let what = format!("({batch}, {m}, {k}) x ({batch}, {k}, {n})");
            close(&on(&dev), &on(&Device::cpu()), 0.0, 0.0, &what);
        }
    }
    // split, not run in passes: unsplit, K = 9000 takes 4 loop-budget passes of a 16,384-
    // iteration budget; split in 8 chunks it is one dispatch, then the sum of the chunks
    let dev = Device::gpu_with(convshade::gpu::GpuOptions::default()).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!("a GPU device") };
    let a = Tensor::from_vec(randv(6 * 9000, 1), [6, 9000], &dev).unwrap();
    let b = Tensor::from_vec(randv(9000 * 5, 2), [9000, 5], &dev).unwrap();
    a.matmul(&b).unwrap();
    dev.sync().unwrap();
    let before = ctx.pool_stats().dispatches;
    a.matmul(&b).unwrap();
    dev.sync().unwrap();
    assert_eq!(ctx.pool_stats().dispatches - before, 2, "one product and one sum of chunks");
}

/// Same op on the CPU and on `dev`, outputs and gradients compared.
fn compare_on(
    dev: &Device, name: &str, inputs: &[(Vec<usize>, Vec<f32>)],
    f: &dyn Fn(&[Tensor]) -> convshade::Result<Tensor>,
) {
    let (yc, gc) = common::run_op(&Device::cpu(), inputs, f);
    let (yg, gg) = common::run_op(dev, inputs, f);
    close(&yg, &yc, 1e-4, 1e-4, &format!("{name}: forward"));
    for (i, (a, b)) in gg.iter().zip(&gc).enumerate() {
        close(a.as_ref().unwrap(), b.as_ref().unwrap(), 1e-4, 1e-4, &format!("{name}: grad {i}"));
    }
}

#[test]
fn gpu_work_beyond_the_dispatch_limit_is_split() {
    if gpu().is_none() {
        return;
    }
    // With at most 16 workgroups per dimension every large-work path must split or spill.
    let dev = Device::gpu_with(convshade::gpu::GpuOptions {
        max_workgroups_per_dimension: Some(16),
        ..Default::default()
    })
    .unwrap();
    // 1030 rows > 16 tiles of 64: two row dispatches; 17 batches: two batch dispatches
    let mm = vec![(vec![17, 1030, 8], randv(17 * 1030 * 8, 1)), (vec![8, 5], randv(40, 2))];
    compare_on(&dev, "row/batch split matmul", &mm, &|t| t[0].matmul(&t[1]));
    // 1030 columns: two column dispatches
    let mm = vec![(vec![5, 8], randv(40, 1)), (vec![8, 1030], randv(8 * 1030, 2))];
    compare_on(&dev, "column split matmul", &mm, &|t| t[0].matmul(&t[1]));
    // 70_000 elements > 16 * 16 * 256: the grid spills into z
    let ew = vec![(vec![70_000], randv(70_000, 3)), (vec![1], vec![0.5])];
    compare_on(&dev, "split elementwise", &ew, &|t| t[0].mul(&t[1])?.tanh());
    compare_on(&dev, "split reduction", &ew[..1], &|t| {
        t[0].reshape([700, 100])?.sum_axis(1, false)
    });
    let conv = vec![(vec![2, 3, 40, 40], randv(9600, 4)), (vec![5, 3, 3, 3], randv(135, 5))];
    compare_on(&dev, "split conv2d", &conv, &|t| {
        convshade::conv2d(&t[0], &t[1], None, &convshade::Conv2dOptions::new().padding(1))
    });
}

#[test]
fn gpu_device_is_usable_from_several_threads() {
    let Some(g) = gpu() else { return };
    let a = Tensor::from_vec(randv(97 * 61, 1), [97, 61], &Device::cpu()).unwrap();
    let b = Tensor::from_vec(randv(61 * 43, 2), [61, 43], &Device::cpu()).unwrap();
    let want = a.matmul(&b).unwrap().relu().unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (g, a, b, want) = (g.clone(), a.clone(), b.clone(), want.clone());
            s.spawn(move || {
                for i in 0..10 {
                    let ag = a.to_device(&g).unwrap();
                    let bg = b.to_device(&g).unwrap();
                    let y = ag.matmul(&bg).unwrap().relu().unwrap();
                    close(&y, &want, 1e-4, 1e-4, &format!("thread {t} iteration {i}"));
                }
            });
        }
    });
}

#[test]
fn gpu_buffer_pool_reuses_freed_buffers() {
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(Default::default()).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    // (the self-test's buffers were made when the context was)
    let before = ctx.pool_stats();
    let x = Tensor::from_vec(randv(4096, 1), [64, 64], &dev).unwrap();
    for _ in 0..50 {
        let y = x.mul_scalar(2.0).unwrap().add_scalar(1.0).unwrap();
        assert_eq!(y.dims(), &[64, 64]);
    }
    dev.sync().unwrap();
    let stats = ctx.pool_stats();
    let (created, reused) = (stats.created - before.created, stats.reused - before.reused);
    // 101 allocations of one size: a handful of buffers serve them all
    assert!(created <= 4, "{stats:?} after {before:?}");
    assert!(reused >= 97, "{stats:?} after {before:?}");
    assert_eq!(x.mul_scalar(2.0).unwrap().to_vec().unwrap()[0], x.to_vec().unwrap()[0] * 2.0);
}

#[test]
fn gpu_tensor_just_past_the_adapters_binding_is_stored_in_parts_and_computed() {
    let Some(g) = gpu() else { return };
    let Device::Gpu(ctx) = &g else { unreachable!() };
    // the adapter's own limit, not a lowered one (tests/split.rs lowers it for every op family)
    let n = (ctx.limits().max_storage_buffer_binding_size / 4 + 3) as usize;
    let data: Vec<f32> = (0..n).map(|i| ((i % 1001) as f32) - 500.0).collect();
    let x = Tensor::from_vec(data.clone(), [n], &g).unwrap();
    let y = x.relu().unwrap().to_vec().unwrap();
    assert_eq!(y.len(), n);
    for i in [0, 1, n / 2, n - 3, n - 2, n - 1] {
        assert_eq!(y[i], data[i].max(0.0), "element {i}");
    }
    let filled = Tensor::full([n], 2.5, &g).unwrap().to_vec().unwrap();
    assert!(filled.iter().all(|&v| v == 2.5));
}

#[test]
fn huge_shapes_are_errors_not_overflows() {
    let d = Device::cpu();
    let two = Tensor::zeros([2], &d).unwrap();
    // 2 * (2^63 + 1) wraps to 2 in usize arithmetic
    let e = two.reshape([2, (1usize << 63) + 1]).unwrap_err().to_string();
    assert!(e.contains("reshape") && e.contains("too many elements"), "{e}");
    assert!(Tensor::from_vec(vec![], [1 << 32, 1 << 32], &d).is_err());
    assert!(two.broadcast_to([1 << 40, 1 << 40, 2]).is_err());
    let x = Tensor::ones([1, 1, 2, 2], &d).unwrap();
    let w = Tensor::ones([1, 1, 1, 1], &d).unwrap();
    let opts = convshade::Conv2dOptions::new().padding(convshade::Padding::Explicit([
        usize::MAX,
        0,
        0,
        0,
    ]));
    assert!(convshade::conv2d(&x, &w, None, &opts).unwrap_err().to_string().contains("overflow"));
    let opts = convshade::Conv2dOptions::new().dilation(usize::MAX);
    let w2 = Tensor::ones([1, 1, 2, 2], &d).unwrap();
    assert!(convshade::conv2d(&x, &w2, None, &opts).is_err());
    let up = convshade::UpsampleOptions::nearest(convshade::UpsampleSize::Size(1 << 62, 2));
    assert!(convshade::upsample(&x, &up).is_err());
    let up = convshade::UpsampleOptions::nearest(convshade::UpsampleSize::Scale(1e30, 1.0));
    assert!(convshade::upsample(&x, &up).is_err());
    assert!(convshade::adaptive_avg_pool2d(&x, ((1 << 62) + 1, 2)).is_err());
}

#[test]
fn gpu_rejects_geometry_beyond_its_index_range() {
    let Some(g) = gpu() else { return };
    // stride and padding of 2^32 are fine for the CPU, but not for the shaders' 32-bit math
    let opts = convshade::Conv2dOptions::new()
        .stride((1 << 32, 1))
        .padding(convshade::Padding::Explicit([1 << 32, 0, 0, 0]));
    let (x, w) = (
        Tensor::ones([1, 1, 1, 1], &Device::cpu()).unwrap(),
        Tensor::ones([1, 1, 1, 1], &Device::cpu()).unwrap(),
    );
    let y = convshade::conv2d(&x, &w, None, &opts).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![0.0, 1.0]);
    let e = convshade::conv2d(&x.to_device(&g).unwrap(), &w.to_device(&g).unwrap(), None, &opts)
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { op: "conv2d", .. }), "{e}");
    assert!(e.to_string().contains("31-bit"), "{e}");
    // adaptive windows computed as o * h must not wrap
    let tall = Tensor::ones([1, 1, 65_537, 1], &g).unwrap();
    assert!(convshade::adaptive_avg_pool2d(&tall, (65_537, 1)).is_err());
}

#[test]
fn long_sums_keep_float32_accuracy_on_both_devices() {
    for d in std::iter::once(Device::cpu()).chain(gpu()) {
        let n = 1 << 25;
        let s = Tensor::ones([n], &d).unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert_eq!(s, n as f32, "{d:?}");
        let rows = Tensor::ones([3, 1 << 23], &d).unwrap().sum_axis(1, false).unwrap();
        assert_eq!(rows.to_vec().unwrap(), vec![(1 << 23) as f32; 3]);
    }
    // the CPU's parallel sum is the same bit for bit run after run
    let v = Tensor::randn([1 << 20], 3, &Device::cpu()).unwrap();
    let a = v.sum_all().unwrap().to_scalar().unwrap();
    let b = v.sum_all().unwrap().to_scalar().unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
}

/// conv2d's GPU forward and both gradients are implicit GEMMs: each allocates one buffer, its
/// result (the im2col path allocated the column matrix, a permuted output gradient or the
/// columns for col2im, too); and they match the CPU with groups, stride, dilation and
/// asymmetric padding, with a bias (fused into the forward's epilogue), their sums split into K
/// ranges by a low loop cap. The stride-1 input gradient runs as a forward convolution of the
/// output gradient with flipped weights; the strided one gathers; both are covered.
#[test]
fn gpu_conv2d_needs_no_column_matrix() {
    if gpu().is_none() {
        return;
    }
    let dev =
        Device::gpu_with(convshade::gpu::GpuOptions { loop_cap: Some(64), ..Default::default() })
            .unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!("a GPU context") };
    let strided = convshade::Conv2dOptions::new()
        .stride((2, 1))
        .padding(convshade::Padding::Explicit([2, 1, 0, 3]))
        .dilation((1, 2))
        .groups(2);
    let unit = convshade::Conv2dOptions::new()
        .padding(convshade::Padding::Explicit([0, 2, 1, 3]))
        .dilation((2, 1))
        .groups(2);
    for (name, opts) in [("strided", strided), ("stride 1", unit)] {
        let x = Tensor::from_vec(randv(3 * 12 * 15 * 13, 7), [3, 12, 15, 13], &dev).unwrap();
        let w = Tensor::from_vec(randv(10 * 6 * 3 * 3, 8), [10, 6, 3, 3], &dev).unwrap();
        dev.sync().unwrap();
        // allocations: buffers created plus freed ones reused
        let allocs = || ctx.pool_stats().created + ctx.pool_stats().reused;
        let before = allocs();
        let y = convshade::conv2d(&x, &w, None, &opts).unwrap();
        dev.sync().unwrap();
        assert_eq!(allocs() - before, 1, "{name}: buffers for one forward");
        let up = Tensor::from_vec(randv(y.elem_count(), 10), y.dims().to_vec(), &dev).unwrap();
        // each gradient alone: its own buffer, no columns and no permuted copy
        for (wrt, dims) in [(0, [3, 12, 15, 13]), (1, [10, 6, 3, 3])] {
            let (xv, wv) = if wrt == 0 {
                (x.requires_grad_(), w.clone())
            } else {
                (x.clone(), w.requires_grad_())
            };
            let y2 = convshade::conv2d(&xv, &wv, None, &opts).unwrap();
            dev.sync().unwrap();
            let before = allocs();
            let grads = y2.backward_with(&up).unwrap();
            dev.sync().unwrap();
            assert_eq!(allocs() - before, 1, "{name}: buffers for gradient {wrt}");
            let g = grads.get(if wrt == 0 { &xv } else { &wv }).unwrap();
            assert_eq!(g.dims(), dims);
        }
        let inputs = vec![
            (vec![3, 12, 15, 13], randv(3 * 12 * 15 * 13, 7)),
            (vec![10, 6, 3, 3], randv(10 * 6 * 3 * 3, 8)),
            (vec![10], randv(10, 9)),
        ];
        compare_on(&dev, &format!("conv2d {name}, loop cap 64"), &inputs, &|t| {
            convshade::conv2d(&t[0], &t[1], Some(&t[2]), &opts)
        });
    }
}
