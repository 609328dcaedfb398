//! How device errors come back to the caller: wgpu error scopes around device calls (kept per
//! thread, so an error reaches the call that raised it), the errors raised outside any scope,
//! the device-lost flag, and the GL serial lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{lock, GpuContext};
use crate::{Error, Result};

/// An error wgpu raised outside any scope: out of memory, or anything else.
enum Raised {
    OutOfMemory(String),
    Other(String),
}

/// The error state of one device.
pub(super) struct ErrorState {
    raised: Arc<Mutex<Vec<Raised>>>,
    lost: Arc<AtomicBool>,
    /// Why the device was lost, once it was.
    lost_why: Arc<Mutex<String>>,
    /// Serializes every device call on GL, whose driver context wgpu guards with a lock that
    /// panics after a few seconds of contention (a long llvmpipe wait in one thread would make
    /// another thread's allocation abort).
    gl_serial: Option<Mutex<()>>,
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

    fn check_lost(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::DeviceLost(lock(&self.lost_why).clone()));
        }
        Ok(())
    }
}

impl GpuContext {
    /// The GL serial lock, where the backend is GL.
    pub(crate) fn serial(&self) -> Option<MutexGuard<'_, ()>> {
        self.errors.gl_serial.as_ref().map(lock)
    }

    /// Turns the errors wgpu raised outside any error scope (from any thread) since the last
    /// check into an `Err`, and reports a lost device.
    pub(crate) fn check(&self) -> Result<()> {
        self.errors.check_lost()?;
        let raised: Vec<Raised> = std::mem::take(&mut *lock(&self.errors.raised));
        let oom = raised.iter().find_map(|r| match r {
            Raised::OutOfMemory(m) => Some(m.clone()),
            Raised::Other(_) => None,
        });
        if let Some(msg) = oom {
            return Err(Error::OutOfMemory { op: "gpu", msg });
        }
        match raised.is_empty() {
            true => Ok(()),
            false => Err(Error::Gpu(
                raised
                    .iter()
                    .map(|r| match r {
                        Raised::OutOfMemory(m) | Raised::Other(m) => m.as_str(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// Marks the device lost (the test hook destroys it first).
    pub(crate) fn mark_lost(&self) {
        *lock(&self.errors.lost_why) = "destroyed".into();
        self.errors.lost.store(true, Ordering::SeqCst);
    }

    /// Runs device calls of `op` inside error scopes, which wgpu keeps per thread: the errors
    /// they raise come back to this caller alone, never to another thread's call.
    pub(crate) fn scoped<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> (T, Result<()>) {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let [validation, oom, internal] =
            [validation.pop(), oom.pop(), internal.pop()].map(pollster::block_on);
        let status = if let Some(e) = oom {
            Err(Error::OutOfMemory { op, msg: e.to_string() })
        } else {
            let errors: Vec<String> =
                [validation, internal].into_iter().flatten().map(|e| e.to_string()).collect();
            match errors.is_empty() {
                true => self.errors.check_lost(),
                false => Err(Error::Gpu(format!("{op}: {}", errors.join("; ")))),
            }
        };
        (out, status)
    }
}
