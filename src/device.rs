//! Where tensors live: the CPU backend, or one GPU context shared by every clone of the device.

use std::sync::{Arc, OnceLock};

use crate::gpu::GpuContext;
use crate::{Error, Result};

/// A compute device. Cloning is cheap; a GPU device may be used from several threads.
#[derive(Clone)]
pub enum Device {
    /// The CPU backend (plain loops, rayon, the `gemm` crate).
    Cpu,
    /// A wgpu adapter.
    Gpu(Arc<GpuContext>),
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

static GPU: OnceLock<Result<Arc<GpuContext>>> = OnceLock::new();

impl Device {
    /// The CPU backend.
    pub fn cpu() -> Device {
        Device::Cpu
    }

    /// The process-wide GPU context on the best adapter wgpu finds (hardware first; honours
    /// `WGPU_BACKEND`). Software adapters count: use [`Device::auto`] to avoid them.
    /// In a web page the first call must be [`Device::gpu_async`]'s: creating a device waits.
    pub fn gpu() -> Result<Device> {
        if cfg!(target_arch = "wasm32") && GPU.get().is_none() {
            return Err(Error::WouldBlock { op: "Device::gpu" });
        }
        match GPU.get_or_init(GpuContext::new) {
            Ok(ctx) => Ok(Device::Gpu(ctx.clone())),
            Err(e) => Err(e.clone()),
        }
    }

    /// [`Device::gpu`] as a future, which a web page awaits: the first call creates the
    /// process-wide context (later [`Device::gpu`] calls return it without waiting).
    pub async fn gpu_async() -> Result<Device> {
        let ctx = match GPU.get() {
            Some(ctx) => ctx,
            None => {
                let made = GpuContext::new_async().await;
                // a concurrent first call may have set it meanwhile: the first one set stands
                GPU.get_or_init(|| made)
            }
        };
        match ctx {
            Ok(ctx) => Ok(Device::Gpu(ctx.clone())),
            Err(e) => Err(e.clone()),
        }
    }

    /// A new GPU context (not the shared one) with the given options.
    pub fn gpu_with(opts: crate::gpu::GpuOptions) -> Result<Device> {
        Ok(Device::Gpu(GpuContext::with_options(opts)?))
    }

    /// [`Device::gpu_with`] as a future.
    pub async fn gpu_with_async(opts: crate::gpu::GpuOptions) -> Result<Device> {
        Ok(Device::Gpu(GpuContext::with_options_async(opts).await?))
    }

    /// A hardware GPU when there is one, else the CPU backend, saying which on stderr. A software
    /// adapter (lavapipe, llvmpipe) runs WGSL far slower than the CPU backend, so it is never
    /// chosen; nor is an adapter that fails the self-test.
    pub fn auto() -> Device {
        Device::auto_from(Device::gpu())
    }

    /// [`Device::auto`] as a future, which a web page awaits.
    pub async fn auto_async() -> Device {
        Device::auto_from(Device::gpu_async().await)
    }

    /// [`Device::auto`] over a new context with the given options.
    pub fn auto_with(opts: crate::gpu::GpuOptions) -> Device {
        Device::auto_from(Device::gpu_with(opts))
    }

    pub(crate) fn auto_from(gpu: Result<Device>) -> Device {
        match gpu {
            Ok(Device::Gpu(ctx)) if !ctx.adapter().is_software => {
                eprintln!(
                    "convshade: using GPU {} ({})",
                    ctx.adapter().name,
                    ctx.adapter().backend
                );
                Device::Gpu(ctx)
            }
            Ok(Device::Gpu(ctx)) => {
                eprintln!(
                    "convshade: using CPU: the only adapter, {} ({}), is a software rasterizer, slower than the CPU backend",
                    ctx.adapter().name,
                    ctx.adapter().backend
                );
                Device::Cpu
            }
            Ok(Device::Cpu) => Device::Cpu,
            Err(e) => {
                eprintln!("convshade: using CPU: {e}");
                Device::Cpu
            }
        }
    }

    /// The device named by `CONVSHADE_DEVICE` (`cpu`, `gpu` or `auto`; unset means `auto`).
    pub fn from_env() -> Result<Device> {
        match std::env::var("CONVSHADE_DEVICE") {
            Ok(v) => Device::from_name(&v),
            Err(_) => Ok(Device::auto()),
        }
    }

    /// `cpu`, `gpu` or `auto`.
    pub fn from_name(name: &str) -> Result<Device> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Device::gpu(),
            "auto" | "" => Ok(Device::auto()),
            other => Err(Error::Invalid {
                op: "device",
                msg: format!("unknown device {other:?}; expected cpu, gpu or auto"),
            }),
        }
    }

    /// Whether this is a GPU device.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// `cpu`, or `gpu (adapter name, backend)`.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Gpu(ctx) => format!("gpu ({}, {})", ctx.adapter().name, ctx.adapter().backend),
        }
    }

    /// Waits until all recorded work has finished (a no-op on the CPU). Benchmarks call it
    /// before reading the clock.
    pub fn sync(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.sync(),
        }
    }

    /// [`Device::sync`] as a future, which a web page awaits: it resolves when the work
    /// recorded so far has finished, with the first error it raised.
    pub async fn sync_async(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.sync_async().await,
        }
    }
}
