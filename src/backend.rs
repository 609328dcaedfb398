//! The primitives every backend implements. Tensor ops (`crate::ops`) validate their arguments,
//! then call exactly these; the autograd rules are written in terms of the same primitives.

use crate::shape::WindowGeom;
use crate::Result;

/// Elementwise functions of one tensor (and a scalar parameter where the op has one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    Square,
    Sqrt,
    Exp,
    Log,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    AddScalar(f32),
    MulScalar(f32),
    /// `x ^ p`
    PowScalar(f32),
}

/// Unary opcodes: a name's index is its code, and the shaders see it as `UNARY_<NAME>` (the
/// loader generates those constants from this table). A name missing here gets a code no
/// shader case handles, so the GPU returns NaN rather than another op's result.
pub(crate) const UNARY_OPCODES: [&str; 12] = [
    "NEG",
    "SQUARE",
    "SQRT",
    "EXP",
    "LOG",
    "RELU",
    "LEAKY_RELU",
    "SIGMOID",
    "TANH",
    "ADD_SCALAR",
    "MUL_SCALAR",
    "POW_SCALAR",
];

/// Binary opcodes, as [`UNARY_OPCODES`] (`BINARY_<NAME>` in the shaders).
pub(crate) const BINARY_OPCODES: [&str; 8] = [
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "RELU_BACKWARD",
    "LEAKY_RELU_BACKWARD",
    "SIGMOID_BACKWARD",
    "TANH_BACKWARD",
];

/// Reduction opcodes, as [`UNARY_OPCODES`] (`REDUCE_<NAME>` in the shaders).
pub(crate) const REDUCE_OPCODES: [&str; 2] = ["SUM", "MAX"];

/// The code of `name` in `table`; `u32::MAX` (no shader case) for a name it lacks.
fn opcode(table: &[&str], name: &str) -> u32 {
    table
        .iter()
        .position(|&n| n == name)
        .map_or(u32::MAX, |i| i as u32)
}

impl UnaryOp {
    /// Every variant (with a placeholder parameter), for tests of the opcode tables.
    #[cfg(test)]
    pub(crate) const ALL: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Square,
        UnaryOp::Sqrt,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.5),
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::AddScalar(0.5),
        UnaryOp::MulScalar(0.5),
        UnaryOp::PowScalar(0.5),
    ];

    /// The name in [`UNARY_OPCODES`] and the scalar parameter.
    fn name(self) -> (&'static str, f32) {
        match self {
            UnaryOp::Neg => ("NEG", 0.0),
            UnaryOp::Square => ("SQUARE", 0.0),
            UnaryOp::Sqrt => ("SQRT", 0.0),
            UnaryOp::Exp => ("EXP", 0.0),
            UnaryOp::Log => ("LOG", 0.0),
            UnaryOp::Relu => ("RELU", 0.0),
            UnaryOp::LeakyRelu(a) => ("LEAKY_RELU", a),
            UnaryOp::Sigmoid => ("SIGMOID", 0.0),
            UnaryOp::Tanh => ("TANH", 0.0),
            UnaryOp::AddScalar(s) => ("ADD_SCALAR", s),
            UnaryOp::MulScalar(s) => ("MUL_SCALAR", s),
            UnaryOp::PowScalar(p) => ("POW_SCALAR", p),
        }
    }

    /// Opcode and parameter as the shader sees them (`shaders/unary.wgsl`).
    pub(crate) fn code(self) -> (u32, f32) {
        let (name, param) = self.name();
        (opcode(&UNARY_OPCODES, name), param)
    }

    /// The scalar definition both backends follow (the WGSL mirrors it line by line).
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Square => x * x,
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            // `x <= 0` rather than `x > 0`: NaN propagates, as in PyTorch.
            UnaryOp::Relu => {
                if x <= 0.0 {
                    0.0
                } else {
                    x
                }
            }
            UnaryOp::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::AddScalar(s) => x + s,
            UnaryOp::MulScalar(s) => x * s,
            UnaryOp::PowScalar(p) => x.powf(p),
        }
    }
}

/// Elementwise functions of two tensors. The `*Backward` ops take the forward input or output
/// as `a` and the upstream gradient as `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `b` where `a > 0` (or NaN), else 0: relu's gradient, 0 at exactly 0 as in PyTorch.
    ReluBackward,
    /// `b * (a > 0 ? 1 : alpha)`
    LeakyReluBackward(f32),
    /// `b * a * (1 - a)` with `a` the sigmoid output
    SigmoidBackward,
    /// `b * (1 - a^2)` with `a` the tanh output
    TanhBackward,
}

impl BinaryOp {
    /// Every variant (with a placeholder parameter), for tests of the opcode tables.
    #[cfg(test)]
    pub(crate) const ALL: [BinaryOp; 8] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::ReluBackward,
        BinaryOp::LeakyReluBackward(0.5),
        BinaryOp::SigmoidBackward,
        BinaryOp::TanhBackward,
    ];

    /// Opcode (from [`BINARY_OPCODES`]) and parameter as the shader sees them.
    pub(crate) fn code(self) -> (u32, f32) {
        let (name, param) = match self {
            BinaryOp::Add => ("ADD", 0.0),
            BinaryOp::Sub => ("SUB", 0.0),
            BinaryOp::Mul => ("MUL", 0.0),
            BinaryOp::Div => ("DIV", 0.0),
            BinaryOp::ReluBackward => ("RELU_BACKWARD", 0.0),
            BinaryOp::LeakyReluBackward(a) => ("LEAKY_RELU_BACKWARD", a),
            BinaryOp::SigmoidBackward => ("SIGMOID_BACKWARD", 0.0),
            BinaryOp::TanhBackward => ("TANH_BACKWARD", 0.0),
        };
        (opcode(&BINARY_OPCODES, name), param)
    }

    #[inline]
    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::ReluBackward => {
                if a <= 0.0 {
                    0.0
                } else {
                    b
                }
            }
            BinaryOp::LeakyReluBackward(s) => {
                if a > 0.0 {
                    b
                } else {
                    b * s
                }
            }
            BinaryOp::SigmoidBackward => b * a * (1.0 - a),
            BinaryOp::TanhBackward => b * (1.0 - a * a),
        }
    }
}

/// How a reduction combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// The maximum; NaN propagates, as in PyTorch.
    Max,
}

impl ReduceOp {
    /// Opcode from [`REDUCE_OPCODES`].
    pub(crate) fn code(self) -> u32 {
        let name = match self {
            ReduceOp::Sum => "SUM",
            ReduceOp::Max => "MAX",
        };
        opcode(&REDUCE_OPCODES, name)
    }
    pub(crate) fn identity(self) -> f32 {
        match self {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f32::NEG_INFINITY,
        }
    }
    #[inline]
    pub(crate) fn combine(self, acc: f32, v: f32) -> f32 {
        match self {
            ReduceOp::Sum => acc + v,
            ReduceOp::Max => {
                if v > acc || v.is_nan() {
                    v
                } else {
                    acc
                }
            }
        }
    }
}

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
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        MatLayout {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
    #[inline]
    pub(crate) fn base(&self, b: usize, batch_inner: usize) -> usize {
        self.offset
            + (b / batch_inner) * self.batch_outer_stride
            + (b % batch_inner) * self.batch_inner_stride
    }
    /// One past the largest element index this layout can touch (None on overflow).
    pub(crate) fn extent(
        &self,
        batch: usize,
        batch_inner: usize,
        rows: usize,
        cols: usize,
    ) -> Option<usize> {
        let terms = [
            ((batch - 1) / batch_inner, self.batch_outer_stride),
            (batch_inner.min(batch) - 1, self.batch_inner_stride),
            (rows - 1, self.row_stride),
            (cols - 1, self.col_stride),
        ];
        terms
            .iter()
            .try_fold(self.offset.checked_add(1)?, |acc, &(i, s)| {
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
        &self,
        a: &Self::Storage,
        b: &Self::Storage,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<Self::Storage>;
    /// `(outer, len, inner) -> (outer, inner)`: reduces the middle axis (in index order for sums).
    fn reduce_axis(
        &self,
        x: &Self::Storage,
        outer: usize,
        len: usize,
        inner: usize,
        op: ReduceOp,
    ) -> Result<Self::Storage>;
    /// Contiguous copy of a strided view (permute, slice, expand).
    fn copy_strided(&self, x: &Self::Storage, spec: &StridedSpec) -> Result<Self::Storage>;
    /// Strided batched matrix product.
    fn gemm(&self, a: &Self::Storage, b: &Self::Storage, spec: &GemmSpec) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> cols (c*kh*kw, n*oh*ow)`: row `(c, kh, kw)` holds that tap of every
    /// window, windows in (n, oh, ow) order, zeros for padding. (The public `im2row` is its
    /// transpose.) Each row is contiguous over the windows, so GEMMs and col2im read it in order.
    fn im2col(&self, x: &Self::Storage, g: &WindowGeom) -> Result<Self::Storage>;
    /// Adjoint of im2col: `cols (c*kh*kw, n*oh*ow) -> (n, c, h, w)`, each input element summing
    /// its taps in (kh, kw) order (so both backends add in the same order).
    fn col2im(&self, cols: &Self::Storage, g: &WindowGeom) -> Result<Self::Storage>;
    /// Depthwise convolution (groups = c, `mult` filters per channel), directly, without im2col:
    /// `x (n, c, h, w)`, `w (c*mult, 1, kh, kw)` -> `(n, c*mult, oh, ow)`.
    fn depthwise_conv2d(
        &self,
        x: &Self::Storage,
        w: &Self::Storage,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<Self::Storage>;
    /// Its input gradient, a gather: `grad (n, c*mult, oh, ow)`, `w` -> `(n, c, h, w)`, each
    /// element summing over (m, kh, kw) in that order.
    fn depthwise_conv2d_backward_input(
        &self,
        grad: &Self::Storage,
        w: &Self::Storage,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<Self::Storage>;
    /// Its weight gradient: `x`, `grad (n, c*mult, oh, ow)` -> `(c*mult, 1, kh, kw)`, each
    /// weight summing over (n, oh, ow).
    fn depthwise_conv2d_backward_weight(
        &self,
        x: &Self::Storage,
        grad: &Self::Storage,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` maxima and the flat `h*w` index of each (as f32).
    fn max_pool2d(
        &self,
        x: &Self::Storage,
        g: &WindowGeom,
    ) -> Result<(Self::Storage, Self::Storage)>;
    /// `grad (n, c, oh, ow), indices -> (n, c, h, w)`, a gather over the windows holding each input.
    fn max_pool2d_backward(
        &self,
        grad: &Self::Storage,
        indices: &Self::Storage,
        g: &WindowGeom,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` window means.
    fn avg_pool2d(
        &self,
        x: &Self::Storage,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn avg_pool2d_backward(
        &self,
        grad: &Self::Storage,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` with PyTorch's adaptive windows
    /// `[floor(o*h/oh), ceil((o+1)*h/oh))`.
    fn adaptive_avg_pool2d(
        &self,
        x: &Self::Storage,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &Self::Storage,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)`, source index `min(floor(dst * scale), in - 1)`.
    fn upsample_nearest(&self, x: &Self::Storage, g: &UpsampleGeom) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn upsample_nearest_backward(
        &self,
        grad: &Self::Storage,
        g: &UpsampleGeom,
    ) -> Result<Self::Storage>;
    /// `(n, c, h, w) -> (n, c, oh, ow)` bilinear interpolation.
    fn upsample_bilinear(&self, x: &Self::Storage, g: &UpsampleGeom) -> Result<Self::Storage>;
    /// `grad (n, c, oh, ow) -> (n, c, h, w)`.
    fn upsample_bilinear_backward(
        &self,
        grad: &Self::Storage,
        g: &UpsampleGeom,
    ) -> Result<Self::Storage>;
}

/// Source indices and weights of bilinear interpolation along one axis for output `dst`
/// (PyTorch's `area_pixel_compute_source_index` and `upsample_bilinear2d`): `(i0, i1, l0, l1)`.
#[inline]
pub(crate) fn bilinear_src(
    dst: usize,
    input: usize,
    scale: f32,
    align_corners: bool,
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
