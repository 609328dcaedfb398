//! `F.interpolate`: nearest (PyTorch's legacy floor rule) and bilinear.

use crate::backend::{Backend, UpsampleGeom};
use crate::shape::{upsample_out_len, upsample_scale_for, Shape};
use crate::tensor::{on_backend, Tensor};
use crate::{ensure, Error, Result};

/// Interpolation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    /// `mode="nearest"`: source index `floor(dst * in / out)`.
    Nearest,
    /// `mode="bilinear"` with the given `align_corners`.
    Bilinear {
        /// PyTorch's `align_corners`: the corner pixels of input and output line up, rather
        /// than their outer edges.
        align_corners: bool,
    },
}

/// Target size: explicit, or a scale factor per axis (output `floor(in * factor)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpsampleSize {
    /// Output `(height, width)`.
    Size(usize, usize),
    /// Scale factors `(height, width)`.
    Scale(f64, f64),
}

/// Options of [`upsample`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpsampleOptions {
    /// How output values are interpolated.
    pub mode: UpsampleMode,
    /// The output size, or how to compute it.
    pub size: UpsampleSize,
}

impl UpsampleOptions {
    /// Nearest-neighbour interpolation to `size`.
    pub fn nearest(size: UpsampleSize) -> Self {
        UpsampleOptions { mode: UpsampleMode::Nearest, size }
    }
    /// Bilinear interpolation to `size`, with PyTorch's `align_corners`.
    pub fn bilinear(size: UpsampleSize, align_corners: bool) -> Self {
        UpsampleOptions { mode: UpsampleMode::Bilinear { align_corners }, size }
    }
}

/// `F.interpolate(x, size=.. | scale_factor=.., mode=..)` for `(n, c, h, w)` inputs.
pub fn upsample(x: &Tensor, opts: &UpsampleOptions) -> Result<Tensor> {
    const OP: &str = "upsample";
    let (n, c, h, w) = x.dims4().map_err(|_| Error::Invalid {
        op: OP,
        msg: format!("input must be (n, c, h, w), got {}", x.shape()),
    })?;
    let nearest = opts.mode == UpsampleMode::Nearest;
    let align_corners = matches!(opts.mode, UpsampleMode::Bilinear { align_corners: true });
    let (oh, ow, fh, fw) = match opts.size {
        UpsampleSize::Size(oh, ow) => {
            ensure!(oh > 0 && ow > 0, OP, "output size must be positive, got ({oh}, {ow})");
            (oh, ow, None, None)
        }
        UpsampleSize::Scale(sh, sw) => {
            (upsample_out_len(OP, h, sh)?, upsample_out_len(OP, w, sw)?, Some(sh), Some(sw))
        }
    };
    crate::shape::numel(OP, &[n, c, oh, ow])?;
    if let Some(y) = super::empty::empty_pool_result(OP, x, [n, c, oh, ow])? {
        return Ok(y);
    }
    let g = UpsampleGeom {
        n,
        c,
        h,
        w,
        oh,
        ow,
        scale_h: upsample_scale_for(h, oh, align_corners, fh, nearest),
        scale_w: upsample_scale_for(w, ow, align_corners, fw, nearest),
        align_corners,
    };
    let st = if nearest {
        on_backend!(x.storage(), s, be => be.upsample_nearest(s, &g))
    } else {
        on_backend!(x.storage(), s, be => be.upsample_bilinear(s, &g))
    };
    let y = Tensor::from_storage(st, Shape::from([n, c, oh, ow]));
    Ok(y.attach(&[x], move |gr| {
        let st = if nearest {
            on_backend!(gr.storage(), s, be => be.upsample_nearest_backward(s, &g))
        } else {
            on_backend!(gr.storage(), s, be => be.upsample_bilinear_backward(s, &g))
        };
        Ok(vec![Some(Tensor::from_storage(st, Shape::from([n, c, h, w])))])
    }))
}
