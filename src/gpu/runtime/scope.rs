//! Device errors as `Err`s: the error scopes around device calls, the errors raised outside any
//! scope, the lost device; and the GL serial lock that device calls take.

use std::sync::{Arc, MutexGuard};

use super::context::GpuContext;
use super::lock::lock;
use super::memory::GpuBuffer;
use crate::{Error, Result};

/// A check deferred to the next readback: its verdict on the host copies of its buffers.
pub(crate) type Verdict = Box<dyn FnOnce(&[Vec<f32>]) -> Result<()> + Send>;

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

    /// The test hook behind `testing::raise_device_error`.
    pub(crate) fn raise_device_error(&self) -> Result<()> {
        let _serial = self.serial();
        let bad = wgpu::BufferDescriptor {
            label: Some("device error hook"),
            // a mappable buffer may only be a copy's destination: a validation error
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        };
        self.scoped("device error hook", || self.device.create_buffer(&bad)).1
    }

    /// Runs device calls of `op` inside error scopes, which wgpu keeps per thread: the errors
    /// they raise come back to this caller alone, never to another thread's call. In the
    /// browser, where nothing may block, a scope's answer comes later: its errors are the next
    /// readback's `Err` ([`GpuContext::settle`]).
    pub(crate) fn scoped<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> (T, Result<()>) {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let pops = [validation.pop(), oom.pop(), internal.pop()];
        #[cfg(not(target_arch = "wasm32"))]
        let status = {
            let [validation, oom, internal] = pops.map(pollster::block_on);
            self.scope_status(op, validation, oom, internal)
        };
        #[cfg(target_arch = "wasm32")]
        let status = {
            let pops = pops.map(|p| Box::pin(p) as super::errors::ScopePop);
            lock(&self.errors.deferred).push((op, pops));
            self.errors.check_lost()
        };
        (out, status)
    }

    /// The `Err` of one call's scopes: out of memory first, then validation and internal errors.
    fn scope_status(
        &self, op: &'static str, validation: Option<wgpu::Error>, oom: Option<wgpu::Error>,
        internal: Option<wgpu::Error>,
    ) -> Result<()> {
        if let Some(e) = oom {
            return Err(Error::OutOfMemory { op, msg: e.to_string() });
        }
        let errors: Vec<String> =
            [validation, internal].into_iter().flatten().map(|e| e.to_string()).collect();
        match errors.is_empty() {
            true => self.errors.check_lost(),
            false => Err(Error::Gpu(format!("{op}: {}", errors.join("; ")))),
        }
    }

    /// Every error so far as an `Err`: natively [`GpuContext::check`]; in the browser it first
    /// awaits the answers of the scopes popped since the last call (an out-of-memory error
    /// first, else every failing call's errors in the order of the calls), and afterwards runs
    /// the checks deferred since (shadow mode's comparisons).
    pub(crate) async fn settle(&self) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        {
            let pending = std::mem::take(&mut *lock(&self.errors.deferred));
            let mut failed = Vec::new();
            for (op, [validation, oom, internal]) in pending {
                let status = self.scope_status(op, validation.await, oom.await, internal.await);
                match status {
                    Err(e @ Error::OutOfMemory { .. }) => return Err(e),
                    Err(Error::Gpu(msg)) => failed.push(msg),
                    Err(e) => failed.push(e.to_string()),
                    Ok(()) => {}
                }
            }
            if !failed.is_empty() {
                return Err(Error::Gpu(failed.join("; ")));
            }
        }
        self.check()?;
        let checks = std::mem::take(&mut *lock(&self.checks));
        for (bufs, verdict) in checks {
            let mut host = Vec::with_capacity(bufs.len());
            for b in &bufs {
                // boxed: a readback settles too
                host.push(Box::pin(self.read_async(b)).await?);
            }
            verdict(&host)?;
        }
        Ok(())
    }

    /// Keeps copies of `bufs` (copied on the device, so later writes cannot change them) and
    /// `verdict`, which the next readback runs on their host copies, in order.
    pub(crate) fn defer_check(
        self: &Arc<Self>, bufs: &[&GpuBuffer], verdict: Verdict,
    ) -> Result<()> {
        let mut copies = Vec::with_capacity(bufs.len());
        for b in bufs {
            let copy = self.alloc_any(b.len, "shadow")?;
            self.copy_range((b, 0), (&copy, 0), b.len)?;
            copies.push(copy);
        }
        lock(&self.checks).push((copies, verdict));
        Ok(())
    }
}
