//! Adapter discovery and choice.

use super::options::GpuOptions;
use crate::{Error, Result};

/// What `convshade info` and `Device::auto` need to know about an adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's name, as the driver reports it.
    pub name: String,
    /// The graphics API (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    pub backend: String,
    /// The adapter's kind (`DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...).
    pub device_type: String,
    /// The driver's name and version.
    pub driver: String,
    /// Whether it is a software adapter (device type `Cpu`: lavapipe, llvmpipe).
    pub is_software: bool,
}

impl AdapterSummary {
    pub(super) fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            // a browser may keep the adapter's name to itself
            name: match info.name.is_empty() {
                true => "unnamed adapter".into(),
                false => info.name.clone(),
            },
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            is_software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

/// All adapters wgpu finds for the backends `WGPU_BACKEND` allows.
pub fn enumerate_adapters() -> Vec<AdapterSummary> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    // none in a web page, which may not wait for them
    let found = super::block_on("enumerate_adapters", async {
        Ok(instance.enumerate_adapters(backends).await)
    });
    found.unwrap_or_default().iter().map(|a| AdapterSummary::from_info(&a.get_info())).collect()
}

fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 5,
        wgpu::DeviceType::IntegratedGpu => 4,
        wgpu::DeviceType::VirtualGpu => 3,
        wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 1,
    };
    // Native compute APIs over GL when both reach the same hardware.
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        _ => 1,
    };
    (ty, api)
}

/// The adapter `opts.adapter` names, else the best one (hardware before software, native APIs
/// before GL).
pub(super) async fn pick(opts: &GpuOptions) -> Result<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let adapters = instance.enumerate_adapters(backends).await;
    match opts.adapter {
        Some(i) => adapters.into_iter().nth(i),
        None => adapters.into_iter().max_by_key(|a| adapter_rank(&a.get_info())),
    }
    .ok_or_else(|| Error::NoAdapter(format!("wgpu found no adapter for backends {backends:?}")))
}
