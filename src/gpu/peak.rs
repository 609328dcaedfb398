//! The adapter's attainable f32 FMA rate, measured with `shaders/peak.wgsl`.

use std::sync::Arc;
use web_time::{Duration, Instant};

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuContext, WG};
use crate::Result;

kernels! { PEAK_WGSL = ("peak", include_str!("../../shaders/peak.wgsl"), &[Buffer::write("dst")]): PeakParams;
    FMA_PEAK = ("fma_peak", "bench --peak", &[Bind::Out(1)]);
}

uniform! {
    PeakParams as "Params" {
        trips: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// FMA rounds per invocation (well inside the loop budget), and FLOPs of one round: 8 vec4
/// chains of one multiply and one add per lane.
const TRIPS: u32 = 1024;
const FLOPS_PER_TRIP: f64 = 8.0 * 4.0 * 2.0;
/// Workgroups per dispatch: enough invocations to fill a large GPU.
const GROUPS: u32 = 2048;

/// GFLOP/s of the FMA kernel, over enough dispatches to run at least `min_time`.
pub(crate) fn fma_peak_gflops(ctx: &Arc<GpuContext>, min_time: Duration) -> Result<f64> {
    let trips = TRIPS.min(ctx.cap() as u32);
    let threads = GROUPS as usize * WG;
    let out = ctx.alloc(threads, "bench --peak")?;
    let p = PeakParams { trips, ..bytemuck::Zeroable::zeroed() };
    let run = |dispatches: usize| -> Result<f64> {
        let t0 = Instant::now();
        for _ in 0..dispatches {
            ctx.launch(&FMA_PEAK, &p, &[&out], [GROUPS, 1, 1])?;
        }
        ctx.sync()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    // the first dispatch compiles the pipeline and sizes the timed batch
    let once = run(1)?;
    let batch = ((min_time.as_secs_f64() / once.max(1e-6)).ceil() as usize).clamp(1, 10_000);
    let secs = run(batch)?;
    let flops = batch as f64 * threads as f64 * trips as f64 * FLOPS_PER_TRIP;
    Ok(flops / secs / 1e9)
}
