//! Reading and writing arrays: NPY files (little-endian f32).

use std::path::Path;

use ndarray::ArrayD;

use crate::{Device, Error, Result, Tensor};

/// Reads a float32 NPY file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    ndarray_npy::ReadNpyExt::read_npy(std::io::BufReader::new(file)).map_err(
        |e: ndarray_npy::ReadNpyError| Error::Format {
            path: path.display().to_string(),
            msg: format!("not a float32 NPY array: {e}"),
        },
    )
}

/// Reads a float32 NPY file into a tensor on `device`.
pub fn load_npy(path: impl AsRef<Path>, device: &Device) -> Result<Tensor> {
    Tensor::from_ndarray(&read_npy(path)?, device)
}

/// Writes a tensor as a float32 NPY file.
pub fn save_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    let path = path.as_ref();
    ndarray_npy::write_npy(path, &t.to_ndarray()?).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}
