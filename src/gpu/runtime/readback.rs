//! Moving results: buffer-to-buffer copies across a tensor's parts (the split paths'), waiting
//! for the device, and reading a buffer back to the host, blocking or as a future.

use std::future::Future;

use super::context::GpuContext;
use super::lock::lock;
use super::memory::GpuBuffer;
use crate::{Error, Result};

impl GpuContext {
    /// Records a copy of `len` elements from `src[src_at..]` to `dst[dst_at..]`, across the parts
    /// of either (the split paths' way of moving pieces).
    pub(crate) fn copy_range(
        &self, (src, src_at): (&GpuBuffer, usize), (dst, dst_at): (&GpuBuffer, usize), len: usize,
    ) -> Result<()> {
        let _serial = self.serial();
        let mut pending = lock(&self.batch.pending);
        let (srcs, dsts) = (src.pieces(), dst.pieces());
        let mut done = 0;
        while done < len {
            let (s, s0) = piece_at(&srcs, src_at + done);
            let (d, d0) = piece_at(&dsts, dst_at + done);
            let (s_off, d_off) = (src_at + done - s0, dst_at + done - d0);
            let n = (len - done).min(s.len - s_off).min(d.len - d_off);
            self.ensure_valid(s)?;
            let (Some(s_raw), Some(d_raw)) = (s.raw(), d.raw()) else {
                return Err(Error::Gpu("copy_range: a piece in parts".into()));
            };
            let epoch = pending.epoch;
            let bytes = |e: usize| (e * 4) as u64;
            pending.encoder(&self.device).copy_buffer_to_buffer(
                s_raw,
                bytes(s_off),
                d_raw,
                bytes(d_off),
                bytes(n),
            );
            d.set_epoch(epoch);
            self.count_op(&mut pending)?;
            done += n;
        }
        Ok(())
    }

    /// Submits pending work and waits until the device has finished it (in a web page, an
    /// `Err`: await [`GpuContext::sync_async`] there).
    pub fn sync(&self) -> Result<()> {
        block_on("sync", self.sync_async())
    }

    /// [`GpuContext::sync`] as a future, which a web page awaits: it resolves once the device
    /// has finished the work submitted so far, with every error that work raised.
    pub async fn sync_async(&self) -> Result<()> {
        {
            let _serial = self.serial();
            self.submit_locked(&mut lock(&self.batch.pending))?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _serial = self.serial();
            self.poll()?;
        }
        #[cfg(target_arch = "wasm32")]
        {
            let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
            self.queue.on_submitted_work_done(move || {
                let _ = tx.send(());
            });
            rx.receive().await;
        }
        self.settle().await
    }

    fn poll(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))
    }

    /// Copies a buffer back to the host (submits pending work first); in a web page an `Err`
    /// (await [`GpuContext::read_async`] there).
    pub(crate) fn read(&self, buf: &GpuBuffer) -> Result<Vec<f32>> {
        block_on("read", self.read_async(buf))
    }

    /// [`GpuContext::read`] as a future: the copy is recorded and submitted at once, and the
    /// future resolves when the mapped staging buffer is ready. Native callers block on it
    /// (`read`); where nothing may block (a browser), the caller awaits it while the device
    /// is polled by its host.
    pub(crate) async fn read_async(&self, buf: &GpuBuffer) -> Result<Vec<f32>> {
        if buf.is_split() {
            let mut out = Vec::new();
            out.try_reserve_exact(buf.len).map_err(|_| Error::OutOfMemory {
                op: "read",
                msg: format!("no host memory for {} elements", buf.len),
            })?;
            for (part, _) in buf.pieces() {
                out.extend(Box::pin(self.read_async(part)).await?);
            }
            return Ok(out);
        }
        let bytes = (buf.len * 4) as u64;
        let Some(raw) = buf.raw().filter(|_| bytes > 0) else {
            // an empty tensor: nothing to copy, but the work before it still reports its errors
            self.sync_async().await?;
            return self.ensure_valid(buf).map(|_| Vec::new());
        };
        let staging = {
            let _serial = self.serial();
            let staging = self.take_staging(bytes)?;
            let mut pending = lock(&self.batch.pending);
            // The copy joins the pending batch, so a failure of that batch fails the read.
            pending.encoder(&self.device).copy_buffer_to_buffer(raw, 0, &staging, 0, bytes);
            self.submit_locked(&mut pending)?;
            staging
        };
        self.ensure_valid(buf)?;
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        {
            let _serial = self.serial();
            self.poll()?;
        }
        match rx.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Gpu(format!("map_async: {e}"))),
            None => return Err(Error::Gpu("map_async callback dropped".into())),
        }
        let _serial = self.serial();
        let out = {
            let view = staging
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.give_staging(staging);
        self.settle().await?;
        Ok(out)
    }
}

/// Waits for `work`, the blocking form of call `op`; in a web page, whose one thread may not
/// wait (the device answers only once it yields), `Error::WouldBlock` naming `op` instead.
pub(crate) fn block_on<T>(op: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
    if cfg!(target_arch = "wasm32") {
        return Err(Error::WouldBlock { op });
    }
    pollster::block_on(work)
}

/// The piece holding element `at`, and the index its first element has.
fn piece_at<'a>(pieces: &[(&'a GpuBuffer, usize)], at: usize) -> (&'a GpuBuffer, usize) {
    let i = pieces.partition_point(|&(_, start)| start <= at) - 1;
    pieces[i]
}
