//! Assignment into a strided region (slicing's gradient, `x[a:b, ::s] = v`).

use super::host::host_vec_for_overwrite;
use crate::backend::SliceSpec;
use crate::Result;

/// `base` with the region `spec` replaced by `value`: a copy of `base`, then the region's rows
/// (its last axis) written one by one.
pub(super) fn slice_assign(base: &[f32], value: &[f32], spec: &SliceSpec) -> Result<Vec<f32>> {
    let mut out = host_vec_for_overwrite(base.len(), "slice_assign")?;
    out.copy_from_slice(base);
    let view = spec.strided();
    let Some(&row) = view.out.last() else {
        if let (Some(o), Some(&v)) = (out.first_mut(), value.first()) {
            *o = v; // a scalar
        }
        return Ok(out);
    };
    if row == 0 {
        return Ok(out);
    }
    let rank = view.out.len();
    let step = view.strides[rank - 1] as usize;
    for (r, vals) in value.chunks(row).enumerate() {
        let mut rem = r;
        let mut at = view.offset;
        for d in (0..rank - 1).rev() {
            at += (rem % view.out[d]) * view.strides[d] as usize;
            rem /= view.out[d];
        }
        for (j, &v) in vals.iter().enumerate() {
            out[at + j * step] = v;
        }
    }
    Ok(out)
}
