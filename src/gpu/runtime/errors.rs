//! What the device's callbacks report: errors raised outside any error scope, and why the
//! device was lost, once it was.

use std::sync::{Arc, Mutex};

use super::lock::lock;
use crate::{Error, Result};

/// A scope's pop: the browser answers it later.
#[cfg(target_arch = "wasm32")]
pub(super) type ScopePop =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>> + Send>>;

/// The error state of one device.
pub(crate) struct ErrorState {
    /// Errors raised outside any scope, each with whether it was an out-of-memory error.
    pub(super) raised: Arc<Mutex<Vec<(bool, String)>>>,
    /// Why the device was lost, once it was.
    pub(super) lost: Arc<Mutex<Option<String>>>,
    /// In the browser, the error scopes popped but not yet answered, with the op of each
    /// (validation, out-of-memory and internal): the next readback awaits them.
    #[cfg(target_arch = "wasm32")]
    pub(super) deferred: Mutex<Vec<(&'static str, [ScopePop; 3])>>,
}

impl ErrorState {
    /// Hooks the device's uncaptured-error and device-lost callbacks.
    pub(super) fn new(device: &wgpu::Device) -> Self {
        let raised = Arc::new(Mutex::new(Vec::new()));
        let sink = raised.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let oom = matches!(e, wgpu::Error::OutOfMemory { .. });
            lock(&sink).push((oom, e.to_string()));
        }));
        let lost = Arc::new(Mutex::new(None));
        let why = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lock(&why) = Some(format!("{reason:?}: {msg}"));
        });
        ErrorState {
            raised,
            lost,
            #[cfg(target_arch = "wasm32")]
            deferred: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn check_lost(&self) -> Result<()> {
        match &*lock(&self.lost) {
            Some(why) => Err(Error::DeviceLost(why.clone())),
            None => Ok(()),
        }
    }
}
