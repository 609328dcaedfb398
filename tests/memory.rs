//! A training loop on the GPU creates no buffer after its warm-up, and host memory stays flat.
//! Alone in its process: resident memory is the whole process's, so no other test may run
//! beside it.

mod common;

use common::{gpu, train_small_cnn};
use convshade::Device;

/// Resident host memory in bytes (Linux), or None.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn a_training_loop_creates_no_buffer_after_warm_up_and_keeps_host_memory_flat() {
    if gpu().is_none() {
        return;
    }
    // a context of its own: the other tests of this file run beside it
    let dev = Device::gpu_with(Default::default()).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    // warm-up: the pool fills, staging buffers for the readbacks included
    train_small_cnn(&dev, 4, 3);
    let before = ctx.pool_stats();
    let rss_before = resident_bytes();
    // RELIABILITY_STEPS=1000 for the long run
    let steps = std::env::var("RELIABILITY_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    train_small_cnn(&dev, steps, 3);
    let after = ctx.pool_stats();
    assert_eq!(after.created, before.created, "{after:?} after {before:?}");
    assert!(after.reused > before.reused, "the loop did allocate, from the pool");
    if let (Some(a), Some(b)) = (rss_before, resident_bytes()) {
        // a leaked batch of images per step alone would be 40 * 2 KiB; a leaked pooled
        // buffer or mapping far more
        let grown = b.saturating_sub(a);
        eprintln!("{steps} steps: {after:?} after {before:?}; host memory grew by {grown} bytes");
        assert!(grown < 8 << 20, "host memory grew by {grown} bytes");
    }
}
