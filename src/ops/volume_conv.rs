//! `conv3d` and `conv_transpose3d` on the 2-d convolutions. conv3d: the kernel's depth taps
//! unfolded into channels, then one 2-d convolution over every output depth at once (the
//! depths as images of one batch). conv_transpose3d: one 2-d transposed convolution per depth
//! tap, placed and summed. On the CPU both run kernels of their own instead
//! (`ops::volume_cpu`), conv_transpose3d as conv3d's adjoint. The padding along depth is made explicit (zeros, or mirrored, repeated or wrapped
//! planes) except on the CPU's zeros; along `(h, w)` it is the 2-d convolution's own.

use crate::ops::index::AxisSlice;
use crate::ops::volume::{dims5, named, Triple};
use crate::ops::volume_cpu;
use crate::{
    bail, cat, conv2d, conv_transpose2d, ensure, pad, Conv2dOptions, ConvTranspose2dOptions,
    PadMode, Padding, PaddingMode, Result, Tensor,
};

/// How [`conv3d`] pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding3d {
    /// The same on both sides of each axis, `(d, h, w)`.
    Explicit(Triple),
    /// Output size equals input size (stride 1); the odd element at the end.
    Same,
    /// None.
    Valid,
}

/// Options of [`conv3d`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3dOptions {
    /// Step of the window `(d, h, w)`.
    pub stride: Triple,
    /// Padding of the input.
    pub padding: Padding3d,
    /// Spacing of the kernel's taps.
    pub dilation: Triple,
    /// Channel groups.
    pub groups: usize,
    /// What the padding holds.
    pub padding_mode: PaddingMode,
}

impl Default for Conv3dOptions {
    fn default() -> Self {
        Conv3dOptions {
            stride: (1, 1, 1),
            padding: Padding3d::Valid,
            dilation: (1, 1, 1),
            groups: 1,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

/// Padding before and after along one axis for a kernel of `k` taps `dil` apart.
fn sides(p: Padding3d, axis: usize, k: usize, dil: usize) -> (usize, usize) {
    let pick = |t: Triple| [t.0, t.1, t.2][axis];
    match p {
        Padding3d::Explicit(t) => (pick(t), pick(t)),
        Padding3d::Valid => (0, 0),
        Padding3d::Same => {
            let total = dil * (k - 1);
            (total / 2, total - total / 2)
        }
    }
}

/// `x (n, c, d, h, w)` with `before` and `after` planes added along depth, filled as `mode`
/// says.
fn pad_depth(x: &Tensor, (before, after): (usize, usize), mode: PaddingMode) -> Result<Tensor> {
    if before + after == 0 {
        return Ok(x.clone());
    }
    let (n, c, d, h, w) = dims5("conv3d", x, "input")?;
    if mode == PaddingMode::Zeros {
        // one copy into the zeros, the gradient its region
        let inside = [AxisSlice::full(n), AxisSlice::full(c), AxisSlice::range(before, before + d)];
        return Tensor::zeros([n, c, before + d + after, h, w], &x.device())?
            .slice_assign(&inside, x);
    }
    let most = before.max(after);
    match mode {
        PaddingMode::Reflect => {
            ensure!(most < d, "conv3d", "reflect padding {most} needs more than {d} planes")
        }
        PaddingMode::Circular => {
            ensure!(most <= d, "conv3d", "circular padding {most} needs at least {d} planes")
        }
        PaddingMode::Replicate => ensure!(d > 0, "conv3d", "replicate padding of an empty depth"),
        PaddingMode::Zeros => {}
    }
    let source = |p: isize| -> Option<usize> {
        let dd = d as isize;
        Some(match mode {
            PaddingMode::Zeros => return None,
            PaddingMode::Replicate => p.clamp(0, dd - 1) as usize,
            PaddingMode::Circular => p.rem_euclid(dd) as usize,
            // mirrored without the edge: -1 -> 1, d -> d - 2
            PaddingMode::Reflect => {
                (if p < 0 {
                    -p
                } else if p >= dd {
                    2 * (dd - 1) - p
                } else {
                    p
                }) as usize
            }
        })
    };
    let plane = |p: isize| -> Result<Tensor> {
        match source(p) {
            Some(i) => x.narrow(2, i, 1),
            None => Tensor::zeros([n, c, 1, h, w], &x.device()),
        }
    };
    let mut parts = Vec::with_capacity(before + after + 1);
    for p in -(before as isize)..0 {
        parts.push(plane(p)?);
    }
    parts.push(x.clone());
    for p in d as isize..(d + after) as isize {
        parts.push(plane(p)?);
    }
    cat(&parts.iter().collect::<Vec<_>>(), 2)
}

/// `F.conv3d`: `x (n, c, d, h, w)`, `weight (o, c/groups, kd, kh, kw)`, `bias (o)` ->
/// `(n, o, od, oh, ow)`.
pub fn conv3d(
    x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, o: &Conv3dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv3d";
    let (n, c, _, h, w) = dims5(OP, x, "input")?;
    let (oc, cg, kd, kh, kw) = dims5(OP, weight, "weight")?;
    ensure!(
        o.groups > 0 && c == cg * o.groups && oc % o.groups == 0,
        OP,
        "{c} input channels and a weight of {cg} per group do not make {} groups",
        o.groups
    );
    ensure!(
        kd > 0 && o.stride.0 > 0 && o.dilation.0 > 0,
        OP,
        "kernel, stride and dilation must be positive"
    );
    if o.padding == Padding3d::Same {
        ensure!(o.stride == (1, 1, 1), OP, "padding='same' needs stride 1, got {:?}", o.stride);
    }
    let depth = sides(o.padding, 0, kd, o.dilation.0);
    let (top, bottom) = sides(o.padding, 1, kh, o.dilation.1);
    let (left, right) = sides(o.padding, 2, kw, o.dilation.2);
    // zeros: the padding stays implicit; the other modes pad explicitly, then convolve without
    let (xin, depth, hw_pad) = match o.padding_mode {
        PaddingMode::Zeros => (x.clone(), depth, [top, bottom, left, right]),
        m => {
            let xp = pad_depth(x, depth, m)?;
            let dp = xp.dims()[2];
            let kind = match m {
                PaddingMode::Reflect => PadMode::Reflect,
                PaddingMode::Replicate => PadMode::Replicate,
                _ => PadMode::Circular,
            };
            let widths = [left as isize, right as isize, top as isize, bottom as isize];
            let flat = pad(&xp.reshape([n, c * dp, h, w])?, &widths, kind).map_err(named(OP))?;
            let (hp, wp) = (flat.dims()[2], flat.dims()[3]);
            (flat.reshape([n, c, dp, hp, wp])?, (0, 0), [0; 4])
        }
    };
    let dp = xin.dims()[2] + depth.0 + depth.1;
    let span = o.dilation.0 * (kd - 1) + 1;
    ensure!(
        dp >= span,
        OP,
        "a kernel spanning {span} planes does not fit {dp} padded input planes"
    );
    let od = (dp - span) / o.stride.0 + 1;
    if let Some(y) = volume_cpu::conv3d(&xin, weight, bias, o, (depth.0, od), hw_pad)? {
        return Ok(y);
    }
    let xp = pad_depth(&xin, depth, PaddingMode::Zeros)?;
    let opts = Conv2dOptions::new()
        .stride(crate::ops::conv::Pair((o.stride.1, o.stride.2)))
        .padding(Padding::Explicit(hw_pad))
        .dilation(crate::ops::conv::Pair((o.dilation.1, o.dilation.2)))
        .groups(o.groups);
    // every depth tap's planes side by side as channels: one 2-d convolution with the depth
    // taps in its reduction, the weight's (c/groups, kd) read as its channels
    let x_taps = unfold_depth(&xp, kd, o.stride.0, o.dilation.0, od)?; // (n*od, c*kd, hp, wp)
    let w2 = weight.reshape([oc, cg * kd, kh, kw])?;
    let y = conv2d(&x_taps, &w2, bias, &opts).map_err(named(OP))?; // (n*od, oc, oh, ow)
    let (oh, ow) = (y.dims()[2], y.dims()[3]);
    y.reshape([n, od, oc, oh, ow])?.permute(&[0, 2, 1, 3, 4])
}

/// `xp (n, c, dp, h, w)` -> `(n * od, c * kd, h, w)`: for output depth `z`, channel `(ci, t)`
/// is input plane `z * stride + t * dilation` of channel `ci`. One strided copy forward; the
/// gradient adds each tap's planes back where they came from.
fn unfold_depth(xp: &Tensor, kd: usize, stride: usize, dil: usize, od: usize) -> Result<Tensor> {
    let (n, c, dp, h, w) = dims5("conv3d", xp, "input")?;
    let hw = h * w;
    let spec = crate::backend::StridedSpec {
        out: vec![n, od, c, kd, h, w],
        strides: [c * dp * hw, stride * hw, dp * hw, dil * hw, w, 1].map(|s| s as isize).to_vec(),
        offset: 0,
    };
    let y = xp.strided_raw(spec)?.reshape_raw(crate::Shape::from(vec![n * od, c * kd, h, w]));
    Ok(y.attach(&[xp], move |g| {
        let g = g.reshape([n, od, c, kd, h, w])?;
        let mut acc: Option<Tensor> = None;
        for t in 0..kd {
            let gt = g.narrow(3, t, 1)?.reshape([n, od, c, h, w])?.permute(&[0, 2, 1, 3, 4])?;
            let at = AxisSlice { start: t * dil, len: od, step: stride };
            let placed = Tensor::zeros([n, c, dp, h, w], &g.device())?
                .slice_assign(&[AxisSlice::full(n), AxisSlice::full(c), at], &gt)?;
            acc = Some(match acc {
                Some(a) => a.add(&placed)?,
                None => placed,
            });
        }
        Ok(vec![acc])
    }))
}

/// Options of [`conv_transpose3d`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose3dOptions {
    /// Step `(d, h, w)`.
    pub stride: Triple,
    /// Cropped from both sides of the output.
    pub padding: Triple,
    /// Added at the end of the output.
    pub output_padding: Triple,
    /// Spacing of the kernel's taps.
    pub dilation: Triple,
    /// Channel groups.
    pub groups: usize,
}

impl Default for ConvTranspose3dOptions {
    fn default() -> Self {
        ConvTranspose3dOptions {
            stride: (1, 1, 1),
            padding: (0, 0, 0),
            output_padding: (0, 0, 0),
            dilation: (1, 1, 1),
            groups: 1,
        }
    }
}

/// `F.conv_transpose3d`: `x (n, c, d, h, w)`, `weight (c, o/groups, kd, kh, kw)`, `bias (o)` ->
/// `(n, o, (d-1)*stride - 2*padding + dilation*(kd-1) + output_padding + 1, ...)`.
pub fn conv_transpose3d(
    x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, o: &ConvTranspose3dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose3d";
    let (s, dl, groups) = (o.stride, o.dilation, o.groups);
    let positive = [s.0, s.1, s.2, dl.0, dl.1, dl.2, groups];
    ensure!(positive.iter().all(|&v| v > 0), OP, "stride, dilation and groups must be positive");
    let (n, c, d, _, _) = dims5(OP, x, "input")?;
    let (wc, _, kd, _, _) = dims5(OP, weight, "weight")?;
    ensure!(wc == c, OP, "the weight takes {wc} input channels, the input has {c}");
    ensure!(
        o.output_padding.0 < s.0.max(dl.0),
        OP,
        "output_padding must be below the stride or the dilation"
    );
    let full = (d.max(1) - 1) * s.0 + dl.0 * (kd.max(1) - 1) + 1 + o.output_padding.0;
    ensure!(d > 0 && kd > 0 && full > 2 * o.padding.0, OP, "the output would have no depth");
    let od = full - 2 * o.padding.0;
    if let Some(y) = volume_cpu::conv_transpose3d(x, weight, bias, o, od)? {
        return Ok(y);
    }
    let opts = ConvTranspose2dOptions::new()
        .stride(crate::ops::conv::Pair((s.1, s.2)))
        .padding(crate::ops::conv::Pair((o.padding.1, o.padding.2)))
        .output_padding(crate::ops::conv::Pair((o.output_padding.1, o.output_padding.2)))
        .dilation(crate::ops::conv::Pair((dl.1, dl.2)))
        .groups(groups);
    let (h, w) = (x.dims()[3], x.dims()[4]);
    let planes = x.permute(&[0, 2, 1, 3, 4])?.reshape([n * d, c, h, w])?;
    let mut acc: Option<Tensor> = None;
    for t in 0..kd {
        let y = conv_transpose2d(&planes, &weight.select(2, t)?, None, &opts).map_err(named(OP))?;
        let (oc, oh, ow) = (y.dims()[1], y.dims()[2], y.dims()[3]);
        let y = y.reshape([n, d, oc, oh, ow])?.permute(&[0, 2, 1, 3, 4])?; // (n, oc, d, oh, ow)
                                                                           // input depth i lands on full-output depth i * stride + t * dilation
        let at = AxisSlice { start: t * dl.0, len: d, step: s.0 };
        let placed = Tensor::zeros([n, oc, full, oh, ow], &x.device())?
            .slice_assign(&[AxisSlice::full(n), AxisSlice::full(oc), at], &y)?;
        acc = Some(match acc {
            Some(a) => a.add(&placed)?,
            None => placed,
        });
    }
    let Some(y) = acc else { bail!(OP, "the kernel has no depth") };
    let y = y.narrow(2, o.padding.0, od)?;
    match bias {
        Some(b) => y.add(&b.reshape([1, b.elem_count(), 1, 1, 1])?),
        None => Ok(y),
    }
}
