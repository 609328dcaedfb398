//! The adapter self-test: a few small canary dispatches, run when a context is created, each
//! compared with the same computation on the host. An adapter that fails one is refused.

use std::sync::Arc;
use web_time::Instant;

use bytemuck::Zeroable;

use super::context::{GpuContext, SelfTestReport};
use super::dispatch::Range;
use super::kernel::{kernels, Bind, Buffer, Kernel, WG};
use super::memory::GpuBuffer;
use super::uniforms::uniform;
use crate::Error;

uniform! {
    Params as "Params" {
        trips: u32,
        rounds: u32,
        n: u32,
        _pad: u32,
    }
}

const OUT: &[Bind] = &[Bind::Out(2)];

kernels! { MODULE = ("selftest", include_str!("../../../shaders/selftest.wgsl"), &[Buffer::read("src").of("u32"), Buffer::write("dst").of("u32")]): Params;
    LOOP = ("canary_loop", "self-test", OUT);
    BARRIER = ("canary_barrier", "self-test", OUT);
    GRID = ("canary_grid", "self-test", OUT);
    OFFSET = ("canary_offset", "self-test", &[Bind::In(1), Bind::Out(2)]);
}

const ROUNDS: u32 = 64;

fn bits(v: &[u32]) -> &[f32] {
    bytemuck::cast_slice(v)
}

/// Runs every canary; `fault` names one whose device result is corrupted (a test hook).
pub(super) async fn run(ctx: &Arc<GpuContext>, fault: Option<&str>) -> SelfTestReport {
    let start = Instant::now();
    let mut passed = Vec::new();
    let mut failure = None;
    let trips = ctx.limits.loop_cap;
    let checks: [(String, &str, Canary); 5] = [
        (format!("loop of {trips} iterations"), "loop", Canary::Loop),
        (format!("{ROUNDS} barrier rounds in a loop"), "barrier", Canary::Barrier),
        ("2-d grid".into(), "grid2", Canary::Grid([5, 3, 1])),
        ("3-d grid".into(), "grid3", Canary::Grid([3, 2, 2])),
        ("read at a non-zero binding offset".into(), "offset", Canary::Offset),
    ];
    for (what, key, canary) in checks {
        let outcome = canary.run(ctx).await.and_then(|(mut got, want)| {
            if fault == Some(key) {
                got[0] ^= 1;
            }
            match got.iter().zip(&want).position(|(g, w)| g != w) {
                None if got.len() == want.len() => Ok(()),
                None => Err(format!("{} values, expected {}", got.len(), want.len())),
                Some(i) => {
                    Err(format!("element {i} is {:#010x}, expected {:#010x}", got[i], want[i]))
                }
            }
        });
        match outcome {
            Ok(()) => passed.push(what),
            Err(e) => {
                failure = Some(format!("{what}: {e}"));
                break;
            }
        }
    }
    SelfTestReport { passed, failure, millis: start.elapsed().as_secs_f64() * 1e3 }
}

/// A canary's device result and the host's expected values.
type Outcome = std::result::Result<(Vec<u32>, Vec<u32>), String>;

/// The canaries.
#[derive(Clone, Copy)]
enum Canary {
    Loop,
    Barrier,
    Grid([u32; 3]),
    Offset,
}

impl Canary {
    async fn run(self, ctx: &Arc<GpuContext>) -> Outcome {
        let (got, want) = match self {
            Canary::Loop => loop_canary(ctx)?,
            Canary::Barrier => barrier_canary(ctx)?,
            Canary::Grid(groups) => grid_canary(ctx, groups)?,
            Canary::Offset => offset_canary(ctx)?,
        };
        let v = ctx.read_async(&got).await.map_err(|e| e.to_string())?;
        Ok((bytemuck::cast_slice::<f32, u32>(&v).to_vec(), want))
    }
}

/// Launches a canary; its output is read back by the caller.
fn run_one(
    ctx: &Arc<GpuContext>, k: &Kernel<Params>, p: Params, ranges: &[Range], groups: [u32; 3],
) -> std::result::Result<(), String> {
    let params = bytemuck::bytes_of(&p);
    ctx.launch_ranges(&k.info, ctx.limits.gemm.large, params, ranges, groups)
        .map_err(|e: Error| e.to_string())
}

/// A canary's output buffer (read back after it runs) and the host's expected values.
type Launched = std::result::Result<(GpuBuffer, Vec<u32>), String>;

fn alloc(ctx: &Arc<GpuContext>, n: usize) -> std::result::Result<GpuBuffer, String> {
    ctx.alloc_device(n, "self-test").map_err(|e| e.to_string())
}

fn loop_canary(ctx: &Arc<GpuContext>) -> Launched {
    let trips = ctx.limits.loop_cap as u32;
    let out = alloc(ctx, WG)?;
    let p = Params { trips, rounds: 0, n: WG as u32, _pad: 0 };
    run_one(ctx, &LOOP, p, &[(&out, 0, WG)], [1, 1, 1])?;
    let want = (0..WG as u32)
        .map(|lid| {
            (0..trips).fold(lid, |acc, k| {
                acc.wrapping_mul(1664525).wrapping_add(1013904223).wrapping_add(k)
            })
        })
        .collect();
    Ok((out, want))
}

fn barrier_canary(ctx: &Arc<GpuContext>) -> Launched {
    const GROUPS: u32 = 2;
    let n = WG * GROUPS as usize;
    let out = alloc(ctx, n)?;
    let p = Params { trips: 0, rounds: ROUNDS, n: n as u32, _pad: 0 };
    run_one(ctx, &BARRIER, p, &[(&out, 0, n)], [GROUPS, 1, 1])?;
    let mut want = Vec::with_capacity(n);
    for g in 0..GROUPS {
        let lanes = WG as u32;
        let mut v: Vec<u32> = (0..lanes).map(|l| g * lanes + l).collect();
        for r in 0..ROUNDS {
            let ring = v.clone();
            for (l, x) in v.iter_mut().enumerate() {
                *x = x.wrapping_mul(31).wrapping_add(ring[(l + r as usize + 1) % WG]);
            }
        }
        want.extend(v);
    }
    Ok((out, want))
}

fn grid_canary(ctx: &Arc<GpuContext>, groups: [u32; 3]) -> Launched {
    let count = (groups[0] * groups[1] * groups[2]) as usize;
    let out = alloc(ctx, count * WG)?;
    let p = Params::zeroed();
    run_one(ctx, &GRID, p, &[(&out, 0, count * WG)], groups)?;
    let mut want = vec![0u32; count * WG];
    for z in 0..groups[2] {
        for y in 0..groups[1] {
            for x in 0..groups[0] {
                let g = ((z * groups[1] + y) * groups[0] + x) as usize;
                for lid in 0..WG as u32 {
                    want[g * WG + lid as usize] = lid
                        | x << 8
                        | y << 12
                        | z << 16
                        | groups[0] << 20
                        | groups[1] << 24
                        | groups[2] << 28;
                }
            }
        }
    }
    Ok((out, want))
}

fn offset_canary(ctx: &Arc<GpuContext>) -> Launched {
    let skip = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let data: Vec<u32> = (0..(skip + WG) as u32).map(|i| i.wrapping_mul(2654435761)).collect();
    let src = ctx.upload_device(bits(&data), "self-test").map_err(|e| e.to_string())?;
    let out = alloc(ctx, WG)?;
    let p = Params { trips: 0, rounds: 0, n: WG as u32, _pad: 0 };
    run_one(ctx, &OFFSET, p, &[(&src, skip, WG), (&out, 0, WG)], [1, 1, 1])?;
    let want = data[skip..].iter().map(|v| v.wrapping_mul(3).wrapping_add(7)).collect();
    Ok((out, want))
}
