//! The elementwise and reduction ops, their scalar definitions (the CPU backend's, mirrored
//! by the shaders), and the opcode tables the shaders' constants are generated from.

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
