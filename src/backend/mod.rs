//! The primitives every backend implements. Tensor ops (`crate::ops`) validate their arguments,
//! then call exactly these; the autograd rules are written in terms of the same primitives.

pub(crate) mod channel;
pub(crate) mod conv;
mod linear;
mod opcodes;
mod pad;

pub use conv::ConvSpec;
pub(crate) use linear::gemm_bias_relu_unfused;
pub(crate) use pad::{pad_readers, pad_source};
pub use pad::{PadGeom, PadKind};

pub use opcodes::{BinaryOp, ReduceOp, UnaryOp};
pub(crate) use opcodes::{BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};

use crate::shape::WindowGeom;
use crate::Result;

/// Most dimensions a strided (broadcast, permute) kernel handles.
pub const MAX_RANK: usize = 6;

/// How to read operands of a broadcast binary op: the output shape and, per operand, the stride
/// of each output dimension (0 where the operand is broadcast).
#[derive(Clone, Debug)]
pub struct BroadcastSpec {
    pub out: Vec<usize>,
    pub a_strides: Vec<usize>,
    pub b_strides: Vec<usize>,
}

impl BroadcastSpec {
    pub fn len(&self) -> usize {
        self.out.iter().product()
    }
    /// True when both operands are read contiguously in output order.
    pub fn is_plain(&self) -> bool {
        let contiguous = crate::Shape::from(self.out.clone()).strides();
        self.a_strides == contiguous && self.b_strides == contiguous
    }
}

/// A strided read of `x` into a contiguous output of shape `out`:
/// `out[i0, .., ik] = x[offset + sum(ij * strides[j])]`. Negative strides read backwards (flip).
#[derive(Clone, Debug)]
pub struct StridedSpec {
    pub out: Vec<usize>,
    pub strides: Vec<isize>,
    pub offset: usize,
}

/// A strided region of a contiguous tensor of shape `dims`: along axis `a`, index `i < len[a]`
/// of the region is index `start[a] + i * step[a]` of the tensor (`step >= 1`, the region
/// inside `dims`). Slicing reads it; [`Backend::slice_assign`] writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceSpec {
    pub dims: Vec<usize>,
    pub start: Vec<usize>,
    pub step: Vec<usize>,
    pub len: Vec<usize>,
}

impl SliceSpec {
    /// The elements of the tensor.
    pub fn total(&self) -> usize {
        self.dims.iter().product()
    }
    /// The elements of the region.
    pub fn region(&self) -> usize {
        self.len.iter().product()
    }
    /// The region as a strided read of the contiguous tensor.
    pub fn strided(&self) -> StridedSpec {
        let contiguous = crate::Shape::from(self.dims.clone()).strides();
        let strides = contiguous.iter().zip(&self.step).map(|(&c, &s)| (c * s) as isize).collect();
        let offset = contiguous.iter().zip(&self.start).map(|(c, s)| c * s).sum();
        StridedSpec { out: self.len.clone(), strides, offset }
    }
    /// Whether tensor index `c` of axis `a` is in the region, and which region index it is.
    pub fn region_index(&self, a: usize, c: usize) -> Option<usize> {
        let off = c.checked_sub(self.start[a])?;
        (off % self.step[a] == 0 && off / self.step[a] < self.len[a]).then_some(off / self.step[a])
    }
}

/// Where one GEMM operand's elements live: element `(b, i, j)` of a batch is at
/// `offset + (b / batch_inner) * batch_outer_stride + (b % batch_inner) * batch_inner_stride
/// + i * row_stride + j * col_stride`.
///
/// A transposed operand is the same buffer with its row and column strides swapped; grouped
/// convolution uses the two-level batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatLayout {
    pub offset: usize,
    pub batch_outer_stride: usize,
    pub batch_inner_stride: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl MatLayout {
    /// A contiguous row-major `(rows, cols)` matrix per batch, batches back to back.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        MatLayout {
            offset: 0,
            batch_outer_stride: rows * cols,
            batch_inner_stride: 0,
            row_stride: cols,
            col_stride: 1,
        }
    }
    /// Offset 0 and the given strides, in field order: `(batch_outer, batch_inner, row, col)`.
    pub const fn strided(batch_outer: usize, batch_inner: usize, row: usize, col: usize) -> Self {
        MatLayout {
            offset: 0,
            batch_outer_stride: batch_outer,
            batch_inner_stride: batch_inner,
            row_stride: row,
            col_stride: col,
        }
    }
    /// The same storage read as its transpose.
    pub fn t(self) -> Self {
        MatLayout { row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
    #[inline]
    pub(crate) fn base(&self, b: usize, batch_inner: usize) -> usize {
        self.offset
            + (b / batch_inner) * self.batch_outer_stride
            + (b % batch_inner) * self.batch_inner_stride
    }
    /// One past the largest element index this layout can touch (None on overflow).
    pub(crate) fn extent(
        &self, batch: usize, batch_inner: usize, rows: usize, cols: usize,
    ) -> Option<usize> {
        let terms = [
            ((batch - 1) / batch_inner, self.batch_outer_stride),
            (batch_inner.min(batch) - 1, self.batch_inner_stride),
            (rows - 1, self.row_stride),
            (cols - 1, self.col_stride),
        ];
        terms.iter().try_fold(self.offset.checked_add(1)?, |acc, &(i, s)| {
            acc.checked_add(i.checked_mul(s)?)
        })
    }
}

/// `C[b] = A[b] (m, k) x B[b] (k, n)` for `batch` batches. The output buffer has `c_len`
/// elements and every one of them is written by exactly one `(b, i, j)`.
#[derive(Clone, Copy, Debug)]
pub struct GemmSpec {
    pub batch: usize,
    pub batch_inner: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatLayout,
    pub b: MatLayout,
    pub c: MatLayout,
    pub c_len: usize,
}

/// Interpolation of `F.interpolate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpsampleGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    /// source-coordinate scales (`crate::shape::upsample_scale`)
    pub scale_h: f32,
    pub scale_w: f32,
    pub align_corners: bool,
}

/// Average pooling options besides the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolOpts {
    pub count_include_pad: bool,
    pub divisor_override: Option<usize>,
}

/// One documented method per primitive. Shapes are given in the comments; every storage is a
/// contiguous f32 buffer.
pub trait Backend {
    type Storage;

    /// `out[i] = op(x[i])`, `n` elements.
    fn unary(&self, x: &Self::Storage, n: usize, op: UnaryOp) -> Result<Self::Storage>;
    /// `out[idx] = op(a[idx . a_strides], b[idx . b_strides])` over `spec.out`.
    fn binary(
        &self, a: &Self::Storage, b: &Self::Storage, op: BinaryOp, spec: &BroadcastSpec,
    ) -> Result<Self::Storage>;
    /// `(outer, len, inner) -> (outer, inner)`: reduces the middle axis (in index order for sums).
    fn reduce_axis(
        &self, x: &Self::Storage, outer: usize, len: usize, inner: usize, op: ReduceOp,
    ) -> Result<Self::Storage>;
    /// Contiguous copy of a strided view (permute, slice, expand).
    fn copy_strided(&self, x: &Self::Storage, spec: &StridedSpec) -> Result<Self::Storage>;
    /// `base` (`spec.dims`) with the region `spec` replaced by `value` (`spec.len`, contiguous):
    /// slicing's gradient, and assignment into a slice.
    fn slice_assign(
        &self, base: &Self::Storage, value: &Self::Storage, spec: &SliceSpec,
    ) -> Result<Self::Storage>;
    /// Strided batched matrix product.
    fn gemm(&self, a: &Self::Storage, b: &Self::Storage, spec: &GemmSpec) -> Result<Self::Storage>;
    /// A linear layer: one `(m, k) x (k, n)` product (C row-major), `bias (n)` added to every
    /// row, then a ReLU where `relu` is set. By default in three passes.
    fn gemm_bias_relu(
        &self, a: &Self::Storage, b: &Self::Storage, spec: &GemmSpec, bias: Option<&Self::Storage>,
        relu: bool,
    ) -> Result<Self::Storage> {
        linear::gemm_bias_relu_unfused(self, a, b, spec, bias, relu)
    }
    /// `(n, c, h, w) -> cols (c*kh*kw, n*oh*ow)`: row `(c, kh, kw)` holds that tap of every
    /// window, windows in (n, oh, ow) order, zeros for padding. (The public `im2row` is its
    /// transpose.) Each row is contiguous over the windows, so GEMMs and col2im read it in order.
    fn im2col(&self, x: &Self::Storage, g: &WindowGeom) -> Result<Self::Storage>;
    /// Adjoint of im2col: `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`, each input element summing
    /// its taps in (kh, kw) order (so both backends add in the same order).
    fn col2im(&self, cols: &Self::Storage, g: &WindowGeom) -> Result<Self::Storage>;
    /// `x (n, c, h, w)`, `w (d, c/groups, kh, kw)`, `bias (d)` -> `(n, d, oh, ow)`, then a ReLU
    /// where `relu` is set. By default im2col and one GEMM per (image, group), then the bias and
    /// the ReLU.
    fn conv2d(
        &self, x: &Self::Storage, w: &Self::Storage, bias: Option<&Self::Storage>, s: &ConvSpec,
        relu: bool,
    ) -> Result<Self::Storage> {
        let y = conv::forward_by_im2col(self, x, w, bias, s)?;
        if relu {
            return self.unary(&y, s.out_len(), UnaryOp::Relu);
        }
        Ok(y)
    }
    /// conv2d's input gradient: `grad (n, d, oh, ow)`, `w` -> `(n, c, h, w)`.
    fn conv2d_backward_input(
        &self, grad: &Self::Storage, w: &Self::Storage, s: &ConvSpec,
    ) -> Result<Self::Storage> {
        conv::input_grad_by_col2im(self, grad, w, s)
    }
    /// conv2d's weight gradient: `x`, `grad (n, d, oh, ow)` -> `(d, c/groups, kh, kw)`, each
    /// weight summing over (n, oh, ow).
    fn conv2d_backward_weight(
        &self, x: &Self::Storage, grad: &Self::Storage, s: &ConvSpec,
    ) -> Result<Self::Storage> {
        conv::weight_grad_by_im2col(self, x, grad, s)
    }
    /// Depthwise convolution (groups = c, `mult` filters per channel), directly, without im2col:
    /// `x (n, c, h, w)`, `w (c*mult, 1, kh, kw)` -> `(n, c*mult, oh, ow)`.
    fn depthwise_conv2d(
        &self, x: &Self::Storage, w: &Self::Storage, g: &WindowGeom, mult: usize,
    ) -> Result<Self::Storage>;
    /// Its input gradient, a gather: `grad (n, c*mult, oh, ow)`, `w` -> `(n, c, h, w)`, each
    /// element summing over (m, kh, kw) in that order.
    fn depthwise_conv2d_backward_input(
        &self, grad: &Self::Storage, w: &Self::Storage, g: &WindowGeom, mult: usize,
    ) -> Result<Self::Storage>;
    /// Its weight gradient: `x`, `grad (n, c*mult, oh, ow)` -> `(c*mult, 1, kh, kw)`, each
    /// weight summing over (n, oh, ow).
    fn depthwise_conv2d_backward_weight(
        &self, x: &Self::Storage, grad: &Self::Storage, g: &WindowGeom, mult: usize,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` maxima and the flat `h*w` index of each (as f32).
    fn max_pool2d(
        &self, x: &Self::Storage, g: &WindowGeom,
    ) -> Result<(Self::Storage, Self::Storage)>;
    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, a gather over the windows holding each input.
    fn max_pool2d_backward(
        &self, grad: &Self::Storage, indices: &Self::Storage, g: &WindowGeom,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` window means.
    fn avg_pool2d(
        &self, x: &Self::Storage, g: &WindowGeom, opts: AvgPoolOpts,
    ) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn avg_pool2d_backward(
        &self, grad: &Self::Storage, g: &WindowGeom, opts: AvgPoolOpts,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` with PyTorch's adaptive windows
    /// `[floor(o*h/oh), ceil((o+1)*h/oh))`.
    fn adaptive_avg_pool2d(
        &self, x: &Self::Storage, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn adaptive_avg_pool2d_backward(
        &self, grad: &Self::Storage, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` maxima over the adaptive windows and the flat `h*w`
    /// index of each (as f32).
    fn adaptive_max_pool2d(
        &self, x: &Self::Storage, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<(Self::Storage, Self::Storage)>;
    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, a gather over the windows holding each
    /// input.
    fn adaptive_max_pool2d_backward(
        &self, grad: &Self::Storage, indices: &Self::Storage, dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Self::Storage>;
    /// `x (n, c, hw)`, `mean (c)`, `g (n, c, hw)` -> `(c)`: per channel the sum over (n, hw)
    /// of `(x - mean) * g`, or of `(x - mean)^2` without `g` (batch norm's variance and its
    /// gradient's dot product).
    fn channel_dot(
        &self, x: &Self::Storage, mean: &Self::Storage, g: Option<&Self::Storage>,
        dims: (usize, usize, usize),
    ) -> Result<Self::Storage> {
        channel::channel_dot(self, x, mean, g, dims)
    }
    /// `u, v (n, c, hw)`, `a, b, k (c)` -> `a * u + b * v + k` per channel (without
    /// `(v, b)`, `a * u + k`): batch norm's output and input gradient.
    fn channel_combine(
        &self, u: &Self::Storage, a: &Self::Storage, vb: Option<(&Self::Storage, &Self::Storage)>,
        k: &Self::Storage, dims: (usize, usize, usize),
    ) -> Result<Self::Storage> {
        channel::channel_combine(self, u, a, vb, k, dims)
    }
    /// `u (n, c, hw)`, `a, k (c)` -> `a * u + k` per channel, then `+ residual (n, c, hw)` and a
    /// ReLU where asked: batch norm's output with what follows it in a residual block. By
    /// default `channel_combine`, then one pass each.
    fn channel_affine(
        &self, u: &Self::Storage, a: &Self::Storage, k: &Self::Storage,
        residual: Option<&Self::Storage>, relu: bool, dims: (usize, usize, usize),
    ) -> Result<Self::Storage> {
        channel::channel_affine(self, u, a, k, residual, relu, dims)
    }
    /// `(planes, h, w) -> (planes, oh, ow)` padded as `g` says.
    fn pad2d(&self, x: &Self::Storage, g: &PadGeom) -> Result<Self::Storage>;
    /// `grad (planes, oh, ow) -> (planes, h, w)`: each input sums the outputs that read it, in
    /// raster order (`pad_readers`).
    fn pad2d_backward(&self, grad: &Self::Storage, g: &PadGeom) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)`, source index `min(floor(dst * scale), in - 1)`.
    fn upsample_nearest(&self, x: &Self::Storage, g: &UpsampleGeom) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn upsample_nearest_backward(
        &self, grad: &Self::Storage, g: &UpsampleGeom,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` bilinear interpolation.
    fn upsample_bilinear(&self, x: &Self::Storage, g: &UpsampleGeom) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn upsample_bilinear_backward(
        &self, grad: &Self::Storage, g: &UpsampleGeom,
    ) -> Result<Self::Storage>;
}

/// Source indices and weights of bilinear interpolation along one axis for output `dst`
/// (PyTorch's `area_pixel_compute_source_index` and `upsample_bilinear2d`): `(i0, i1, l0, l1)`.
#[inline]
pub(crate) fn bilinear_src(
    dst: usize, input: usize, scale: f32, align_corners: bool,
) -> (usize, usize, f32, f32) {
    let src = if align_corners {
        scale * dst as f32
    } else {
        (scale * (dst as f32 + 0.5) - 0.5).max(0.0)
    };
    let i0 = (src as usize).min(input - 1);
    let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
    let l1 = src - i0 as f32;
    (i0, i1, 1.0 - l1, l1)
}

/// PyTorch's legacy `nearest` source index.
#[inline]
pub(crate) fn nearest_src(dst: usize, input: usize, scale: f32) -> usize {
    ((dst as f32 * scale).floor() as usize).min(input - 1)
}

/// Adaptive pooling window `[start, end)` for output `o` of `out` over `input`.
#[inline]
pub(crate) fn adaptive_window(o: usize, input: usize, out: usize) -> (usize, usize) {
    let start = (o * input) / out;
    let end = ((o + 1) * input).div_ceil(out);
    (start, end)
}
