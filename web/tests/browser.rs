//! The async API in a real browser (wasm-bindgen-test in headless Chromium, tools/web.sh test):
//! the device is created, computes and reads back without blocking; the blocking forms are
//! typed `Err`s; device errors and a lost device are `Err`s as natively. No WebGPU adapter is a
//! failure, never a skip. The adapter's limits hold as natively: work past one binding is split.

#![cfg(target_arch = "wasm32")]

use convshade::gpu::GpuOptions;
use convshade::{
    conv2d, max_pool2d, testing, Conv2dOptions, Device, Error, MaxPool2dOptions, Tensor,
};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Device {
    Device::gpu_async().await.expect("the page has a WebGPU adapter")
}

fn seq(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 % 113) as f32 / 113.0 - 0.5) * scale).collect()
}

/// `y` and the gradients of its squared sum with respect to `inputs`, read back.
async fn values_and_grads(y: &Tensor, inputs: &[&Tensor]) -> Result<Vec<Vec<f32>>, Error> {
    let grads = y.square()?.sum_all()?.backward()?;
    let mut out = vec![y.to_vec_async().await?];
    for t in inputs {
        out.push(grads.get(t).expect("a gradient").to_vec_async().await?);
    }
    Ok(out)
}

/// Every array of `got` close to the same one of `want`.
fn all_close(got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        close(g, w);
    }
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "element {i}: {g} vs {w}");
    }
}

#[wasm_bindgen_test]
async fn webgpu_device_is_created_and_self_tested_without_blocking() {
    let dev = gpu().await;
    let Device::Gpu(ctx) = &dev else { panic!("not a GPU device") };
    let report = ctx.self_test().expect("the self-test ran at creation");
    assert!(report.failure.is_none(), "{report:?}");
    // the shared context: later calls return it without waiting
    assert_eq!(Device::gpu().unwrap(), dev);
    let again = ctx.run_self_test_async().await;
    assert!(again.failure.is_none() && !again.passed.is_empty(), "{again:?}");
}

#[wasm_bindgen_test]
async fn convolution_and_its_gradients_match_the_cpu() {
    let gpu = gpu().await;
    let run = |dev: Device| async move {
        let x = Tensor::from_vec(seq(2 * 3 * 9 * 7, 2.0), [2, 3, 9, 7], &dev)?.requires_grad_();
        let w = Tensor::from_vec(seq(4 * 3 * 3 * 3, 1.0), [4, 3, 3, 3], &dev)?.requires_grad_();
        let y = conv2d(&x, &w, None, &Conv2dOptions::new().stride(2).padding(1))?.relu()?;
        values_and_grads(&y, &[&x, &w]).await
    };
    all_close(&run(gpu).await.unwrap(), &run(Device::Cpu).await.unwrap());
}

#[wasm_bindgen_test]
async fn tensors_past_a_binding_are_split_as_natively() {
    // bindings of 4 KiB (1,024 elements): the input, the output and the weight gradient's
    // operands are stored in parts
    let opts = GpuOptions { max_storage_binding: Some(4096), ..Default::default() };
    let split = Device::gpu_with_async(opts).await.unwrap();
    let Device::Gpu(ctx) = &split else { panic!("not a GPU device") };
    assert_eq!(ctx.limits().max_storage_buffer_binding_size, 4096);
    let run = |dev: Device| async move {
        let x = Tensor::from_vec(seq(3 * 4 * 20 * 20, 2.0), [3, 4, 20, 20], &dev)?.requires_grad_();
        let w = Tensor::from_vec(seq(6 * 4 * 3 * 3, 1.0), [6, 4, 3, 3], &dev)?.requires_grad_();
        let y = conv2d(&x, &w, None, &Conv2dOptions::new().padding(1))?;
        let y = max_pool2d(&y, &MaxPool2dOptions::new(2))?;
        values_and_grads(&y, &[&x, &w]).await
    };
    let (got, want) = (run(split).await.unwrap(), run(Device::Cpu).await.unwrap());
    assert!(want[0].len() > 1024 && want[1].len() > 1024, "nothing past one binding");
    all_close(&got, &want);
}

#[wasm_bindgen_test]
async fn blocking_calls_are_typed_errors_in_the_page() {
    let dev = gpu().await;
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3], &dev).unwrap().mul_scalar(2.0).unwrap();
    assert_eq!(t.to_vec(), Err(Error::WouldBlock { op: "to_vec" }));
    assert_eq!(dev.sync(), Err(Error::WouldBlock { op: "sync" }));
    assert!(matches!(Device::gpu_with(GpuOptions::default()), Err(Error::WouldBlock { .. })));
    // the async forms answer
    dev.sync_async().await.unwrap();
    assert_eq!(t.to_vec_async().await.unwrap(), vec![2.0, 4.0, 6.0]);
    assert_eq!(t.sum_all().unwrap().to_scalar_async().await.unwrap(), 12.0);
    // CPU tensors still read at once
    assert_eq!(Tensor::from_vec(vec![5.0], [1], &Device::Cpu).unwrap().to_vec().unwrap(), [5.0]);
}

#[wasm_bindgen_test]
async fn bad_input_is_an_err_naming_the_op() {
    let dev = gpu().await;
    let a = Tensor::zeros([2, 3], &dev).unwrap();
    let b = Tensor::zeros([4, 5], &dev).unwrap();
    assert!(matches!(a.matmul(&b), Err(Error::Invalid { op: "matmul", .. })));
}

#[wasm_bindgen_test]
async fn a_device_error_is_the_next_readbacks_err() {
    let dev = Device::gpu_with_async(Default::default()).await.unwrap();
    let t = Tensor::from_vec(vec![1.0, 2.0], [2], &dev).unwrap();
    testing::raise_device_error(&dev).unwrap();
    let e = t.to_vec_async().await.unwrap_err();
    assert!(matches!(&e, Error::Gpu(m) if m.contains("device error hook")), "{e}");
    // reported once: the device goes on working
    assert_eq!(t.to_vec_async().await.unwrap(), vec![1.0, 2.0]);
}

#[wasm_bindgen_test]
async fn a_lost_device_is_an_err() {
    let dev = Device::gpu_with_async(Default::default()).await.unwrap();
    let t = Tensor::from_vec(vec![1.0], [1], &dev).unwrap();
    testing::lose_device(&dev);
    assert!(matches!(t.to_vec_async().await, Err(Error::DeviceLost(_))));
    assert!(matches!(dev.sync_async().await, Err(Error::DeviceLost(_))));
}

#[wasm_bindgen_test]
async fn shadow_mode_checks_every_op_at_the_next_readback() {
    let opts = || GpuOptions { check: true, ..Default::default() };
    let conv = |dev: &Device| {
        let x = Tensor::from_vec(seq(2 * 3 * 9 * 7, 2.0), [2, 3, 9, 7], dev)?;
        let w = Tensor::from_vec(seq(4 * 3 * 3 * 3, 1.0), [4, 3, 3, 3], dev)?;
        let y = conv2d(&x, &w, None, &Conv2dOptions::new().padding(1))?;
        max_pool2d(&y, &MaxPool2dOptions::new(2))
    };
    let checked = Device::gpu_with_async(opts()).await.unwrap();
    let got = conv(&checked).unwrap().to_vec_async().await.unwrap();
    close(&got, &conv(&Device::Cpu).unwrap().to_vec().unwrap());
    // a driver that gets the convolution wrong: the op records, the readback refuses
    let faulty = testing::gpu_with_faults_async(opts(), None, Some("conv2d")).await.unwrap();
    let y = conv(&faulty).expect("the comparison waits for the readback");
    let e = y.to_vec_async().await.unwrap_err();
    assert!(matches!(&e, Error::ShadowMismatch { op: "conv2d", .. }), "{e}");
}

#[wasm_bindgen_test]
async fn the_edge_kernel_is_learned_back_on_both_devices() {
    for name in ["gpu", "cpu"] {
        let json = convshade_web::edge_demo(name.into()).await.unwrap_or_else(|_| panic!("{name}"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let k: Vec<f64> = serde_json::from_value(v["kernel"].clone()).unwrap();
        assert!((k[0] - 1.0).abs() < 0.1 && (k[1] + 1.0).abs() < 0.1, "{name}: {k:?}");
        let corr: Vec<f64> = serde_json::from_value(v["corr2d"].clone()).unwrap();
        assert_eq!(corr, [19.0, 25.0, 37.0, 43.0], "{name}");
    }
}
