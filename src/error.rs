//! Errors: every failure names the op (or file) it came from.

/// Everything that can go wrong in convshade.
#[derive(thiserror::Error, Clone)]
pub enum Error {
    /// A bad argument or shape given to an op.
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
    /// Operands live on different devices.
    #[error("{op}: operands are on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },
    /// No usable GPU adapter.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// An adapter failed the self-test run when its context was created.
    #[error("GPU adapter refused: {0}")]
    AdapterRefused(String),
    /// An error reported by wgpu (validation, out of memory, device lost).
    #[error("gpu: {0}")]
    Gpu(String),
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// A file was read but its content is malformed (NPY, JSON, manifest).
    #[error("{path}: malformed: {msg}")]
    Format { path: String, msg: String },
}

/// The message itself, so `fn main() -> convshade::Result<()>` prints a readable error.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// `Result` with convshade's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Returns early with [`Error::Invalid`] naming the op.
#[macro_export]
macro_rules! bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::Invalid { op: $op, msg: format!($($arg)*) })
    };
}

/// Returns early with [`Error::Invalid`] unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($op, $($arg)*);
        }
    };
}
