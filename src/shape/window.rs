//! Windows: the one output-size formula of convolution and pooling, its transposed twin, the
//! sizes and scales of upsampling, and [`WindowGeom`], the one geometry every window op takes.

use super::numel;
use crate::{ensure, Result};

/// Extent of a window: `dilation * (kernel - 1) + 1`.
fn window_span(op: &'static str, kernel: usize, dilation: usize) -> Result<usize> {
    (kernel - 1).checked_mul(dilation).and_then(|v| v.checked_add(1)).ok_or_else(|| {
        crate::Error::Invalid {
            op,
            msg: format!("kernel {kernel} with dilation {dilation} overflows"),
        }
    })
}

/// Kernel size, stride and dilation of a sliding window must all be positive.
fn check_window(op: &'static str, kernel: usize, stride: usize, dilation: usize) -> Result<()> {
    ensure!(kernel > 0, op, "kernel size must be positive, got 0");
    ensure!(stride > 0, op, "stride must be positive, got 0");
    ensure!(dilation > 0, op, "dilation must be positive, got 0");
    Ok(())
}

/// `a + b`, or an error naming `op` on overflow.
fn add(op: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b)
        .ok_or_else(|| crate::Error::Invalid { op, msg: format!("size {a} + {b} overflows") })
}

/// Output length of a sliding window along one axis: the one formula of convolution and
/// pooling, PyTorch's `pooling_output_shape` in signed arithmetic. Without `ceil_mode` it is
/// `F.conv2d`'s `(in + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride + 1`; with it, a last
/// window that would start inside the right padding is dropped.
#[allow(clippy::too_many_arguments)]
pub fn window_out_len(
    op: &'static str, input: usize, kernel: usize, stride: usize, (pad_lo, pad_hi): (usize, usize),
    dilation: usize, ceil_mode: bool,
) -> Result<usize> {
    check_window(op, kernel, stride, dilation)?;
    let padded = add(op, add(op, input, pad_lo)?, pad_hi)?;
    let span = window_span(op, kernel, dilation)?;
    // signed: with ceil_mode a window may run past the padded input
    let (st, lo) = (stride as i128, pad_lo as i128);
    let num = padded as i128 - span as i128 + if ceil_mode { st - 1 } else { 0 };
    let mut out = num.div_euclid(st) + 1;
    if ceil_mode && out > 0 && (out - 1) * st >= input as i128 + lo {
        out -= 1;
    }
    ensure!(
        out > 0,
        op,
        "kernel extent {span} (kernel {kernel}, dilation {dilation}) is larger than the padded input {padded} (input {input}, padding {pad_lo}+{pad_hi})"
    );
    Ok(out as usize)
}

/// Output length of a convolution along one axis ([`window_out_len`] without ceil_mode).
pub fn conv_out_len(
    op: &'static str, input: usize, kernel: usize, stride: usize, pad_lo: usize, pad_hi: usize,
    dilation: usize,
) -> Result<usize> {
    window_out_len(op, input, kernel, stride, (pad_lo, pad_hi), dilation, false)
}

/// Output length of a transposed convolution along one axis, PyTorch's `(in - 1) * stride -
/// pad_lo - pad_hi + dilation * (k - 1) + output_padding + 1`: the input length of the
/// convolution it is the adjoint of.
pub fn transpose_out_len(
    op: &'static str, input: usize, kernel: usize, stride: usize, (pad_lo, pad_hi): (usize, usize),
    dilation: usize, output_padding: usize,
) -> Result<usize> {
    check_window(op, kernel, stride, dilation)?;
    ensure!(
        output_padding < stride.max(dilation),
        op,
        "output_padding {output_padding} must be smaller than the stride {stride} or the dilation {dilation}"
    );
    let span = window_span(op, kernel, dilation)? as i128;
    let out = (input as i128 - 1) * stride as i128 - pad_lo as i128 - pad_hi as i128
        + span
        + output_padding as i128;
    ensure!(
        input > 0 && out > 0,
        op,
        "input length {input} with kernel {kernel}, stride {stride}, padding {pad_lo}+{pad_hi} and dilation {dilation} gives no output"
    );
    usize::try_from(out)
        .map_err(|_| crate::Error::TooLarge { op, msg: format!("an output length of {out}") })
}

/// Output length of max/avg pooling along one axis: [`window_out_len`] with the same padding
/// on both sides, which PyTorch limits to half the kernel.
pub fn pool_out_len(
    op: &'static str, input: usize, kernel: usize, stride: usize, pad: usize, dilation: usize,
    ceil_mode: bool,
) -> Result<usize> {
    check_pool_pad(op, kernel, pad)?;
    window_out_len(op, input, kernel, stride, (pad, pad), dilation, ceil_mode)
}

/// PyTorch limits pooling's padding to half the kernel.
fn check_pool_pad(op: &'static str, kernel: usize, pad: usize) -> Result<()> {
    ensure!(
        pad <= kernel / 2,
        op,
        "padding {pad} should be at most half of the kernel size {kernel}"
    );
    Ok(())
}

/// Source coordinate scale of `F.interpolate` along one axis (PyTorch's
/// `area_pixel_compute_scale`). With a given scale factor PyTorch uses `1 / factor`.
pub fn upsample_scale_for(
    input: usize, output: usize, align_corners: bool, factor: Option<f64>, nearest: bool,
) -> f32 {
    // PyTorch's CPU kernels copy an axis whose size does not change, and nearest takes
    // `dst >> 1` when the size doubles, whatever the scale factor said.
    if !align_corners && output == input {
        return 1.0;
    }
    if nearest && output == 2 * input {
        return 0.5;
    }
    upsample_scale(input, output, align_corners, factor)
}

/// The scale from sizes and an optional factor alone, without the special cases of
/// [`upsample_scale_for`].
pub fn upsample_scale(
    input: usize, output: usize, align_corners: bool, factor: Option<f64>,
) -> f32 {
    if align_corners {
        if output > 1 {
            (input as f32 - 1.0) / (output as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        match factor {
            Some(f) if f > 0.0 => (1.0 / f) as f32,
            _ => input as f32 / output as f32,
        }
    }
}

/// Output length of `F.interpolate` with a scale factor: `floor(in * factor)`.
pub fn upsample_out_len(op: &'static str, input: usize, factor: f64) -> Result<usize> {
    ensure!(
        factor.is_finite() && factor > 0.0,
        op,
        "scale factor must be finite and positive, got {factor}"
    );
    let out = (input as f64 * factor).floor() as usize;
    ensure!(out > 0, op, "output size is 0 (input {input}, scale factor {factor})");
    Ok(out)
}

/// A sliding window over `(n, c, h, w) -> (n, c, oh, ow)`: the one geometry of convolution,
/// im2row and pooling. Padding may differ per side (convolution's "same" padding with an even
/// kernel); indexing needs only the top and left padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowGeom {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Rows of padding above the input.
    pub pad_top: usize,
    /// Columns of padding left of the input.
    pub pad_left: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl WindowGeom {
    /// A convolution's window, padding `[top, bottom, left, right]`; validates the arguments
    /// and computes the output size.
    pub fn conv(
        op: &'static str, input: (usize, usize, usize, usize), kernel: (usize, usize),
        stride: (usize, usize), padding: [usize; 4], dilation: (usize, usize),
    ) -> Result<Self> {
        let g = Self::sized(op, input, kernel, stride, padding, dilation, false)?;
        // the row matrix (n*oh*ow, c*kh*kw) must be addressable
        numel(op, &[g.n, g.oh, g.ow, g.c, g.kh, g.kw])?;
        Ok(g)
    }

    /// A pooling window, the same padding on both sides of each axis.
    pub fn pool(
        op: &'static str, input: (usize, usize, usize, usize), kernel: (usize, usize),
        stride: (usize, usize), padding: (usize, usize), dilation: (usize, usize), ceil_mode: bool,
    ) -> Result<Self> {
        let (ph, pw) = padding;
        check_pool_pad(op, kernel.0, ph)?;
        check_pool_pad(op, kernel.1, pw)?;
        let g = Self::sized(op, input, kernel, stride, [ph, ph, pw, pw], dilation, ceil_mode)?;
        numel(op, &[g.n, g.c, g.oh, g.ow])?;
        Ok(g)
    }

    /// `padding` is `[top, bottom, left, right]`.
    fn sized(
        op: &'static str, (n, c, h, w): (usize, usize, usize, usize), kernel: (usize, usize),
        stride: (usize, usize), [top, bottom, left, right]: [usize; 4], dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<Self> {
        let (pad_h, pad_w) = ((top, bottom), (left, right));
        Ok(WindowGeom {
            n,
            c,
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            sh: stride.0,
            sw: stride.1,
            pad_top: pad_h.0,
            pad_left: pad_w.0,
            dh: dilation.0,
            dw: dilation.1,
            oh: window_out_len(op, h, kernel.0, stride.0, pad_h, dilation.0, ceil_mode)?,
            ow: window_out_len(op, w, kernel.1, stride.1, pad_w, dilation.1, ceil_mode)?,
        })
    }

    /// The taps `kh` of output row `oh` that read inside the input (the rest read padding).
    #[inline]
    pub fn row_taps(&self, oh: usize) -> std::ops::Range<usize> {
        inside_taps(oh * self.sh, self.pad_top, self.dh, self.h, self.kh)
    }

    /// The taps `kw` of output column `ow` that read inside the input.
    #[inline]
    pub fn col_taps(&self, ow: usize) -> std::ops::Range<usize> {
        inside_taps(ow * self.sw, self.pad_left, self.dw, self.w, self.kw)
    }

    /// A transposed convolution `(n, c_in, h, w) -> (n, c_out, oh, ow)` as the geometry of the
    /// convolution it is the adjoint of: that convolution reads the transposed one's output
    /// `(n, c_out, oh, ow)` and its windows are the input's `h x w` positions. Padding is per
    /// axis, on both sides, as PyTorch's.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose(
        op: &'static str, (n, h, w): (usize, usize, usize), c_out: usize, kernel: (usize, usize),
        stride: (usize, usize), padding: (usize, usize), dilation: (usize, usize),
        output_padding: (usize, usize),
    ) -> Result<Self> {
        let (ph, pw) = padding;
        let oh =
            transpose_out_len(op, h, kernel.0, stride.0, (ph, ph), dilation.0, output_padding.0)?;
        let ow =
            transpose_out_len(op, w, kernel.1, stride.1, (pw, pw), dilation.1, output_padding.1)?;
        let mut g = Self::conv(op, (n, c_out, oh, ow), kernel, stride, [ph, ph, pw, pw], dilation)?;
        (g.oh, g.ow) = (h, w);
        Ok(g)
    }

    /// The input row that output row `oh` reads at tap `kh`, or `None` in the padding.
    #[inline]
    pub fn input_row(&self, oh: usize, kh: usize) -> Option<usize> {
        let i = (oh * self.sh + kh * self.dh) as isize - self.pad_top as isize;
        (i >= 0 && (i as usize) < self.h).then_some(i as usize)
    }

    /// The input column that output column `ow` reads at tap `kw`, or `None` in the padding.
    #[inline]
    pub fn input_col(&self, ow: usize, kw: usize) -> Option<usize> {
        // the same signed arithmetic as the loops it serves had inline, which vectorizes
        let i = (ow * self.sw + kw * self.dw) as isize - self.pad_left as isize;
        (i >= 0 && (i as usize) < self.w).then_some(i as usize)
    }

    /// Columns of the row matrix: `c * kh * kw`.
    pub fn row_len(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Rows of the row matrix: `n * oh * ow`.
    pub fn row_count(&self) -> usize {
        self.n * self.oh * self.ow
    }
}

/// Taps `k < taps` with `0 <= at + k * dil - pad < len`: a window's taps inside the input.
#[inline]
fn inside_taps(
    at: usize, pad: usize, dil: usize, len: usize, taps: usize,
) -> std::ops::Range<usize> {
    let start = at as isize - pad as isize;
    let (dil, last) = (dil as isize, len as isize - 1);
    let lo = if start >= 0 { 0 } else { (-start + dil - 1) / dil };
    let hi = if start > last { 0 } else { (last - start) / dil + 1 };
    let hi = (hi as usize).min(taps);
    (lo as usize).min(hi)..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_taps_are_the_taps_that_read_the_input() {
        // every small window geometry, against the per-tap test
        for (h, k, s, p, d) in (1..6).flat_map(|h| {
            (1..4).flat_map(move |k| {
                (1..3).flat_map(move |s| {
                    (0..3).flat_map(move |p| (1..3).map(move |d| (h, k, s, p, d)))
                })
            })
        }) {
            let Ok(g) = WindowGeom::conv("t", (1, 1, h, h), (k, k), (s, s), [p, p, p, p], (d, d))
            else {
                continue;
            };
            for o in 0..g.oh {
                let rows: Vec<usize> = (0..k).filter(|&t| g.input_row(o, t).is_some()).collect();
                let cols: Vec<usize> = (0..k).filter(|&t| g.input_col(o, t).is_some()).collect();
                assert_eq!(g.row_taps(o).collect::<Vec<_>>(), rows, "{g:?} row {o}");
                assert_eq!(g.col_taps(o).collect::<Vec<_>>(), cols, "{g:?} col {o}");
            }
        }
    }

    #[test]
    fn conv_lengths_follow_pytorch() {
        assert_eq!(conv_out_len("t", 3, 2, 1, 0, 0, 1).unwrap(), 2);
        assert_eq!(conv_out_len("t", 8, 3, 2, 1, 1, 1).unwrap(), 4);
        assert_eq!(conv_out_len("t", 7, 3, 1, 0, 0, 2).unwrap(), 3);
        assert!(conv_out_len("t", 2, 3, 1, 0, 0, 1).is_err());
        assert!(conv_out_len("t", 5, 3, 0, 0, 0, 1).is_err());
    }

    #[test]
    fn transposed_lengths_invert_the_convolution() {
        // the convolution of a transposed convolution's output gives back its input length
        for (i, k, s, p, d, op) in [(5, 3, 2, 1, 1, 1), (4, 2, 1, 0, 2, 0), (3, 4, 3, 2, 1, 2)] {
            let o = transpose_out_len("t", i, k, s, (p, p), d, op).unwrap();
            assert_eq!(o, (i - 1) * s - 2 * p + d * (k - 1) + op + 1);
            assert_eq!(conv_out_len("t", o, k, s, p, p, d).unwrap(), i);
        }
        assert!(transpose_out_len("t", 2, 3, 2, (0, 0), 1, 2).is_err());
        assert!(transpose_out_len("t", 1, 1, 1, (1, 1), 1, 0).is_err());
    }

    #[test]
    fn pool_ceil_mode_drops_window_starting_in_padding() {
        // (5 + 2 - 2) / 2 = 2.5 -> ceil 3, +1 = 4; window 3 would start at 6 >= 5 + 1: dropped.
        assert_eq!(pool_out_len("t", 5, 2, 2, 1, 1, true).unwrap(), 3);
        assert_eq!(pool_out_len("t", 5, 2, 2, 1, 1, false).unwrap(), 3);
        assert_eq!(pool_out_len("t", 6, 3, 2, 0, 1, true).unwrap(), 3);
        assert_eq!(pool_out_len("t", 6, 3, 2, 0, 1, false).unwrap(), 2);
        assert!(pool_out_len("t", 6, 2, 2, 2, 1, false).is_err());
    }
}
