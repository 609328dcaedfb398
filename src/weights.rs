//! Weights in and out through the safetensors format (`safetensors.torch.save_file` and
//! `load_file` in PyTorch): float32 tensors out; float32, float64, float16, bfloat16 and
//! integer tensors in (as float32, so BatchNorm's int64 `num_batches_tracked` loads as it is).

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::{Device, Error, Result, Tensor};

/// Writes `state` (a state dict, in any order) to `path`.
pub fn save_safetensors(path: impl AsRef<Path>, state: &[(String, Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let io = |msg: String| Error::Io { path: path.display().to_string(), msg };
    let mut bytes = Vec::with_capacity(state.len());
    for (k, t) in state {
        let v = t.to_vec()?;
        bytes.push((k.clone(), t.dims().to_vec(), bytemuck::cast_slice::<f32, u8>(&v).to_vec()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, dims, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, dims.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| io(format!("{k}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| io(e.to_string()))
}

/// Reads every tensor of `path` onto `device`, as float32, in the file's order.
pub fn load_safetensors(path: impl AsRef<Path>, device: &Device) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let raw =
        std::fs::read(path).map_err(|e| Error::Io { path: name.clone(), msg: e.to_string() })?;
    let format = |msg: String| Error::Format { path: name.clone(), msg };
    let st = SafeTensors::deserialize(&raw)
        .map_err(|e| format(format!("not a valid safetensors file: {e}")))?;
    let mut out = Vec::new();
    // in the file's order (the crate lists them in a hash map's), so results and messages
    // are the same on every run
    let mut tensors = st.tensors();
    tensors.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    for (k, v) in tensors {
        let values = to_f32(v.dtype(), v.data())
            .ok_or_else(|| format(format!("{k}: dtype {:?} is not supported", v.dtype())))?;
        out.push((k, Tensor::from_vec(values, v.shape().to_vec(), device)?));
    }
    Ok(out)
}

/// Little-endian values of `dtype` as float32; `None` for types with no float32 reading.
fn to_f32(dtype: Dtype, b: &[u8]) -> Option<Vec<f32>> {
    fn each<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        b.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect()
    }
    Some(match dtype {
        Dtype::F32 => each(b, f32::from_le_bytes),
        Dtype::F64 => each(b, |c| f64::from_le_bytes(c) as f32),
        Dtype::F16 => each(b, |c: [u8; 2]| f16_to_f32(u16::from_le_bytes(c))),
        Dtype::BF16 => each(b, |c: [u8; 2]| f32::from_bits((u16::from_le_bytes(c) as u32) << 16)),
        Dtype::I64 => each(b, |c| i64::from_le_bytes(c) as f32),
        Dtype::I32 => each(b, |c| i32::from_le_bytes(c) as f32),
        Dtype::I16 => each(b, |c| i16::from_le_bytes(c) as f32),
        Dtype::I8 => each(b, |c: [u8; 1]| c[0] as i8 as f32),
        Dtype::U8 => each(b, |c: [u8; 1]| c[0] as f32),
        Dtype::BOOL => each(b, |c: [u8; 1]| (c[0] != 0) as u8 as f32),
        _ => return None,
    })
}

/// IEEE half to single precision, subnormals and specials included.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: m * 2^-24
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    #[test]
    fn half_precision_values_convert_exactly() {
        for (h, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x7c00, f32::INFINITY),
            (0x8000, -0.0),
        ] {
            assert_eq!(super::f16_to_f32(h).to_bits(), want.to_bits(), "{h:#06x}");
        }
        assert!(super::f16_to_f32(0x7e00).is_nan());
    }
}
