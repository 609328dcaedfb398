//! Volumes `(n, c, d, h, w)`: convolutions, pools, upsampling and batch norm over three spatial
//! axes, on the 2-d machinery. A pool, an adaptive pool or an interpolation over a box is the
//! same op over the `(h, w)` planes, then over depth (the planes' positions flattened into a
//! second axis of size 1 windows); a convolution is one 2-d convolution with the kernel's depth
//! taps unfolded into its channels (`volume_conv`). Each per-axis rule is the 2-d op's, so the
//! results are PyTorch's 3-d ops' up to float rounding, with every guarantee of the 2-d path.
//! On the CPU, conv3d, conv_transpose3d and max_pool3d have kernels of their own, built from
//! the 2-d kernels' parts (`ops::volume_cpu`).

use crate::ops::conv::Pair;
use crate::ops::volume_cpu;
use crate::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm2d, ensure, max_pool2d,
    max_pool2d_with_indices, upsample, AvgPool2dOptions, BatchNormOptions, BatchNormOutput, Error,
    MaxPool2dOptions, Result, Tensor, UpsampleOptions, UpsampleSize,
};

/// Per-axis sizes `(d, h, w)`.
pub type Triple = (usize, usize, usize);

/// `(n, c, d, h, w)` of a volume, or an `Err` naming `op`.
pub(crate) fn dims5(
    op: &'static str, x: &Tensor, what: &str,
) -> Result<(usize, usize, usize, usize, usize)> {
    match *x.dims() {
        [n, c, d, h, w] => Ok((n, c, d, h, w)),
        _ => Err(Error::Invalid {
            op,
            msg: format!("{what} must be (n, c, d, h, w), got {}", x.shape()),
        }),
    }
}

/// The 2-d op's error under the 3-d op's name.
pub(crate) fn named(op: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Invalid { msg, .. } => Error::Invalid { op, msg },
        Error::TooLarge { msg, .. } => Error::TooLarge { op, msg },
        e => e,
    }
}

/// `f` over the `(h, w)` planes of `x (n, c, d, h, w)`, then `g` over depth: `(n, c, d', h', w')`.
fn planes_then_depth(
    op: &'static str, x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>,
    g: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (n, c, d, h, w) = dims5(op, x, "input")?;
    let y = f(&x.reshape([n, c * d, h, w])?).map_err(named(op))?; // (n, c*d, oh, ow)
    let (oh, ow) = (y.dims()[2], y.dims()[3]);
    let z = g(&y.reshape([n, c, d, oh * ow])?).map_err(named(op))?; // (n, c, od, oh*ow)
    let od = z.dims()[2];
    z.reshape([n, c, od, oh, ow])
}

/// Options of [`max_pool3d`], PyTorch's defaults (stride = kernel, no padding, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool3dOptions {
    /// Window `(d, h, w)`.
    pub kernel: Triple,
    /// Step of the window (default: the kernel).
    pub stride: Option<Triple>,
    /// Implicit `-inf` padding on both sides.
    pub padding: Triple,
    /// Spacing of the window's taps.
    pub dilation: Triple,
    /// Output sizes rounded up.
    pub ceil_mode: bool,
}

impl MaxPool3dOptions {
    /// A `kernel` window with PyTorch's defaults.
    pub fn new(kernel: Triple) -> Self {
        MaxPool3dOptions {
            kernel,
            stride: None,
            padding: (0, 0, 0),
            dilation: (1, 1, 1),
            ceil_mode: false,
        }
    }
}

/// `F.max_pool3d`: the largest element of each window of `x (n, c, d, h, w)`.
pub fn max_pool3d(x: &Tensor, o: &MaxPool3dOptions) -> Result<Tensor> {
    if let Some((y, _)) = volume_cpu::max_pool3d(x, o)? {
        return Ok(y);
    }
    let (hw, depth) = max_passes(o);
    planes_then_depth("max_pool3d", x, |t| max_pool2d(t, &hw), |t| max_pool2d(t, &depth))
}

/// The 2-d pools of [`max_pool3d`]: over the planes, then over depth.
pub(crate) fn max_passes(o: &MaxPool3dOptions) -> (MaxPool2dOptions, MaxPool2dOptions) {
    let (k, s, p, dl) = (o.kernel, o.stride.unwrap_or(o.kernel), o.padding, o.dilation);
    let pass = |k, s, p, d| {
        MaxPool2dOptions::new(Pair(k))
            .stride(Pair(s))
            .padding(Pair(p))
            .dilation(Pair(d))
            .ceil_mode(o.ceil_mode)
    };
    (
        pass((k.1, k.2), (s.1, s.2), (p.1, p.2), (dl.1, dl.2)),
        pass((k.0, 1), (s.0, 1), (p.0, 0), (dl.0, 1)),
    )
}

/// Options of [`avg_pool3d`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool3dOptions {
    /// Window `(d, h, w)`.
    pub kernel: Triple,
    /// Step of the window (default: the kernel).
    pub stride: Option<Triple>,
    /// Zero padding on both sides.
    pub padding: Triple,
    /// Output sizes rounded up.
    pub ceil_mode: bool,
    /// Whether padding counts in the divisor.
    pub count_include_pad: bool,
    /// Divide every window's sum by this instead.
    pub divisor_override: Option<usize>,
}

impl AvgPool3dOptions {
    /// A `kernel` window with PyTorch's defaults.
    pub fn new(kernel: Triple) -> Self {
        AvgPool3dOptions {
            kernel,
            stride: None,
            padding: (0, 0, 0),
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
}

/// `F.avg_pool3d`: the mean of each window; the divisor is the product of the per-axis ones,
/// as PyTorch's (a `divisor_override` divides the whole window's sum).
pub fn avg_pool3d(x: &Tensor, o: &AvgPool3dOptions) -> Result<Tensor> {
    let (k, s, p) = (o.kernel, o.stride.unwrap_or(o.kernel), o.padding);
    let opts = |kernel, stride, padding| {
        AvgPool2dOptions::new(Pair(kernel))
            .stride(Pair(stride))
            .padding(Pair(padding))
            .ceil_mode(o.ceil_mode)
            .count_include_pad(o.count_include_pad)
    };
    let (mut hw, mut depth) =
        (opts((k.1, k.2), (s.1, s.2), (p.1, p.2)), opts((k.0, 1), (s.0, 1), (p.0, 0)));
    if let Some(div) = o.divisor_override {
        ensure!(div > 0, "avg_pool3d", "divisor_override must be positive, got 0");
        // sums over the planes, the whole sum divided once
        (hw, depth) = (hw.divisor_override(1), depth.divisor_override(div));
    }
    planes_then_depth("avg_pool3d", x, |t| avg_pool2d(t, &hw), |t| avg_pool2d(t, &depth))
}

/// `F.adaptive_avg_pool3d` to `out (d, h, w)`.
pub fn adaptive_avg_pool3d(x: &Tensor, out: Triple) -> Result<Tensor> {
    planes_then_depth(
        "adaptive_avg_pool3d",
        x,
        |t| adaptive_avg_pool2d(t, (out.1, out.2)),
        |t| adaptive_avg_pool2d(t, (out.0, t.dims()[3])),
    )
}

/// `F.adaptive_max_pool3d` to `out (d, h, w)`.
pub fn adaptive_max_pool3d(x: &Tensor, out: Triple) -> Result<Tensor> {
    planes_then_depth(
        "adaptive_max_pool3d",
        x,
        |t| adaptive_max_pool2d(t, (out.1, out.2)),
        |t| adaptive_max_pool2d(t, (out.0, t.dims()[3])),
    )
}

/// How [`upsample3d`] interpolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsample3dMode {
    /// `mode="nearest"`.
    Nearest,
    /// `mode="trilinear"`, with PyTorch's `align_corners`.
    Trilinear {
        /// The corners of input and output line up.
        align_corners: bool,
    },
}

/// The output size of [`upsample3d`]: explicit, or a scale factor per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Upsample3dSize {
    /// `(d, h, w)`.
    Size(usize, usize, usize),
    /// Factors `(d, h, w)`: output `floor(in * factor)`.
    Scale(f64, f64, f64),
}

/// `F.interpolate` on `(n, c, d, h, w)`: nearest or trilinear (linear along each axis in turn,
/// the backward a gather as bilinear's).
pub fn upsample3d(x: &Tensor, mode: Upsample3dMode, size: Upsample3dSize) -> Result<Tensor> {
    // depth: a size (Ok) or a scale factor (Err)
    let (hw, depth): (_, std::result::Result<usize, f64>) = match size {
        Upsample3dSize::Size(d, h, w) => (UpsampleSize::Size(h, w), Ok(d)),
        Upsample3dSize::Scale(d, h, w) => (UpsampleSize::Scale(h, w), Err(d)),
    };
    let opts = |s| match mode {
        Upsample3dMode::Nearest => UpsampleOptions::nearest(s),
        Upsample3dMode::Trilinear { align_corners } => UpsampleOptions::bilinear(s, align_corners),
    };
    planes_then_depth(
        "upsample3d",
        x,
        |t| upsample(t, &opts(hw)),
        |t| {
            // the flattened planes' axis kept as it is: size 1 to 1, or a scale of 1
            let along = match depth {
                Ok(d) => UpsampleSize::Size(d, t.dims()[3]),
                Err(f) => UpsampleSize::Scale(f, 1.0),
            };
            upsample(t, &opts(along))
        },
    )
}

/// `F.batch_norm` on `(n, c, d, h, w)`: batch norm over the channels, as on images.
pub fn batch_norm3d(
    x: &Tensor, running_mean: &Tensor, running_var: &Tensor, weight: Option<&Tensor>,
    bias: Option<&Tensor>, opts: &BatchNormOptions,
) -> Result<BatchNormOutput> {
    let (n, c, d, h, w) = dims5("batch_norm3d", x, "input")?;
    let r =
        batch_norm2d(&x.reshape([n, c, d * h, w])?, running_mean, running_var, weight, bias, opts)
            .map_err(named("batch_norm3d"))?;
    Ok(BatchNormOutput { output: r.output.reshape([n, c, d, h, w])?, ..r })
}

/// [`max_pool3d`] and, for each output, the flat index `z * h * w + y * w + x` of its maximum in
/// its `(d, h, w)` input volume, as PyTorch's `return_indices=True` (as f32, without gradient).
pub fn max_pool3d_with_indices(x: &Tensor, o: &MaxPool3dOptions) -> Result<(Tensor, Tensor)> {
    const OP: &str = "max_pool3d";
    if let Some(pair) = volume_cpu::max_pool3d(x, o)? {
        return Ok(pair);
    }
    let (n, c, d, h, w) = dims5(OP, x, "input")?;
    let (hw, depth) = max_passes(o);
    let (y1, i1) =
        max_pool2d_with_indices(&x.reshape([n, c * d, h, w])?, &hw).map_err(named(OP))?;
    let (oh, ow) = (y1.dims()[2], y1.dims()[3]);
    let (y2, i2) =
        max_pool2d_with_indices(&y1.reshape([n, c, d, oh * ow])?, &depth).map_err(named(OP))?;
    let od = y2.dims()[2];
    // the depth pass picked plane z of the planes' maxima; the planes' pass knows where in it
    let (i1, i2, plane) = (i1.to_vec()?, i2.to_vec()?, oh * ow);
    let mut idx = Vec::with_capacity(i2.len());
    for (at, &v) in i2.iter().enumerate() {
        let (nc, j) = (at / (od * plane), at % plane);
        let z = v as usize / plane;
        let within = i1[(nc * d + z) * plane + j] as usize;
        idx.push((z * h * w + within) as f32);
    }
    let idx = Tensor::from_vec(idx, [n, c, od, oh, ow], &x.device())?;
    Ok((y2.reshape([n, c, od, oh, ow])?, idx))
}
