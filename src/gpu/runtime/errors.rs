//! How device errors come back to the caller: wgpu error scopes around device calls (kept per
//! thread, so an error reaches the call that raised it), the errors raised outside any scope,
//! the device-lost flag, and the GL serial lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::lock::lock;
use crate::{Error, Result};

/// An error wgpu raised outside any scope: out of memory, or anything else.
pub(super) enum Raised {
    OutOfMemory(String),
    Other(String),
}

/// The error state of one device.
pub(crate) struct ErrorState {
    pub(super) raised: Arc<Mutex<Vec<Raised>>>,
    pub(super) lost: Arc<AtomicBool>,
    /// Why the device was lost, once it was.
    pub(super) lost_why: Arc<Mutex<String>>,
    /// Serializes every device call on GL, whose driver context wgpu guards with a lock that
    /// panics after a few seconds of contention (a long llvmpipe wait in one thread would make
    /// another thread's allocation abort).
    pub(super) gl_serial: Option<Mutex<()>>,
}

impl ErrorState {
    /// Hooks the device's uncaptured-error and device-lost callbacks.
    pub(super) fn new(device: &wgpu::Device, gl: bool) -> Self {
        let raised = Arc::new(Mutex::new(Vec::new()));
        let sink = raised.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let r = match e {
                wgpu::Error::OutOfMemory { .. } => Raised::OutOfMemory(e.to_string()),
                _ => Raised::Other(e.to_string()),
            };
            lock(&sink).push(r);
        }));
        let lost = Arc::new(AtomicBool::new(false));
        let lost_why = Arc::new(Mutex::new(String::new()));
        let (flag, why) = (lost.clone(), lost_why.clone());
        device.set_device_lost_callback(move |reason, msg| {
            *lock(&why) = format!("{reason:?}: {msg}");
            flag.store(true, Ordering::SeqCst);
        });
        ErrorState { raised, lost, lost_why, gl_serial: gl.then(|| Mutex::new(())) }
    }

    pub(super) fn check_lost(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::DeviceLost(lock(&self.lost_why).clone()));
        }
        Ok(())
    }
}
