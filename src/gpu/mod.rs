//! The GPU backend: every primitive of the engine's backend trait as WGSL kernels through wgpu.
//!
//! - `runtime/`: below everything, the context (adapter and self-test, device and queue, buffer
//!   pool, batching, pipeline cache, uniforms, error state) and the typed `Kernel`
//!   handle every launch goes through.
//! - The kernel families, one file each beside its WGSL in `shaders/`: `elementwise`, `reduce`,
//!   `gemm`, `conv` (the implicit convolutions), `unfold`, `depthwise`, `pool`, `upsample`,
//!   `pad`, `channel`. Each holds its typed kernels, its launches, and how it is cut past one
//!   storage binding.
//! - `split/`: the one mechanism that runs work past a binding in pieces, by the cut a family
//!   names (items, a strided view, bands of rows).
//! - `shadow`: shadow mode, a decorator over the backend.
//!
//! `impl Backend for GpuBackend` below is the table of contents: one line per primitive, naming
//! its family.

mod channel;
#[cfg(test)]
mod contract;
mod conv;
mod depthwise;
pub(crate) mod elementwise;
mod gemm;
pub(crate) mod gemm_direct;
mod gemm_direct_kernels;
pub(crate) mod gemm_subgroup;
mod pad;
mod peak;
mod pool;
mod reduce;
pub(crate) mod runtime;
mod shadow;
mod slice;
mod split;
mod unfold;
mod upsample;
mod window;

pub(crate) use peak::fma_peak_gflops;
pub use runtime::{
    enumerate_adapters, AdapterSummary, GemmTiles, GemmTiling, GpuBuffer, GpuContext, GpuLimits,
    GpuOptions, PoolStats, SelfTestReport, Tuning, LOOP_CAP,
};

use std::sync::Arc;

use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, ConvSpec, GemmSpec, PadGeom, ReduceOp,
    SliceSpec, StridedSpec, UnaryOp, UpsampleGeom,
};
use crate::shape::WindowGeom;
use crate::Result;
use upsample::Mode;

/// Every WGSL module, for the contract checks and [`shader_sources`].
pub(crate) static MODULES: [&runtime::Module; 16] = [
    &elementwise::UNARY_WGSL,
    &elementwise::BINARY_WGSL,
    &elementwise::COPY_WGSL,
    &slice::SLICE_WGSL,
    &reduce::REDUCE_WGSL,
    &reduce::REDUCE_SUBGROUPS_WGSL,
    &gemm::GEMM_WGSL,
    &gemm::GEMM_SUBGROUPS_WGSL,
    &unfold::UNFOLD_WGSL,
    &depthwise::DEPTHWISE_WGSL,
    &pool::POOL_WGSL,
    &upsample::UPSAMPLE_WGSL,
    &pad::PAD_WGSL,
    &channel::CHANNEL_WGSL,
    &runtime::selftest::MODULE,
    &peak::PEAK_WGSL,
];

/// Every kernel, for the contract checks.
#[cfg(test)]
pub(crate) fn kernels() -> Vec<&'static runtime::kernel::KernelInfo> {
    use runtime::selftest as st;
    let gemm_variants = gemm_direct_kernels::DIRECT_KERNELS.iter();
    let gemm_variants = gemm_variants.chain(&gemm_direct_kernels::SUBGROUP_KERNELS);
    let mut all: Vec<_> = gemm_variants.map(|k| &k.info).collect();
    all.extend([
        &elementwise::UNARY.info,
        &elementwise::FILL.info,
        &elementwise::BINARY.info,
        &elementwise::BINARY4.info,
        &elementwise::COPY.info,
        &slice::SLICE_ASSIGN.info,
        &reduce::SUM_NARROW.info,
        &reduce::SUM_WIDE.info,
        &reduce::SUM_WIDE_SUBGROUPS.info,
        &gemm::GEMM.info,
        &conv::CONV_FWD.info,
        &conv::CONV_WGRAD.info,
        &conv::CONV_DGRAD.info,
        &conv::CONV_DGRAD_STRIDED.info,
        &conv::CONV_DGRAD_AS_FWD.info,
        &unfold::IM2COL.info,
        &unfold::COL2IM.info,
        &depthwise::FORWARD.info,
        &depthwise::INPUT_GRAD.info,
        &depthwise::WEIGHT_GRAD.info,
        &pool::MAX_FWD.info,
        &pool::MAX_FWD_TILED.info,
        &pool::MAX_BWD.info,
        &pool::MAX_BWD_TILED.info,
        &pool::AVG_FWD.info,
        &pool::AVG_BWD.info,
        &pool::ADAPTIVE_FWD.info,
        &pool::ADAPTIVE_BWD.info,
        &pool::ADAPTIVE_MAX_FWD.info,
        &pool::ADAPTIVE_MAX_BWD.info,
        &upsample::NEAREST_FWD.info,
        &upsample::NEAREST_BWD.info,
        &upsample::BILINEAR_FWD.info,
        &upsample::BILINEAR_BWD.info,
        &pad::PAD_FWD.info,
        &pad::PAD_BWD.info,
        &channel::DOT.info,
        &channel::COMBINE.info,
        &st::LOOP.info,
        &st::BARRIER.info,
        &st::GRID.info,
        &st::OFFSET.info,
        &peak::FMA_PEAK.info,
    ]);
    all
}

/// The GEMM's kernels as the device compiles them, every variant's (what a tuned choice was
/// timed on).
pub(crate) fn gemm_source() -> &'static str {
    gemm::GEMM_SUBGROUPS_WGSL.source()
}

/// Every WGSL module with its name, as the device compiles it, for tools and tests.
pub fn shader_sources() -> Vec<(&'static str, &'static str)> {
    MODULES.iter().map(|m| (m.name, m.source())).collect()
}

/// The GPU backend: a handle on one context.
#[derive(Clone, Debug)]
pub(crate) struct GpuBackend {
    ctx: Arc<GpuContext>,
}

/// The backend of a context: the GPU backend, or in shadow mode the same behind the decorator.
pub(crate) enum Backends {
    Plain(GpuBackend),
    Checked(shadow::Shadow<GpuBackend>),
}

impl Backends {
    /// The backend to call.
    pub(crate) fn get(&self) -> &dyn Backend<Storage = GpuBuffer> {
        match self {
            Backends::Plain(b) => b,
            Backends::Checked(s) => s,
        }
    }
}

/// The backend for a context: the GPU backend, behind the shadow decorator in shadow mode.
pub(crate) fn backend(ctx: &Arc<GpuContext>) -> Backends {
    let gpu = GpuBackend { ctx: ctx.clone() };
    match ctx.check_mode() {
        true => Backends::Checked(shadow::Shadow::new(gpu, ctx.clone())),
        false => Backends::Plain(gpu),
    }
}

/// A buffer of `n` copies of `value` (in parts past one binding).
pub(crate) fn full(ctx: &Arc<GpuContext>, n: usize, value: f32) -> Result<GpuBuffer> {
    elementwise::full(ctx, n, value)
}

type S = GpuBuffer;
type Dims = (usize, usize, usize, usize);

impl Backend for GpuBackend {
    type Storage = GpuBuffer;

    fn unary(&self, x: &S, n: usize, op: UnaryOp) -> Result<S> {
        elementwise::unary(&self.ctx, x, n, op)
    }
    fn binary(&self, a: &S, b: &S, op: BinaryOp, spec: &BroadcastSpec) -> Result<S> {
        elementwise::binary(&self.ctx, a, b, op, spec)
    }
    fn reduce_axis(
        &self, x: &S, outer: usize, len: usize, inner: usize, op: ReduceOp,
    ) -> Result<S> {
        reduce::reduce(&self.ctx, x, (outer, len, inner), op)
    }
    fn copy_strided(&self, x: &S, spec: &StridedSpec) -> Result<S> {
        elementwise::copy(&self.ctx, x, spec)
    }
    fn slice_assign(&self, base: &S, value: &S, spec: &SliceSpec) -> Result<S> {
        slice::slice_assign(&self.ctx, base, value, spec)
    }
    fn gemm(&self, a: &S, b: &S, spec: &GemmSpec) -> Result<S> {
        gemm::gemm(&self.ctx, a, b, spec)
    }
    fn gemm_bias_relu(
        &self, a: &S, b: &S, spec: &GemmSpec, bias: Option<&S>, relu: bool,
    ) -> Result<S> {
        match gemm::gemm_bias_relu(&self.ctx, (a, b), spec, bias, relu)? {
            Some(y) => Ok(y),
            None => crate::backend::gemm_bias_relu_unfused(self, a, b, spec, bias, relu),
        }
    }
    fn conv2d(&self, x: &S, w: &S, bias: Option<&S>, s: &ConvSpec, relu: bool) -> Result<S> {
        conv::forward(&self.ctx, x, w, bias, s, relu)
    }
    fn conv2d_backward_input(&self, grad: &S, w: &S, s: &ConvSpec) -> Result<S> {
        conv::backward_input(&self.ctx, grad, w, s)
    }
    fn conv2d_backward_weight(&self, x: &S, grad: &S, s: &ConvSpec) -> Result<S> {
        conv::backward_weight(&self.ctx, x, grad, s)
    }
    fn im2col(&self, x: &S, g: &WindowGeom) -> Result<S> {
        unfold::im2col(&self.ctx, x, g)
    }
    fn col2im(&self, cols: &S, g: &WindowGeom) -> Result<S> {
        unfold::col2im(&self.ctx, cols, g)
    }
    fn depthwise_conv2d(&self, x: &S, w: &S, g: &WindowGeom, mult: usize) -> Result<S> {
        depthwise::forward(&self.ctx, x, w, g, mult)
    }
    fn depthwise_conv2d_backward_input(
        &self, grad: &S, w: &S, g: &WindowGeom, mult: usize,
    ) -> Result<S> {
        depthwise::backward_input(&self.ctx, grad, w, g, mult)
    }
    fn depthwise_conv2d_backward_weight(
        &self, x: &S, grad: &S, g: &WindowGeom, mult: usize,
    ) -> Result<S> {
        depthwise::backward_weight(&self.ctx, x, grad, g, mult)
    }
    fn max_pool2d(&self, x: &S, g: &WindowGeom) -> Result<(S, S)> {
        pool::max_pool(&self.ctx, x, g)
    }
    fn max_pool2d_backward(&self, grad: &S, indices: &S, g: &WindowGeom) -> Result<S> {
        pool::max_pool_backward(&self.ctx, grad, indices, g)
    }
    fn avg_pool2d(&self, x: &S, g: &WindowGeom, opts: AvgPoolOpts) -> Result<S> {
        pool::avg_pool(&self.ctx, false, x, g, opts)
    }
    fn avg_pool2d_backward(&self, grad: &S, g: &WindowGeom, opts: AvgPoolOpts) -> Result<S> {
        pool::avg_pool(&self.ctx, true, grad, g, opts)
    }
    fn adaptive_avg_pool2d(&self, x: &S, dims: Dims, out: (usize, usize)) -> Result<S> {
        pool::adaptive_avg_pool(&self.ctx, false, x, dims, out)
    }
    fn adaptive_avg_pool2d_backward(&self, grad: &S, dims: Dims, out: (usize, usize)) -> Result<S> {
        pool::adaptive_avg_pool(&self.ctx, true, grad, dims, out)
    }
    fn adaptive_max_pool2d(&self, x: &S, dims: Dims, out: (usize, usize)) -> Result<(S, S)> {
        pool::adaptive_max_pool(&self.ctx, x, dims, out)
    }
    fn adaptive_max_pool2d_backward(
        &self, grad: &S, indices: &S, dims: Dims, out: (usize, usize),
    ) -> Result<S> {
        pool::adaptive_max_pool_backward(&self.ctx, grad, indices, dims, out)
    }
    fn channel_dot(
        &self, x: &S, mean: &S, g: Option<&S>, dims: (usize, usize, usize),
    ) -> Result<S> {
        channel::dot(&self.ctx, x, mean, g, dims)
    }
    fn channel_combine(
        &self, u: &S, a: &S, vb: Option<(&S, &S)>, k: &S, dims: (usize, usize, usize),
    ) -> Result<S> {
        // adapters with fewer storage buffers per stage take the composed default
        if self.ctx.limits().max_storage_buffers_per_shader_stage < channel::COMBINE_BUFFERS {
            return crate::backend::channel::channel_combine(self, u, a, vb, k, dims);
        }
        channel::combine(&self.ctx, u, a, vb, k, dims)
    }
    fn channel_affine(
        &self, u: &S, a: &S, k: &S, residual: Option<&S>, relu: bool, dims: (usize, usize, usize),
    ) -> Result<S> {
        match channel::affine(&self.ctx, u, a, k, residual, relu, dims)? {
            Some(y) => Ok(y),
            None => crate::backend::channel::channel_affine(self, u, a, k, residual, relu, dims),
        }
    }
    fn pad2d(&self, x: &S, g: &PadGeom) -> Result<S> {
        pad::forward(&self.ctx, x, g)
    }
    fn pad2d_backward(&self, grad: &S, g: &PadGeom) -> Result<S> {
        pad::backward(&self.ctx, grad, g)
    }
    fn upsample_nearest(&self, x: &S, g: &UpsampleGeom) -> Result<S> {
        upsample::forward(&self.ctx, Mode::Nearest, x, g)
    }
    fn upsample_nearest_backward(&self, grad: &S, g: &UpsampleGeom) -> Result<S> {
        upsample::backward(&self.ctx, Mode::Nearest, grad, g)
    }
    fn upsample_bilinear(&self, x: &S, g: &UpsampleGeom) -> Result<S> {
        upsample::forward(&self.ctx, Mode::Bilinear, x, g)
    }
    fn upsample_bilinear_backward(&self, grad: &S, g: &UpsampleGeom) -> Result<S> {
        upsample::backward(&self.ctx, Mode::Bilinear, grad, g)
    }
}
