//! The GPU backend: every primitive of [`Backend`] as a WGSL dispatch (kernels in `shaders/`),
//! by family like the shaders: elementwise, reduce, gemm, conv, pool, upsample. The context,
//! the shader registry and the buffer pool live in context, kernels and buffers.

mod adapters;
mod batch;
mod buffers;
mod context;
#[cfg(test)]
mod contract;
mod conv;
mod elementwise;
mod gemm;
mod kernels;
mod launch;
mod loops;
mod pool;
mod reduce;
pub mod selftest;
mod shadow;
mod uniforms;
mod upsample;
mod window;

pub use adapters::{enumerate_adapters, AdapterSummary};
pub use buffers::{GpuBuffer, PoolStats};
pub use context::{GpuContext, GpuLimits, GpuOptions, LOOP_CAP};
pub use kernels::shader_sources;
pub use selftest::SelfTestReport;
pub(crate) use shadow::Checked;

use std::sync::Arc;

use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, GemmSpec, ReduceOp, StridedSpec, UnaryOp,
    UpsampleGeom,
};
use crate::shape::WindowGeom;
use crate::Result;

/// The GPU backend: a handle on one context.
#[derive(Clone, Debug)]
pub struct GpuBackend {
    pub(crate) ctx: Arc<GpuContext>,
}

impl GpuBackend {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        GpuBackend { ctx }
    }
}

impl Backend for GpuBackend {
    type Storage = GpuBuffer;

    fn unary(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        self.unary_op(x, n, op)
    }

    fn binary(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<GpuBuffer> {
        self.binary_op(a, b, op, spec)
    }

    fn reduce_axis(
        &self,
        x: &GpuBuffer,
        outer: usize,
        len: usize,
        inner: usize,
        op: ReduceOp,
    ) -> Result<GpuBuffer> {
        self.reduce(x, outer, len, inner, op)
    }

    fn copy_strided(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        self.copy(x, spec)
    }

    fn gemm(&self, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
        self.gemm_split(a, b, s)
    }

    fn im2col(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.im2col_op(x, g)
    }

    fn col2im(&self, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.col2im_passes(cols, g)
    }

    fn depthwise_conv2d(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * mult * g.oh * g.ow;
        self.depthwise("dw_fwd", x, w, g, mult, total, g.kh)
    }

    fn depthwise_conv2d_backward_input(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.depthwise("dw_bwd_input", grad, w, g, mult, total, mult * g.kh)
    }

    fn depthwise_conv2d_backward_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.depthwise_weight(x, grad, g, mult)
    }

    fn max_pool2d(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<(GpuBuffer, GpuBuffer)> {
        self.max_pool_fwd(x, g)
    }

    fn max_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<GpuBuffer> {
        self.max_pool_bwd(grad, indices, g)
    }

    fn avg_pool2d(&self, x: &GpuBuffer, g: &WindowGeom, opts: AvgPoolOpts) -> Result<GpuBuffer> {
        self.avg_pool_fwd(x, g, opts)
    }

    fn avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        self.avg_pool_bwd(grad, g, opts)
    }

    fn adaptive_avg_pool2d(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        self.adaptive_fwd(x, dims, out)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        self.adaptive_bwd(grad, dims, out)
    }

    fn upsample_nearest(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.upsample_fwd("nearest_fwd", x, g)
    }

    fn upsample_nearest_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.upsample_bwd("nearest_bwd", grad, g)
    }

    fn upsample_bilinear(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.upsample_fwd("bilinear_fwd", x, g)
    }

    fn upsample_bilinear_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.upsample_bwd("bilinear_bwd", grad, g)
    }
}
