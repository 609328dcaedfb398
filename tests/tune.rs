//! Per-adapter tuning of the GEMM: every candidate tiling gives the same bits on products and on
//! every convolution mode, and a context that tunes on first use keeps and caches its winner,
//! which the next context reads back without timing anything.

mod common;

use common::{close, gpu, randv};
use convshade::gpu::{GemmTiles, GpuOptions, Tuning};
use convshade::{conv2d, Conv2dOptions, Device, Result, Tensor};

/// A product and convolutions in each of the GEMM's modes (forward, weight gradient, stride-1
/// and strided input gradients), and products split along K, their outputs' bits.
fn gemm_work(dev: &Device) -> Result<Vec<Vec<u32>>> {
    let bits = |t: &Tensor| t.to_vec().map(|v| v.iter().map(|x| x.to_bits()).collect());
    let a = Tensor::from_vec(randv(70 * 130, 1), [70, 130], dev)?;
    let b = Tensor::from_vec(randv(130 * 90, 2), [130, 90], dev)?;
    let mut out = vec![bits(&a.matmul(&b)?)?];
    let x = Tensor::from_vec(randv(2 * 5 * 11 * 9, 3), [2, 5, 11, 9], dev)?.requires_grad_();
    let w = Tensor::from_vec(randv(6 * 5 * 3 * 3, 4), [6, 5, 3, 3], dev)?.requires_grad_();
    for stride in [1, 2] {
        let y = conv2d(&x, &w, None, &Conv2dOptions::new().stride(stride).padding(1))?;
        let grads = y.sum_all()?.backward()?;
        out.push(bits(&y)?);
        for t in [&x, &w] {
            out.push(bits(grads.get(t).expect("a gradient"))?);
        }
    }
    // products split along K (few outputs, long K): a matmul and a weight gradient over many
    // images
    let a = Tensor::from_vec(randv(20 * 5000, 5), [20, 5000], dev)?;
    let b = Tensor::from_vec(randv(5000 * 12, 6), [5000, 12], dev)?;
    out.push(bits(&a.matmul(&b)?)?);
    // products the direct variant runs: each operand contiguous along either axis, batched
    // (the second operand shared by the batch), and split along K
    let a = Tensor::from_vec(randv(3 * 36 * 132, 9), [3, 36, 132], dev)?;
    let b = Tensor::from_vec(randv(132 * 88, 10), [132, 88], dev)?;
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { a.transpose(1, 2)? } else { a.clone() };
        let b = if tb { b.transpose(0, 1)? } else { b.clone() };
        out.push(bits(&a.matmul_t(&b, ta, tb)?)?);
    }
    // forward convolutions the direct variant reads as vec4s (K a multiple of 4): strided, dilated,
    // grouped, with a bias, padded past the kernel's extent; stride-1 input gradients, which
    // run as forward convolutions; weight gradients (the direct variant's where the output
    // planes are a multiple of 4 positions: 12 x 10 and 14 x 12 here)
    let x = Tensor::from_vec(randv(3 * 8 * 12 * 10, 13), [3, 8, 12, 10], dev)?.requires_grad_();
    let w = Tensor::from_vec(randv(8 * 4 * 3 * 3, 14), [8, 4, 3, 3], dev)?.requires_grad_();
    let bias = Tensor::from_vec(randv(8, 15), [8], dev)?;
    let w8 = Tensor::from_vec(randv(8 * 8 * 3 * 3, 16), [8, 8, 3, 3], dev)?.requires_grad_();
    for (stride, dilation, padding) in [(1, 1, 1), (2, 1, 1), (1, 2, 3), (3, 2, 0)] {
        let opts = Conv2dOptions::new().stride(stride).dilation(dilation).padding(padding);
        for (w, opts) in [(&w, opts.groups(2)), (&w8, opts)] {
            let y = conv2d(&x, w, Some(&bias), &opts)?;
            out.push(bits(&y)?);
            // an output gradient of random values
            let r = Tensor::from_vec(randv(y.shape().elem_count(), 17), y.dims(), dev)?;
            let grads = y.mul(&r)?.sum_all()?.backward()?;
            for t in [&x, w] {
                out.push(bits(grads.get(t).expect("a gradient"))?);
            }
        }
    }
    // a forward convolution whose K is not a multiple of 4 (one input channel's 3x3 taps, 9),
    // which the direct variant runs one weight at a time
    let x = Tensor::from_vec(randv(4 * 12 * 12, 18), [4, 1, 12, 12], dev)?;
    let w = Tensor::from_vec(randv(8 * 9, 19), [8, 1, 3, 3], dev)?;
    out.push(bits(&conv2d(&x, &w, Some(&bias), &Conv2dOptions::new().padding(1))?)?);
    let a = Tensor::from_vec(randv(8 * 6000, 11), [8, 6000], dev)?;
    let b = Tensor::from_vec(randv(6000 * 16, 12), [6000, 16], dev)?;
    out.push(bits(&a.matmul(&b)?)?);
    let x = Tensor::from_vec(randv(16 * 2 * 16 * 16, 7), [16, 2, 16, 16], dev)?;
    let w = Tensor::from_vec(randv(3 * 2 * 3 * 3, 8), [3, 2, 3, 3], dev)?.requires_grad_();
    let y = conv2d(&x, &w, None, &Conv2dOptions::new().padding(1))?;
    out.push(bits(y.sum_all()?.backward()?.get(&w).expect("a gradient"))?);
    Ok(out)
}

#[test]
fn every_candidate_tiling_gives_the_same_bits() {
    let Some(Device::Gpu(ctx)) = gpu() else { return };
    let own = ctx.gemm_candidates().to_vec();
    assert!(own.len() >= 2, "{own:?}");
    // the adapter's candidates, then every block a thread can compute staged, and the direct
    // variant's 8x8 block on the least loop budget, so that its products run in several K
    // ranges, each resuming from C
    let mut candidates: Vec<(GemmTiles, Option<usize>)> = own.iter().map(|&t| (t, None)).collect();
    for (rows, cols) in [(8, 8), (8, 4), (4, 8), (4, 4)] {
        candidates.push((GemmTiles::new(8, 8, 8).block(rows, cols), None));
    }
    candidates.push((GemmTiles::new(4, 4, 4).direct(), Some(160)));
    // the subgroup variant on 8-lane and 16-lane rows of threads: whichever the adapter's
    // subgroups are, one broadcasts A's rows and the other (or both) loads them per lane
    if ctx.uses_subgroups() {
        candidates.push((GemmTiles::new(8, 1, 4).block(8, 8).subgroup(), None));
        candidates.push((GemmTiles::new(16, 1, 4).block(8, 8).subgroup(), None));
    }
    let mut first: Option<Vec<Vec<u32>>> = None;
    for (t, loop_cap) in candidates {
        let opts = GpuOptions { gemm_tiles: Some(t), loop_cap, ..Default::default() };
        let dev = Device::gpu_with(opts).unwrap();
        let got = gemm_work(&dev).unwrap();
        match &first {
            None => first = Some(got),
            Some(want) => assert!(got == *want, "tiling {t:?} changed the bits"),
        }
    }
}

#[test]
fn the_subgroup_variant_without_subgroups_is_refused() {
    if gpu().is_none() {
        return;
    }
    let t = GemmTiles::new(8, 2, 4).block(8, 8).subgroup();
    let opts = GpuOptions { gemm_tiles: Some(t), no_subgroups: true, ..Default::default() };
    let e = Device::gpu_with(opts).unwrap_err();
    assert!(matches!(e, convshade::Error::Invalid { op: "GpuOptions::gemm_tiles", .. }), "{e}");
    // nor on rows of fewer than 8 threads
    let t = GemmTiles::new(4, 2, 4).block(8, 8).subgroup();
    let e = Device::gpu_with(GpuOptions { gemm_tiles: Some(t), ..Default::default() });
    assert!(matches!(e, Err(convshade::Error::Invalid { .. })));
}

#[test]
fn tuning_on_first_use_keeps_and_caches_the_winner() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tuning.json");
    let open = |tuning| {
        let opts = GpuOptions {
            tuning: Some(tuning),
            tune_cache: Some(cache.clone()),
            ..Default::default()
        };
        Device::gpu_with(opts).unwrap()
    };
    let dev = open(Tuning::OnFirstUse);
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    assert!(ctx.tuned().is_empty());
    let a = Tensor::from_vec(randv(64 * 48, 5), [64, 48], &dev).unwrap();
    let b = Tensor::from_vec(randv(48 * 80, 6), [48, 80], &dev).unwrap();
    let y = a.matmul(&b).unwrap();
    // one product: one class timed, its winner one of the candidates, the result right
    let tuned = ctx.tuned();
    assert_eq!(tuned.len(), 1, "{tuned:?}");
    assert!(ctx.gemm_candidates().contains(&tuned[0].1));
    let cpu = |t: &Tensor| t.to_device(&Device::cpu()).unwrap();
    close(&y, &cpu(&a).matmul(&cpu(&b)).unwrap(), 1e-4, 1e-5, "tuned matmul");
    // the same class again times nothing new
    a.matmul(&b).unwrap().to_vec().unwrap();
    assert_eq!(ctx.tuned(), tuned);
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.contains(&tuned[0].0), "{text}");
    // a new context reads the winner back; with tuning off it reads nothing
    let Device::Gpu(again) = open(Tuning::Cached) else { unreachable!() };
    assert_eq!(again.tuned(), tuned);
    let Device::Gpu(off) = open(Tuning::Off) else { unreachable!() };
    assert!(off.tuned().is_empty());
    // a fixed tiling turns tuning off
    let fixed = GpuOptions {
        gemm_tiles: Some(tuned[0].1),
        tuning: Some(Tuning::OnFirstUse),
        tune_cache: Some(cache.clone()),
        ..Default::default()
    };
    let Device::Gpu(fixed) = Device::gpu_with(fixed).unwrap() else { unreachable!() };
    assert_eq!(fixed.tuning().0, Tuning::Off);
}
