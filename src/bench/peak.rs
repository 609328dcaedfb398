//! Attainable f32 FLOP/s: an FMA loop on every core with the widest SIMD the CPU has, and a
//! WGSL FMA kernel on an adapter. Results are read as a fraction of these.

use std::hint::black_box;
use web_time::{Duration, Instant};

use crate::{Device, Result};

/// Logical cores (the threads the peak loop runs on).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The widest SIMD the peak loop uses here.
pub fn simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// FLOPs of one call of [`fma_loop`] with `iters` iterations.
fn loop_flops(iters: u64) -> f64 {
    let (lanes, chains) = lanes_and_chains();
    2.0 * (lanes * chains) as f64 * iters as f64
}

fn lanes_and_chains() -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    match simd() {
        "avx512f" => return (16, x86::CHAINS_512),
        "avx2+fma" => return (8, x86::CHAINS_256),
        _ => {}
    }
    (1, portable::CHAINS)
}

/// `iters` rounds of independent FMA chains (enough to hide the FMA latency); returns a value
/// that depends on all of them, so nothing is optimized away.
fn fma_loop(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each kernel runs only where its feature was detected.
        match simd() {
            "avx512f" => return unsafe { x86::fma512(iters) },
            "avx2+fma" => return unsafe { x86::fma256(iters) },
            _ => {}
        }
    }
    portable::fma(iters)
}

/// GFLOP/s of the FMA loop on every core at once, measured for at least `min_time`.
pub fn cpu_peak_gflops(min_time: Duration) -> f64 {
    let threads = cores();
    // size one call to about 10 ms on one core
    let mut iters = 1u64 << 16;
    loop {
        let t0 = Instant::now();
        black_box(fma_loop(black_box(iters)));
        if t0.elapsed() >= Duration::from_millis(10) || iters >= 1 << 34 {
            break;
        }
        iters *= 2;
    }
    let mut best = 0.0f64;
    let start = Instant::now();
    while start.elapsed() < min_time || best == 0.0 {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| black_box(fma_loop(black_box(iters))));
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        best = best.max(threads as f64 * loop_flops(iters) / secs / 1e9);
    }
    best
}

/// Host copy bandwidth in GB/s, bytes read plus bytes written: every core copies its share of a
/// 64 MiB buffer (past the caches) into another, the best of repeats over at least `min_time`.
pub fn cpu_copy_gbps(min_time: Duration) -> f64 {
    const LEN: usize = 16 << 20; // f32s
    let src = vec![1.0f32; LEN];
    let mut dst = vec![0.0f32; LEN]; // both written once, so no page is first touched in timing
    let share = LEN.div_ceil(cores());
    let mut best = 0.0f64;
    let start = Instant::now();
    while start.elapsed() < min_time || best == 0.0 {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for (d, from) in dst.chunks_mut(share).zip(src.chunks(share)) {
                s.spawn(move || d.copy_from_slice(black_box(from)));
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        best = best.max(2.0 * 4.0 * LEN as f64 / secs / 1e9);
    }
    black_box(&dst);
    best
}

/// GFLOP/s of a WGSL FMA kernel on `dev`'s adapter; `None` on the CPU device.
pub fn gpu_peak_gflops(dev: &Device, min_time: Duration) -> Result<Option<f64>> {
    match dev {
        Device::Gpu(ctx) => crate::gpu::fma_peak_gflops(ctx, min_time).map(Some),
        Device::Cpu => Ok(None),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    pub(super) const CHAINS_512: usize = 16;
    pub(super) const CHAINS_256: usize = 12;

    /// An FMA kernel over one vector type: `chains` accumulators of `lanes` f32 each.
    macro_rules! fma_kernel {
        ($name:ident, $feature:literal, $chains:expr, $lanes:literal,
         $set1:ident, $fmadd:ident, $add:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(iters: u64) -> f32 {
                // inputs the compiler cannot see, so the chains cannot be folded
                let m = $set1(black_box(0.999_999));
                let c = $set1(black_box(1e-6));
                let mut acc = [$set1(black_box(0.5)); $chains];
                for _ in 0..iters {
                    for a in &mut acc {
                        *a = $fmadd(*a, m, c);
                    }
                }
                let mut sum = acc[0];
                for a in &acc[1..] {
                    sum = $add(sum, *a);
                }
                let lanes: [f32; $lanes] = std::mem::transmute(sum);
                lanes.iter().sum()
            }
        };
    }

    fma_kernel!(fma512, "avx512f", CHAINS_512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
    fma_kernel!(fma256, "avx2,fma", CHAINS_256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
}

/// Where no SIMD kernel is written: independent `mul_add` chains the compiler may vectorize.
mod portable {
    use std::hint::black_box;

    pub(super) const CHAINS: usize = 64;

    pub(super) fn fma(iters: u64) -> f32 {
        let (m, c) = (black_box(0.999_999f32), black_box(1e-6f32));
        let mut acc = [black_box(0.5f32); CHAINS];
        for _ in 0..iters {
            for a in &mut acc {
                *a = a.mul_add(m, c);
            }
        }
        acc.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fma_loop_computes_its_chains() {
        // every chain is x -> 0.999999 x + 1e-6 from 0.5: after 3 rounds each is that map
        // applied three times; the kernel returns their sum
        let one = (0..3).fold(0.5f32, |x, _| x.mul_add(0.999_999, 1e-6));
        let (lanes, chains) = lanes_and_chains();
        let want = one * (lanes * chains) as f32;
        assert!((fma_loop(3) - want).abs() < 1e-3 * want, "{} vs {want}", fma_loop(3));
        assert_eq!(loop_flops(3), 6.0 * (lanes * chains) as f64);
    }
}
