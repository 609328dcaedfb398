//! convshade: a tensor engine for convolutional networks. Kernels are WGSL compute shaders run
//! through wgpu (Vulkan, Metal, DX12, GL, and software adapters); a CPU backend implements
//! every op too and checks every GPU result in the tests.
//!
//! ```
//! use convshade::{corr2d, Device, Tensor};
//!
//! # fn main() -> convshade::Result<()> {
//! let dev = Device::cpu();
//! let x = Tensor::arange(0.0, 9.0, &dev)?.reshape([3, 3])?;
//! let k = Tensor::arange(0.0, 4.0, &dev)?.reshape([2, 2])?;
//! let y = corr2d(&x, &k)?;
//! assert_eq!(y.to_vec2()?, vec![vec![19.0, 25.0], vec![37.0, 43.0]]);
//! # Ok(())
//! # }
//! ```
//!
//! Training uses variables and `backward`, on any device:
//!
//! ```
//! use convshade::{conv2d, Conv2dOptions, Device, Tensor, Var};
//!
//! # fn main() -> convshade::Result<()> {
//! let dev = Device::auto();
//! let x = Tensor::randn([8, 3, 32, 32], 0, &dev)?;
//! let w = Var::new(&Tensor::randn([16, 3, 3, 3], 1, &dev)?.mul_scalar(0.1)?);
//! let y = conv2d(&x, &w.as_tensor(), None, &Conv2dOptions::new().stride(2).padding(1))?;
//! assert_eq!(y.dims(), &[8, 16, 16, 16]);
//! let loss = y.relu()?.mean_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get_var(&w).unwrap().dims(), &[16, 3, 3, 3]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod autograd;
mod backend;
pub mod bench;
pub mod conformance;
mod cpu;
pub mod data;
pub mod device;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
pub mod gpu;
pub mod gradcheck;
pub mod io;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod schedule;
pub mod shape;
pub mod tensor;
#[doc(hidden)]
pub mod testing;
pub mod weights;

pub use autograd::{is_grad_enabled, no_grad, set_grad_enabled, GradStore, Var};
pub use cpu::release_cached_host_memory;
pub use device::Device;
pub use error::{Error, Result};
pub use gradcheck::gradcheck;
pub use ops::*;
pub use optim::{Adam, AdamW, Optimizer, Sgd};
pub use schedule::{CosineLr, LrSchedule, Scheduler, StepLr};
pub use shape::Shape;
pub use tensor::Tensor;
