//! `Tensor`: an immutable, reference-counted f32 array on a device, with the autograd node that
//! made it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::autograd::{self, GradStore, Node};
use crate::device::Device;
use crate::gpu::GpuBuffer;
use crate::shape::Shape;
use crate::{ensure, Error, Result};

/// Identity of a tensor (gradients are keyed by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The data of a tensor: a host vector or a device buffer, always contiguous.
pub(crate) enum Storage {
    Cpu(Vec<f32>),
    Gpu(GpuBuffer),
}

impl Drop for Storage {
    /// A host buffer goes back to the CPU backend's buffer cache for the next tensor of its size.
    fn drop(&mut self) {
        if let Storage::Cpu(v) = self {
            crate::cpu::recycle(std::mem::take(v));
        }
    }
}

impl Storage {
    pub(crate) fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(b) => Device::Gpu(b.ctx().clone()),
        }
    }
}

/// Runs a backend method on one storage, returning a storage on the same device. On the GPU,
/// `be` is `gpu::backend`'s: the GPU backend, behind the shadow decorator in shadow mode.
macro_rules! on_backend {
    ($storage:expr, $x:ident, $be:ident => $body:expr) => {
        match $storage {
            $crate::tensor::Storage::Cpu($x) => {
                let $be = $crate::cpu::CpuBackend;
                $crate::tensor::Storage::Cpu($body?)
            }
            $crate::tensor::Storage::Gpu($x) => {
                let backend = $crate::gpu::backend($x.ctx());
                let $be = backend.get();
                $crate::tensor::Storage::Gpu($body?)
            }
        }
    };
}

/// [`on_backend!`] for a method with two outputs (a pool's values and indices).
macro_rules! on_backend_pair {
    ($storage:expr, $x:ident, $be:ident => $body:expr) => {
        match $storage {
            $crate::tensor::Storage::Cpu($x) => {
                let $be = $crate::cpu::CpuBackend;
                let (a, b) = $body?;
                ($crate::tensor::Storage::Cpu(a), $crate::tensor::Storage::Cpu(b))
            }
            $crate::tensor::Storage::Gpu($x) => {
                let backend = $crate::gpu::backend($x.ctx());
                let $be = backend.get();
                let (a, b) = $body?;
                ($crate::tensor::Storage::Gpu(a), $crate::tensor::Storage::Gpu(b))
            }
        }
    };
}

/// Runs a backend method on two storages of the same device (else a device-mismatch error).
macro_rules! on_backend2 {
    ($op:expr, $a:expr, $b:expr, $x:ident, $y:ident, $be:ident => $body:expr) => {
        match ($a, $b) {
            ($crate::tensor::Storage::Cpu($x), $crate::tensor::Storage::Cpu($y)) => {
                let $be = $crate::cpu::CpuBackend;
                $crate::tensor::Storage::Cpu($body?)
            }
            ($crate::tensor::Storage::Gpu($x), $crate::tensor::Storage::Gpu($y))
                if std::sync::Arc::ptr_eq($x.ctx(), $y.ctx()) =>
            {
                let backend = $crate::gpu::backend($x.ctx());
                let $be = backend.get();
                $crate::tensor::Storage::Gpu($body?)
            }
            (l, r) => {
                return Err($crate::Error::DeviceMismatch {
                    op: $op,
                    lhs: l.device().name(),
                    rhs: r.device().name(),
                })
            }
        }
    };
}
pub(crate) use {on_backend, on_backend2, on_backend_pair};

/// A backend's storage type, taken out of a [`Storage`]: lets a call matched by `on_backend2!`
/// take further operands, optional ones included, of the same backend.
pub(crate) trait BackendData: Sized {
    fn of(s: &Storage) -> Option<&Self>;
    fn same_device(&self, other: &Self) -> bool;
    fn device(&self) -> Device;
}

impl BackendData for Vec<f32> {
    fn of(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Cpu(v) => Some(v),
            Storage::Gpu(_) => None,
        }
    }
    fn same_device(&self, _: &Self) -> bool {
        true
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
}

impl BackendData for GpuBuffer {
    fn of(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Gpu(b) => Some(b),
            Storage::Cpu(_) => None,
        }
    }
    fn same_device(&self, other: &Self) -> bool {
        Arc::ptr_eq(self.ctx(), other.ctx())
    }
    fn device(&self) -> Device {
        Device::Gpu(self.ctx().clone())
    }
}

/// `t`'s data as the same backend's type as `like`'s, or a device-mismatch error naming `op`.
pub(crate) fn same_backend<'a, T: BackendData>(
    op: &'static str, like: &T, t: &'a Tensor,
) -> Result<&'a T> {
    T::of(t.storage()).filter(|d| d.same_device(like)).ok_or_else(|| Error::DeviceMismatch {
        op,
        lhs: like.device().name(),
        rhs: t.device().name(),
    })
}

struct Inner {
    id: TensorId,
    shape: Shape,
    storage: Arc<Storage>,
    node: Option<Node>,
    is_var: bool,
}

/// An n-dimensional f32 array on a [`Device`]. Cloning is cheap (shared, immutable data).
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({}, {})", self.shape(), self.device().name())
    }
}

impl Tensor {
    pub(crate) fn from_storage(storage: Storage, shape: Shape) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            shape,
            storage: Arc::new(storage),
            node: None,
            is_var: false,
        }))
    }

    /// This tensor as the output of an op on `inputs`: records `backward` (gradients of the
    /// inputs from the output's gradient) when gradients are on and an input needs one.
    pub(crate) fn attach(
        &self, inputs: &[&Tensor],
        backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        if !(autograd::grad_enabled() && inputs.iter().any(|t| t.requires_grad())) {
            return self.clone();
        }
        let node = Node {
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            backward: Box::new(backward),
        };
        self.share_storage(self.shape().clone(), Some(node))
    }

    /// Same data, another shape (no copy); the caller checked the element count.
    pub(crate) fn share_storage(&self, shape: Shape, node: Option<Node>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            shape,
            storage: self.0.storage.clone(),
            node,
            is_var: false,
        }))
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.0.storage
    }
    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }
    /// The tensor's identity: shared by its clones, new for every other tensor.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }
    /// The size of each axis.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }
    /// The number of elements.
    pub fn elem_count(&self) -> usize {
        self.0.shape.elem_count()
    }
    /// `(n, c, h, w)` of a 4-d tensor.
    pub fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        self.0.shape.dims4()
    }
    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    /// Whether gradients flow to this tensor (a variable, or computed from one).
    pub fn requires_grad(&self) -> bool {
        self.0.is_var || self.0.node.is_some()
    }

    /// A tensor from row-major data.
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        shape.validate("from_vec")?;
        ensure!(
            data.len() == shape.elem_count(),
            "from_vec",
            "{} values do not fill shape {shape} ({} elements)",
            data.len(),
            shape.elem_count()
        );
        let storage = match device {
            Device::Cpu => Storage::Cpu(data),
            Device::Gpu(ctx) => Storage::Gpu(ctx.upload(&data, "from_vec")?),
        };
        Ok(Tensor::from_storage(storage, shape))
    }

    /// A tensor from row-major data, copied.
    pub fn from_slice(data: &[f32], shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    /// A tensor with the shape and values of an ndarray array.
    pub fn from_ndarray<S: Data<Elem = f32>, D: Dimension>(
        a: &ArrayBase<S, D>, device: &Device,
    ) -> Result<Tensor> {
        let data: Vec<f32> = a.iter().copied().collect();
        Tensor::from_vec(data, a.shape().to_vec(), device)
    }

    /// A tensor of `shape` with every element `value`.
    pub fn full(shape: impl Into<Shape>, value: f32, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        shape.validate("full")?;
        let n = shape.elem_count();
        let storage = match device {
            Device::Cpu => Storage::Cpu(crate::cpu::host_vec(n, value, "full")?),
            Device::Gpu(ctx) => Storage::Gpu(crate::gpu::full(ctx, n, value)?),
        };
        Ok(Tensor::from_storage(storage, shape))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 0.0, device)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 1.0, device)
    }

    pub(crate) fn ones_like(&self) -> Result<Tensor> {
        Tensor::full(self.shape().clone(), 1.0, &self.device())
    }

    /// `[start, start + 1, ...]` below `end`, like `torch.arange(start, end)`.
    pub fn arange(start: f32, end: f32, device: &Device) -> Result<Tensor> {
        ensure!(
            start.is_finite() && end.is_finite() && end > start,
            "arange",
            "need finite start < end, got {start}..{end}"
        );
        let len = (end - start).ceil();
        if len > crate::shape::MAX_ELEMENTS as f32 {
            crate::bail!(
                "arange",
                "{start}..{end} has {len} elements, more than a tensor can hold"
            );
        }
        let n = len as usize;
        let mut data = crate::cpu::host_vec(n, 0.0, "arange")?;
        for (i, v) in data.iter_mut().enumerate() {
            *v = start + i as f32;
        }
        Tensor::from_vec(data, [n], device)
    }

    /// Uniform values in `[0, 1)` from a seeded ChaCha8 stream: the same seed gives the same
    /// values on every device and platform.
    pub fn rand(shape: impl Into<Shape>, seed: u64, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        shape.validate("rand")?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = crate::cpu::host_vec(shape.elem_count(), 0.0, "rand")?;
        data.iter_mut().for_each(|v| *v = rng.random::<f32>());
        Tensor::from_vec(data, shape, device)
    }

    /// Standard normal values from a seeded ChaCha8 stream.
    pub fn randn(shape: impl Into<Shape>, seed: u64, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        shape.validate("randn")?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = crate::cpu::host_vec(shape.elem_count(), 0.0, "randn")?;
        data.iter_mut().for_each(|v| *v = StandardNormal.sample(&mut rng));
        Tensor::from_vec(data, shape, device)
    }

    /// The values in row-major order (waits for the device; in a web page, where nothing may
    /// wait, a GPU tensor's is an `Err`: await [`Tensor::to_vec_async`] there).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        match self.storage() {
            Storage::Cpu(v) => Ok(v.clone()),
            Storage::Gpu(b) => crate::gpu::runtime::block_on("to_vec", b.ctx().read_async(b)),
        }
    }

    /// [`Tensor::to_vec`] as a future, for a web page, which must not block: it resolves when
    /// the device has computed the values and copied them back. Natively it may be awaited too.
    pub async fn to_vec_async(&self) -> Result<Vec<f32>> {
        match self.storage() {
            Storage::Cpu(v) => Ok(v.clone()),
            Storage::Gpu(b) => b.ctx().read_async(b).await,
        }
    }

    /// [`Tensor::to_scalar`] as a future (see [`Tensor::to_vec_async`]).
    pub async fn to_scalar_async(&self) -> Result<f32> {
        self.check_scalar("to_scalar_async")?;
        Ok(self.to_vec_async().await?[0])
    }

    /// The rows of a 2-d tensor.
    pub fn to_vec2(&self) -> Result<Vec<Vec<f32>>> {
        let (_, cols) = self.shape().dims2()?;
        Ok(self.to_vec()?.chunks(cols).map(|r| r.to_vec()).collect())
    }

    /// The value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<f32> {
        self.check_scalar("to_scalar")?;
        Ok(self.to_vec()?[0])
    }

    fn check_scalar(&self, op: &'static str) -> Result<()> {
        ensure!(self.elem_count() == 1, op, "tensor of shape {} is not a scalar", self.shape());
        Ok(())
    }

    /// The values as an ndarray array of the same shape.
    pub fn to_ndarray(&self) -> Result<ArrayD<f32>> {
        ArrayD::from_shape_vec(IxDyn(self.dims()), self.to_vec()?)
            .map_err(|e| Error::Invalid { op: "to_ndarray", msg: e.to_string() })
    }

    /// A copy on `device`; gradients flow back to the source device.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if &self.device() == device {
            return Ok(self.clone());
        }
        let y = Tensor::from_vec(self.to_vec()?, self.shape().clone(), device)?;
        let src = self.device();
        Ok(y.attach(&[self], move |g| Ok(vec![Some(g.to_device(&src)?)])))
    }

    /// The same data without autograd history.
    pub fn detach(&self) -> Tensor {
        self.share_storage(self.shape().clone(), None)
    }

    pub(crate) fn as_var(&self) -> Tensor {
        self.with_id_as_var(TensorId::next())
    }

    pub(crate) fn with_id_as_var(&self, id: TensorId) -> Tensor {
        Tensor(Arc::new(Inner {
            id,
            shape: self.shape().clone(),
            storage: self.0.storage.clone(),
            node: None,
            is_var: true,
        }))
    }

    /// A leaf that gradients flow to (its value, detached from any history).
    pub fn requires_grad_(&self) -> Tensor {
        self.as_var()
    }

    /// Gradients of this scalar (a one-element tensor, seeded with 1) with respect to everything
    /// it depends on. As in PyTorch, any other tensor is an `Err`: give its upstream gradient
    /// to [`Tensor::backward_with`].
    pub fn backward(&self) -> Result<GradStore> {
        crate::ensure!(
            self.elem_count() == 1,
            "backward",
            "the gradient can be implied only for a scalar; this tensor has shape {}: pass its \
             upstream gradient to backward_with",
            self.shape()
        );
        autograd::backward(self, None)
    }

    /// Gradients with respect to everything this tensor depends on, for the upstream gradient
    /// `grad` (PyTorch's `y.backward(grad)`): `grad` has this tensor's shape and device.
    pub fn backward_with(&self, grad: &Tensor) -> Result<GradStore> {
        self.check_same_device("backward_with", grad)?;
        crate::ensure!(
            grad.shape() == self.shape(),
            "backward_with",
            "the gradient's shape {} differs from the tensor's {}",
            grad.shape(),
            self.shape()
        );
        autograd::backward(self, Some(grad))
    }

    pub(crate) fn check_same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(self.device_mismatch(op, other));
        }
        Ok(())
    }

    /// The error of `op` given this tensor and `other` on different devices.
    pub(crate) fn device_mismatch(&self, op: &'static str, other: &Tensor) -> Error {
        Error::DeviceMismatch { op, lhs: self.device().name(), rhs: other.device().name() }
    }
}
