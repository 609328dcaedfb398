//! Assignment into a strided region (shaders/slice.wgsl): one thread per output element picks
//! the value or the base. Past one binding, the outer axis is cut into runs of rows, rows the
//! region misses copied whole.

use super::runtime::kernel::{kernels, Buffer};
use super::runtime::launch::u32_of;
use super::runtime::uniforms::uniform;
use super::runtime::{Bind, GpuBuffer};
use super::split::{fits, gather_range, resolve, too_large, Ctx, Gathered};
use crate::backend::{SliceSpec, MAX_RANK};
use crate::{Error, Result};

kernels! { SLICE_WGSL = ("slice", include_str!("../../shaders/slice.wgsl"), &[Buffer::read("base"), Buffer::read("v"), Buffer::write("y")]): SliceParams;
    SLICE_ASSIGN = ("slice_assign", "slice_assign", &[Bind::In(1), Bind::In(2), Bind::Out(3)]);
}

uniform! {
    SliceParams as "Params" {
        n: u32,
        rank: u32,
        _pad: [u32; 2],
        dims: [[u32; 4]; 2],
        start: [[u32; 4]; 2],
        step: [[u32; 4]; 2],
        len: [[u32; 4]; 2],
    }
}

/// `base` with the region `spec` replaced by `value`.
pub(crate) fn slice_assign(
    ctx: &Ctx, base: &GpuBuffer, value: &GpuBuffer, spec: &SliceSpec,
) -> Result<GpuBuffer> {
    if spec.dims.len() > MAX_RANK {
        let msg = format!("rank {} exceeds {MAX_RANK}", spec.dims.len());
        return Err(Error::Invalid { op: "slice_assign", msg });
    }
    if fits(ctx, &[base, value], &[spec.total()]) {
        return kernel(ctx, base, value, spec);
    }
    let max = ctx.binding_len();
    let (rows, inner) = (spec.dims[0], spec.dims[1..].iter().product::<usize>());
    let v_inner: usize = spec.len[1..].iter().product();
    let per = (max / inner.max(1)).clamp(1, rows.max(1));
    let result = ctx.alloc_any(spec.total(), "slice_assign")?;
    for r0 in (0..rows).step_by(per) {
        let r1 = (r0 + per).min(rows);
        let hit: Vec<(usize, usize)> =
            (r0..r1).filter_map(|r| Some((r, spec.region_index(0, r)?))).collect();
        let (Some(&(first, k0)), Some(&(last, _))) = (hit.first(), hit.last()) else {
            ctx.copy_range((base, r0 * inner), (&result, r0 * inner), (r1 - r0) * inner)?;
            continue;
        };
        // the run's rows, the value's rows it takes, and the region within the run
        let got = [
            range_any(ctx, base, r0 * inner, (r1 - r0) * inner)?,
            range_any(ctx, value, k0 * v_inner, hit.len() * v_inner)?,
        ];
        let bufs = resolve([base, value].into_iter(), &got);
        let mut piece = spec.clone();
        piece.dims[0] = r1 - r0;
        piece.start[0] = first - r0;
        piece.len[0] = hit.len();
        let part = if r1 - r0 == 1 && inner > max {
            // one row past a binding: its own axes are cut in turn
            let mut sub = piece.clone();
            for v in [&mut sub.dims, &mut sub.start, &mut sub.step, &mut sub.len] {
                v.remove(0);
            }
            if sub.dims.is_empty() {
                return Err(too_large("slice_assign", inner, max));
            }
            slice_assign(ctx, bufs[0], bufs[1], &sub)?
        } else {
            debug_assert!(last < r1);
            kernel(ctx, bufs[0], bufs[1], &piece)?
        };
        ctx.copy_range((&part, 0), (&result, r0 * inner), (r1 - r0) * inner)?;
    }
    Ok(result)
}

/// `len` elements of `buf` from `at`: one buffer within a binding, else in parts.
fn range_any(ctx: &Ctx, buf: &GpuBuffer, at: usize, len: usize) -> Result<Gathered> {
    if len <= ctx.binding_len() {
        return gather_range(ctx, buf, at, len);
    }
    let out = ctx.alloc_any(len, "slice_assign")?;
    ctx.copy_range((buf, at), (&out, 0), len)?;
    Ok(Gathered::Copy(out))
}

fn kernel(ctx: &Ctx, base: &GpuBuffer, value: &GpuBuffer, spec: &SliceSpec) -> Result<GpuBuffer> {
    let pack = |v: &[usize]| -> Result<[[u32; 4]; 2]> {
        let mut out = [[0u32; 4]; 2];
        for (i, &d) in v.iter().enumerate() {
            out[i / 4][i % 4] = u32_of(d, "slice_assign")?;
        }
        Ok(out)
    };
    let n = spec.total();
    let p = SliceParams {
        n: u32_of(n, "slice_assign")?,
        rank: spec.dims.len() as u32,
        _pad: [0; 2],
        dims: pack(&spec.dims)?,
        start: pack(&spec.start)?,
        step: pack(&spec.step)?,
        len: pack(&spec.len)?,
    };
    ctx.map(&SLICE_ASSIGN, &p, &[base, value], n)
}
