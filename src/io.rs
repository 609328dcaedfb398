//! Reading and writing arrays: NPY files (little-endian f32), and the IDX files of MNIST-style
//! datasets (plain or gzip-compressed).

use std::path::Path;

use ndarray::ArrayD;

use crate::{Device, Error, Result, Tensor};

/// Reads a float32 NPY file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Io { path: path.display().to_string(), msg: e.to_string() })?;
    parse_npy(&bytes, &path.display().to_string())
}

/// Parses a float32 NPY file already in memory (a web page's fetched bytes); `name` names it in
/// errors.
pub fn parse_npy(bytes: &[u8], name: &str) -> Result<ArrayD<f32>> {
    ndarray_npy::ReadNpyExt::read_npy(bytes).map_err(|e: ndarray_npy::ReadNpyError| Error::Format {
        path: name.to_string(),
        msg: format!("not a float32 NPY array: {e}"),
    })
}

/// Reads a float32 NPY file into a tensor on `device`.
pub fn load_npy(path: impl AsRef<Path>, device: &Device) -> Result<Tensor> {
    Tensor::from_ndarray(&read_npy(path)?, device)
}

/// Writes a tensor as a float32 NPY file.
pub fn save_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    let path = path.as_ref();
    ndarray_npy::write_npy(path, &t.to_ndarray()?)
        .map_err(|e| Error::Io { path: path.display().to_string(), msg: e.to_string() })
}

/// Reads an IDX file of unsigned bytes (the MNIST format, `.gz` or not): its dimensions and data.
pub fn read_idx(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<u8>)> {
    use std::io::Read;
    let path = path.as_ref();
    let name = path.display().to_string();
    let io_err = |e: std::io::Error| Error::Io { path: name.clone(), msg: e.to_string() };
    let format = |msg: String| Error::Format { path: name.clone(), msg };
    let raw = std::fs::read(path).map_err(io_err)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format(format!("bad gzip stream: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(format("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(format(format!(
            "IDX element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        )));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(format(format!("truncated IDX header for {rank} dimensions")));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = crate::shape::numel("read_idx", &dims)?;
    if bytes.len() - header != count {
        return Err(format(format!(
            "IDX dimensions {dims:?} need {count} bytes of data, the file has {}",
            bytes.len() - header
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// MNIST-style images `(n, rows, cols)` from an IDX file, scaled to `[0, 1]`: their dims as
/// `(n, 1, rows, cols)` and the values.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<([usize; 4], Vec<f32>)> {
    let path = path.as_ref();
    let (dims, data) = read_idx(path)?;
    let [n, h, w] = dims[..] else {
        return Err(Error::Format {
            path: path.display().to_string(),
            msg: format!("images must have 3 dimensions (n, rows, cols), found {dims:?}"),
        });
    };
    Ok(([n, 1, h, w], data.iter().map(|&b| b as f32 / 255.0).collect()))
}

/// [`read_idx_images`] as a tensor `(n, 1, rows, cols)`.
pub fn load_idx_images(path: impl AsRef<Path>, device: &Device) -> Result<Tensor> {
    let (dims, values) = read_idx_images(path)?;
    Tensor::from_vec(values, dims, device)
}

/// MNIST-style labels from a one-dimensional IDX file.
pub fn load_idx_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let (dims, data) = read_idx(path)?;
    if dims.len() != 1 {
        return Err(Error::Format {
            path: path.display().to_string(),
            msg: format!("labels must have 1 dimension, found {dims:?}"),
        });
    }
    Ok(data.into_iter().map(usize::from).collect())
}

pub use crate::weights::{load_safetensors, save_safetensors};
