//! GPU out-of-memory, forced through the device memory limit (`GpuOptions::memory_limit`): an
//! allocation past it is an `Err` naming the op, what was held still computes, the process goes
//! on, and a new device works. (A driver's own allocation failure cannot be forced safely on a
//! software adapter: lavapipe writes through the failed mapping and crashes, which is why
//! software adapters get a limit by default.)

mod common;

use convshade::gpu::GpuOptions;
use convshade::{Device, Error, Tensor};

const MIB: u64 = 1 << 20;

fn limited(limit: u64) -> Option<Device> {
    common::gpu()?;
    Some(Device::gpu_with(GpuOptions { memory_limit: Some(limit), ..Default::default() }).unwrap())
}

#[test]
fn out_of_memory_is_an_err_and_the_process_goes_on() {
    let Some(dev) = limited(64 * MIB) else { return };
    // 16 MiB tensors: the fifth cannot fit beside four
    let mut held = Vec::new();
    let err = loop {
        match Tensor::full([4 << 20], 2.0, &dev) {
            Ok(t) => held.push(t),
            Err(e) => break e,
        }
        assert!(held.len() < 8, "nothing was refused under a 64 MiB limit");
    };
    let Error::OutOfMemory { op: "full", msg } = &err else {
        panic!("not an out-of-memory error: {err}");
    };
    assert!(
        msg.starts_with("16777216 more bytes would pass the device memory limit of 67108864 bytes"),
        "{err}"
    );
    assert_eq!(held.len(), 4, "four 16 MiB tensors fit in 64 MiB");
    // what was allocated before the failure still computes (its sum needs a little memory:
    // give one tensor back first)
    held.pop();
    let s = held[0].sum_all().unwrap().to_scalar().unwrap();
    assert_eq!(s, 2.0 * (4 << 20) as f32);
    // an op whose output cannot fit is refused the same way: the first product takes the
    // freed 16 MiB, the second has none
    let three = held[0].mul_scalar(3.0).unwrap();
    let e = three.mul_scalar(2.0).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    drop(held);
    assert_eq!(three.max_axis(0, false).unwrap().to_scalar().unwrap(), 6.0);
    drop(three);
    // the same device computes again, reusing what was freed
    let x = Tensor::full([4 << 20], 1.5, &dev).unwrap();
    let y = x.mul_scalar(2.0).unwrap().sum_all().unwrap();
    assert_eq!(y.to_scalar().unwrap(), 3.0 * (4 << 20) as f32);
    drop((x, y, dev));
    // and a new device works
    let dev = Device::gpu().unwrap();
    let z = Tensor::from_vec(vec![4.0, 5.0], [2], &dev).unwrap();
    assert_eq!(z.sum_all().unwrap().to_scalar().unwrap(), 9.0);
}

#[test]
fn idle_pooled_buffers_are_freed_before_an_allocation_is_refused() {
    let Some(dev) = limited(64 * MIB) else { return };
    // three 16 MiB tensors freed: the pool keeps 48 MiB idle
    let three: Vec<Tensor> = (0..3).map(|_| Tensor::full([4 << 20], 1.0, &dev).unwrap()).collect();
    drop(three);
    // 40 MiB, another size class: fits only once the idle buffers go
    let big = Tensor::full([10 << 20], 1.0, &dev).unwrap();
    assert_eq!(big.sum_all().unwrap().to_scalar().unwrap(), (10 << 20) as f32);
}

#[test]
fn a_software_adapter_gets_a_memory_limit_by_default() {
    let Some(dev) = common::gpu() else { return };
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    if ctx.adapter().is_software {
        let limit = ctx.memory_limit().expect("a limit on a software adapter");
        assert!(limit > 64 * MIB, "{limit}");
    } else {
        assert_eq!(ctx.memory_limit(), None);
    }
}
