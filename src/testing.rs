//! Test hooks: faults injected on purpose, to prove the refusal, mismatch and device-loss
//! paths, and the direct-loop convolution oracle. Hidden from the documentation and not part of
//! the API: they may change in any release.

use crate::gpu::runtime::Faults;
use crate::gpu::{GpuContext, GpuOptions};
use crate::{Device, Result};

pub use crate::cpu::oracle::conv2d_direct;

/// A new GPU device whose self-test canary `self_test` (`loop`, `barrier`, `grid2`, `grid3`,
/// `offset`) reads a corrupted result, or whose shadow check of op `op` sees a corrupted GPU
/// result.
pub fn gpu_with_faults(
    opts: GpuOptions, self_test: Option<&'static str>, op: Option<&'static str>,
) -> Result<Device> {
    let faults = Faults { self_test, op };
    Ok(Device::Gpu(GpuContext::with_faults(opts, faults)?))
}

/// [`gpu_with_faults`] as a future, which a web page awaits.
pub async fn gpu_with_faults_async(
    opts: GpuOptions, self_test: Option<&'static str>, op: Option<&'static str>,
) -> Result<Device> {
    let faults = Faults { self_test, op };
    Ok(Device::Gpu(GpuContext::create(opts, faults).await?))
}

/// [`Device::auto_with`] over [`gpu_with_faults`].
pub fn auto_with_faults(opts: GpuOptions, self_test: Option<&'static str>) -> Device {
    Device::auto_from(gpu_with_faults(opts, self_test, None))
}

/// Destroys a GPU device, as a driver reset or an unplugged GPU would lose it: every later
/// call on it is an `Err`; a new device works. Nothing happens on the CPU.
pub fn lose_device(dev: &Device) {
    if let Device::Gpu(ctx) = dev {
        ctx.lose_device();
    }
}

/// Makes a device call wgpu rejects (a mappable storage buffer), inside error scopes as every
/// launch is, as a bug in a kernel's launch would: natively its `Err` (a `Gpu` error naming
/// `device error hook`) is returned at once; in a web page, where a scope's answer comes later,
/// the next readback or `sync_async` returns it. Nothing happens on the CPU.
pub fn raise_device_error(dev: &Device) -> Result<()> {
    match dev {
        Device::Gpu(ctx) => ctx.raise_device_error(),
        Device::Cpu => Ok(()),
    }
}
