//! Errors: every failure names the op (or file) it came from, and each kind of failure is a
//! variant of its own, so a program can tell them apart without reading the message.

/// Everything that can go wrong in convshade.
#[derive(thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument or shape given to an op.
    #[error("{op}: {msg}")]
    Invalid {
        /// The op that refused its arguments.
        op: &'static str,
        /// What was wrong with them.
        msg: String,
    },
    /// Operands live on different devices.
    #[error("{op}: operands are on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        /// The op given the operands.
        op: &'static str,
        /// The name of the first operand's device.
        lhs: String,
        /// The name of the other operand's device.
        rhs: String,
    },
    /// Work too large for the device: an index past the kernels' 32-bit range, or one piece of
    /// an op that cannot be cut further past one storage binding.
    #[error("{op}: {msg}")]
    TooLarge {
        /// The op whose work is too large.
        op: &'static str,
        /// Which limit the work passes.
        msg: String,
    },
    /// The device's memory (or `GpuOptions::memory_limit`), or the host's, cannot hold an
    /// allocation.
    #[error("{op}: out of memory: {msg}")]
    OutOfMemory {
        /// The op that needed the allocation.
        op: &'static str,
        /// The allocation that failed, or the driver's message.
        msg: String,
    },
    /// The device was lost (a driver reset, an unplugged GPU): every later call on its context
    /// fails; a new device may work.
    #[error("gpu: device lost{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    DeviceLost(String),
    /// No usable GPU adapter.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// An adapter failed the self-test run when its context was created.
    #[error("GPU adapter refused: {0}")]
    AdapterRefused(String),
    /// Shadow mode (`CONVSHADE_CHECK=1`) found the GPU's result of an op unlike the CPU's.
    #[error("shadow check: {op} on {shapes}: GPU and CPU disagree: {detail}")]
    ShadowMismatch {
        /// The op checked.
        op: &'static str,
        /// The shapes of the op's operands.
        shapes: String,
        /// Where and by how much the two results differ.
        detail: String,
    },
    /// A call that waits for the device, made where nothing may block (a web page's thread): its
    /// `_async` form (`Tensor::to_vec_async`, `Device::gpu_async`) is the one to await there.
    #[error(
        "{op}: waits for the device, which a web page's thread may not do; await its async form"
    )]
    WouldBlock {
        /// The blocking call.
        op: &'static str,
    },
    /// Any other error the GPU driver reported (validation, internal), or work that depended on
    /// a batch that failed.
    #[error("gpu: {0}")]
    Gpu(String),
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io {
        /// The file's path.
        path: String,
        /// The error the system reported.
        msg: String,
    },
    /// A file was read but its content is malformed (NPY, JSON, manifest).
    #[error("{path}: malformed: {msg}")]
    Format {
        /// The file's path.
        path: String,
        /// What is malformed in it.
        msg: String,
    },
    /// Processes training together disagree (their models, their plans) or cannot start.
    #[error("{op}: {msg}")]
    Distributed {
        /// The operation that found it.
        op: &'static str,
        /// What differs, naming the ranks.
        msg: String,
    },
}

impl Error {
    /// The op named by an error that names one.
    pub fn op(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { op, .. }
            | Error::DeviceMismatch { op, .. }
            | Error::TooLarge { op, .. }
            | Error::OutOfMemory { op, .. }
            | Error::ShadowMismatch { op, .. } => Some(op),
            _ => None,
        }
    }
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
