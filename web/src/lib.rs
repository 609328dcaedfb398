//! convshade in a web page: the entry points the demo (index.html) and the verifier
//! (verify.html) call from JavaScript. Each is a promise: nothing here waits for the device,
//! and every failure rejects the promise with the engine's error message.

use convshade::{Device, Error, Result};
use wasm_bindgen::prelude::*;

mod digits;
mod edge;
mod verify;

pub use digits::{open_digits, Digits};
pub use edge::edge_demo;
pub use verify::{manifest_files, verify_case};

/// The device a page names: `gpu` (WebGPU, created on first use) or `cpu`.
pub async fn device(name: &str) -> Result<Device> {
    match name {
        "gpu" => Device::gpu_async().await,
        "cpu" => Ok(Device::Cpu),
        other => Err(Error::Invalid {
            op: "device",
            msg: format!("unknown device {other:?}; expected gpu or cpu"),
        }),
    }
}

/// The name of the device a page names, with its adapter: `gpu (SwiftShader ..., BrowserWebGpu)`.
#[wasm_bindgen]
pub async fn device_name(name: String) -> std::result::Result<String, JsError> {
    Ok(device(&name).await.map_err(js)?.name())
}

/// An engine error as the rejection of a page's promise.
pub(crate) fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}
