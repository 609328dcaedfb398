//! The elementwise and reduction ops, their scalar definitions (the CPU backend's, mirrored
//! by the shaders), and the opcode tables the shaders' constants are generated from.

/// Declares an elementwise op enum from one list: each variant with its opcode name and, where
/// it has one, its `f32` parameter. From that list come the enum, the opcode table (a name's
/// index is its code, and the shaders see it as `<PREFIX>_<NAME>`: the loader generates those
/// constants), `name()` and, for tests, `ALL`. A code no shader case handles gives NaN on the GPU.
macro_rules! opcode_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident, table $table:ident {
            $($(#[$vmeta:meta])* $var:ident $(($param:ident))? = $name:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum $ty {
            $($(#[$vmeta])* $var $((param_type!($param)))?,)*
        }

        pub(crate) const $table: [&str; [$($name),*].len()] = [$($name),*];

        impl $ty {
            /// Every variant (with a placeholder parameter), for tests of the opcode tables.
            #[cfg(test)]
            pub(crate) const ALL: [$ty; [$($name),*].len()] =
                [$($ty::$var $((placeholder!($param)))?),*];

            /// The name in the opcode table and the scalar parameter (0 where there is none).
            fn name(self) -> (&'static str, f32) {
                match self {
                    $($ty::$var $(($param))? => ($name, param_or_zero!($($param)?)),)*
                }
            }

            /// Opcode and parameter as the shader sees them.
            pub(crate) fn code(self) -> (u32, f32) {
                let (name, param) = self.name();
                (opcode(&$table, name), param)
            }
        }
    };
}

macro_rules! param_type {
    ($p:ident) => {
        f32
    };
}

#[cfg(test)]
macro_rules! placeholder {
    ($p:ident) => {
        0.5
    };
}

macro_rules! param_or_zero {
    () => {
        0.0
    };
    ($p:ident) => {
        $p
    };
}

opcode_enum! {
    /// Elementwise functions of one tensor (and a scalar parameter where the op has one).
    pub enum UnaryOp, table UNARY_OPCODES {
        Neg = "NEG",
        Square = "SQUARE",
        Sqrt = "SQRT",
        Exp = "EXP",
        Log = "LOG",
        Relu = "RELU",
        LeakyRelu(slope) = "LEAKY_RELU",
        Sigmoid = "SIGMOID",
        Tanh = "TANH",
        AddScalar(s) = "ADD_SCALAR",
        MulScalar(s) = "MUL_SCALAR",
        /// `x ^ p`
        PowScalar(p) = "POW_SCALAR",
        /// the error function
        Erf = "ERF",
    }
}

opcode_enum! {
    /// Elementwise functions of two tensors. The `*Backward` ops take the forward input or
    /// output as `a` and the upstream gradient as `b`.
    pub enum BinaryOp, table BINARY_OPCODES {
        Add = "ADD",
        Sub = "SUB",
        Mul = "MUL",
        Div = "DIV",
        /// `b` where `a > 0` (or NaN), else 0: relu's gradient, 0 at exactly 0 as in PyTorch.
        ReluBackward = "RELU_BACKWARD",
        /// `b * (a > 0 ? 1 : alpha)`
        LeakyReluBackward(alpha) = "LEAKY_RELU_BACKWARD",
        /// `b * a * (1 - a)` with `a` the sigmoid output
        SigmoidBackward = "SIGMOID_BACKWARD",
        /// `b * (1 - a^2)` with `a` the tanh output
        TanhBackward = "TANH_BACKWARD",
        /// `1` where `a == b`, else `0`: NaN equals nothing.
        Eq = "EQ",
        /// `1` where `a == b` or both are NaN, else `0`: marks a line's maximum (argmax).
        MaxHit = "MAX_HIT",
    }
}

/// The code of `name` in `table`; `u32::MAX` (no shader case) for a name it lacks.
fn opcode(table: &[&str], name: &str) -> u32 {
    table.iter().position(|&n| n == name).map_or(u32::MAX, |i| i as u32)
}

impl UnaryOp {
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
            UnaryOp::Relu => select(x <= 0.0, 0.0, x),
            UnaryOp::LeakyRelu(a) => select(x > 0.0, x, a * x),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::AddScalar(s) => x + s,
            UnaryOp::MulScalar(s) => x * s,
            UnaryOp::PowScalar(p) => x.powf(p),
            UnaryOp::Erf => erf(x),
        }
    }
}

/// The error function in f32 to a few ulp: a rational approximation on [-4, 4] (Eigen's
/// `generic_fast_erf_float`), where beyond 4 erf is +-1 in f32. NaN propagates.
#[inline]
pub(crate) fn erf(x: f32) -> f32 {
    // numerator (odd, from x^13 down) and denominator (even, from x^8 down) coefficients
    const P: [f64; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const Q: [f64; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let horner = |c: &[f64]| c[1..].iter().fold(c[0] as f32, |acc, &k| x2 * acc + k as f32);
    x * horner(&P) / horner(&Q)
}

/// `if cond { t } else { f }`, written like the WGSL it mirrors (argument order aside).
#[inline]
fn select(cond: bool, t: f32, f: f32) -> f32 {
    if cond {
        t
    } else {
        f
    }
}

impl BinaryOp {
    #[inline]
    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::ReluBackward => select(a <= 0.0, 0.0, b),
            BinaryOp::LeakyReluBackward(s) => select(a > 0.0, b, b * s),
            BinaryOp::SigmoidBackward => b * a * (1.0 - a),
            BinaryOp::TanhBackward => b * (1.0 - a * a),
            BinaryOp::Eq => select(a == b, 1.0, 0.0),
            BinaryOp::MaxHit => select(a == b || (a.is_nan() && b.is_nan()), 1.0, 0.0),
        }
    }
}

/// Reduction opcodes, as the elementwise tables (`REDUCE_<NAME>` in the shaders).
pub(crate) const REDUCE_OPCODES: [&str; 2] = ["SUM", "MAX"];

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
            ReduceOp::Max => select(v > acc || v.is_nan(), v, acc),
        }
    }
}
