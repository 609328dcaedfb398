//! Reliability: `backward` needs a scalar (or an upstream gradient); training is bit-identical run
//! to run on the GPU and on the CPU whatever its thread count; one GPU device trains four models
//! from four threads at once exactly as it does one at a time; and a training loop creates no
//! GPU buffer after its warm-up and keeps host memory flat.

mod common;

use common::gpu;
use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy_labels, Adam, Conv2dOptions, CrossEntropyOptions, Device, MaxPool2dOptions,
    Optimizer, Tensor,
};

#[test]
fn backward_of_a_non_scalar_is_an_error_and_backward_with_takes_its_gradient() {
    let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &Device::cpu())
        .unwrap()
        .requires_grad_();
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().err().unwrap().to_string();
    assert!(
        e.starts_with("backward: the gradient can be implied only for a scalar"),
        "{e}"
    );
    assert!(e.contains("[3]") && e.contains("backward_with"), "{e}");
    let up = Tensor::from_vec(vec![1.0, 10.0, 100.0], [3], &Device::cpu()).unwrap();
    let g = y.backward_with(&up).unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), [2.0, 20.0, 200.0]);
    // a one-element tensor of any rank is a scalar, as in PyTorch
    let one = x.sum_all().unwrap().reshape([1, 1]).unwrap();
    assert_eq!(
        one.backward().unwrap().get(&x).unwrap().to_vec().unwrap(),
        [1.0; 3]
    );
}

/// A small CNN trained `steps` Adam steps on seeded data; its weights' bits after, and the loss
/// of each step (read back, as a training loop's progress display does).
fn train(dev: &Device, steps: usize, seed: u64) -> (Vec<Vec<u32>>, Vec<f32>) {
    let same = Conv2dOptions::new().padding(1);
    let net = Sequential::new()
        .push(Conv2d::new(1, 4, 3, same, true, seed, dev).unwrap()) // (8, 4, 8, 8)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (8, 4, 4, 4)
        .push(Flatten)
        .push(Linear::new(64, 3, true, seed + 1, dev).unwrap());
    let mut opt = Adam::new(net.parameters(), 1e-2).unwrap();
    let labels: Vec<usize> = (0..8).map(|i| (i + seed as usize) % 3).collect();
    let mut losses = Vec::new();
    for step in 0..steps {
        let x = Tensor::randn([8, 1, 8, 8], seed * 1000 + step as u64, dev).unwrap();
        let logits = net.forward(&x).unwrap();
        let loss = cross_entropy_labels(&logits, &labels, CrossEntropyOptions::default()).unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        losses.push(loss.to_scalar().unwrap());
    }
    let weights = net
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect())
        .collect();
    (weights, losses)
}

#[test]
fn training_is_bit_identical_run_to_run_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let a = train(&dev, 12, 1);
    let b = train(&dev, 12, 1);
    assert_eq!(a, b);
    // and the steps did change the weights
    assert_ne!(a.0, train(&dev, 0, 1).0);
}

#[test]
fn training_on_the_cpu_is_the_same_with_1_2_and_4_threads() {
    let runs: Vec<_> = [1, 2, 4]
        .iter()
        .map(|&n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            pool.install(|| train(&Device::cpu(), 12, 2))
        })
        .collect();
    assert_eq!(runs[0], runs[1], "1 and 2 threads");
    assert_eq!(runs[0], runs[2], "1 and 4 threads");
}

#[test]
fn four_threads_on_one_device_give_the_sequential_results() {
    let Some(dev) = gpu() else { return };
    let sequential: Vec<_> = (0..4).map(|s| train(&dev, 6, 10 + s)).collect();
    let concurrent: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|s| {
                let dev = dev.clone();
                scope.spawn(move || train(&dev, 6, 10 + s))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, concurrent);
}

/// Resident host memory in bytes (Linux), or None.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn a_training_loop_creates_no_buffer_after_warm_up_and_keeps_host_memory_flat() {
    if gpu().is_none() {
        return;
    }
    // a context of its own: the other tests of this file run beside it
    let dev = Device::gpu_with(Default::default()).unwrap();
    let Device::Gpu(ctx) = &dev else {
        unreachable!()
    };
    // warm-up: the pool fills, staging buffers for the readbacks included
    train(&dev, 4, 3);
    let before = ctx.pool_stats();
    let rss_before = resident_bytes();
    // RELIABILITY_STEPS=1000 for the long run
    let steps = std::env::var("RELIABILITY_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    train(&dev, steps, 3);
    let after = ctx.pool_stats();
    assert_eq!(after.created, before.created, "{after:?} after {before:?}");
    assert!(
        after.reused > before.reused,
        "the loop did allocate, from the pool"
    );
    if let (Some(a), Some(b)) = (rss_before, resident_bytes()) {
        // a leaked batch of images per step alone would be 40 * 2 KiB; a leaked pooled
        // buffer or mapping far more
        let grown = b.saturating_sub(a);
        eprintln!("{steps} steps: {after:?} after {before:?}; host memory grew by {grown} bytes");
        assert!(grown < 8 << 20, "host memory grew by {grown} bytes");
    }
}

/// A lost device (forced by destroying it) makes every later call an `Err`, never a panic, and
/// a new GPU device made afterwards works.
#[test]
fn a_lost_device_gives_errors_and_a_new_device_works() {
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(Default::default()).unwrap();
    let Device::Gpu(ctx) = &dev else {
        unreachable!()
    };
    let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &dev).unwrap();
    let pending = x.relu().unwrap();
    ctx.lose_device_for_test();
    let e = pending.to_vec().unwrap_err().to_string();
    assert!(e.contains("device lost"), "{e}");
    for r in [
        x.mul_scalar(2.0).and_then(|y| y.to_vec()),
        Tensor::from_vec(vec![1.0; 4], [4], &dev).and_then(|y| y.to_vec()),
        x.sum_all().and_then(|y| y.to_vec()),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("device lost"), "{e}");
    }
    assert!(dev.sync().is_err());
    let fresh = Device::gpu_with(Default::default()).unwrap();
    let y = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &fresh).unwrap();
    assert_eq!(y.relu().unwrap().to_vec().unwrap(), [1.0, 0.0, 3.0]);
}
