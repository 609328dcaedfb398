//! Reliability: `backward` needs a scalar (or an upstream gradient); training is bit-identical run
//! to run on the GPU and on the CPU whatever its thread count; one GPU device trains four models
//! from four threads at once exactly as it does one at a time; a lost device gives errors, and a
//! new one works. (The memory test is tests/memory.rs, a process of its own.)

mod common;

use common::{gpu, train_small_cnn};
use convshade::{Device, Error, Tensor};

#[test]
fn backward_of_a_non_scalar_is_an_error_and_backward_with_takes_its_gradient() {
    let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &Device::cpu()).unwrap().requires_grad_();
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().err().unwrap().to_string();
    assert!(e.starts_with("backward: the gradient can be implied only for a scalar"), "{e}");
    assert!(e.contains("[3]") && e.contains("backward_with"), "{e}");
    let up = Tensor::from_vec(vec![1.0, 10.0, 100.0], [3], &Device::cpu()).unwrap();
    let g = y.backward_with(&up).unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), [2.0, 20.0, 200.0]);
    // a one-element tensor of any rank is a scalar, as in PyTorch
    let one = x.sum_all().unwrap().reshape([1, 1]).unwrap();
    assert_eq!(one.backward().unwrap().get(&x).unwrap().to_vec().unwrap(), [1.0; 3]);
}

#[test]
fn training_is_bit_identical_run_to_run_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let a = train_small_cnn(&dev, 12, 1);
    let b = train_small_cnn(&dev, 12, 1);
    assert_eq!(a, b);
    // and the steps did change the weights
    assert_ne!(a.0, train_small_cnn(&dev, 0, 1).0);
}

#[test]
fn training_on_the_cpu_is_the_same_with_1_2_and_4_threads() {
    let runs: Vec<_> = [1, 2, 4]
        .iter()
        .map(|&n| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
            pool.install(|| train_small_cnn(&Device::cpu(), 12, 2))
        })
        .collect();
    assert_eq!(runs[0], runs[1], "1 and 2 threads");
    assert_eq!(runs[0], runs[2], "1 and 4 threads");
}

#[test]
fn four_threads_on_one_device_give_the_sequential_results() {
    let Some(dev) = gpu() else { return };
    let sequential: Vec<_> = (0..4).map(|s| train_small_cnn(&dev, 6, 10 + s)).collect();
    let concurrent: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|s| {
                let dev = dev.clone();
                scope.spawn(move || train_small_cnn(&dev, 6, 10 + s))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, concurrent);
}

/// A lost device (forced by destroying it) makes every later call an `Err`, never a panic, and
/// a new GPU device made afterwards works.
#[test]
fn a_lost_device_gives_errors_and_a_new_device_works() {
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(Default::default()).unwrap();
    let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &dev).unwrap();
    let pending = x.relu().unwrap();
    convshade::testing::lose_device(&dev);
    let e = pending.to_vec().unwrap_err();
    assert!(matches!(e, Error::DeviceLost(_)), "{e}");
    for r in [
        x.mul_scalar(2.0).and_then(|y| y.to_vec()),
        Tensor::from_vec(vec![1.0; 4], [4], &dev).and_then(|y| y.to_vec()),
        x.sum_all().and_then(|y| y.to_vec()),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::DeviceLost(_)), "{e}");
    }
    assert!(dev.sync().is_err());
    let fresh = Device::gpu_with(Default::default()).unwrap();
    let y = Tensor::from_vec(vec![1.0, -2.0, 3.0], [3], &fresh).unwrap();
    assert_eq!(y.relu().unwrap().to_vec().unwrap(), [1.0, 0.0, 3.0]);
}

/// A device call wgpu rejects is an `Err` naming the call, at once and once: the device goes
/// on working, and the async forms answer as the blocking ones.
#[test]
fn a_rejected_device_call_is_an_err_once() {
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(Default::default()).unwrap();
    let e = convshade::testing::raise_device_error(&dev).unwrap_err();
    assert!(matches!(&e, Error::Gpu(m) if m.contains("device error hook")), "{e}");
    let t = Tensor::from_vec(vec![1.0, 2.0], [2], &dev).unwrap().mul_scalar(3.0).unwrap();
    assert_eq!(t.to_vec().unwrap(), [3.0, 6.0]);
    assert_eq!(pollster::block_on(t.to_vec_async()).unwrap(), [3.0, 6.0]);
    assert_eq!(pollster::block_on(t.sum_all().unwrap().to_scalar_async()).unwrap(), 9.0);
    pollster::block_on(dev.sync_async()).unwrap();
    assert!(matches!(pollster::block_on(Device::gpu_async()), Ok(Device::Gpu(_))));
}
