//! Device errors as `Err`s: the error scopes around device calls, the errors raised outside any
//! scope, the lost device; and the GL serial lock that device calls take.

use std::sync::MutexGuard;

use super::context::GpuContext;
use super::lock::lock;
use crate::{Error, Result};

impl GpuContext {
    /// The GL serial lock, where the backend is GL.
    pub(crate) fn serial(&self) -> Option<MutexGuard<'_, ()>> {
        self.gl_serial.as_ref().map(lock)
    }

    /// Turns the errors wgpu raised outside any error scope (from any thread) since the last
    /// check into an `Err` (out of memory where any was), and reports a lost device.
    pub(crate) fn check(&self) -> Result<()> {
        self.errors.check_lost()?;
        let raised = std::mem::take(&mut *lock(&self.errors.raised));
        if raised.is_empty() {
            return Ok(());
        }
        let msg = raised.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
        match raised.iter().any(|(oom, _)| *oom) {
            true => Err(Error::OutOfMemory { op: "gpu", msg }),
            false => Err(Error::Gpu(msg)),
        }
    }

    /// Marks the device lost (the test hook destroys it first; the callback may come later).
    pub(crate) fn mark_lost(&self) {
        lock(&self.errors.lost).get_or_insert_with(|| "destroyed".into());
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
