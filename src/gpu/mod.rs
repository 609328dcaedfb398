//! The GPU backend: every primitive of [`Backend`] as a WGSL dispatch (kernels in `shaders/`),
//! by family like the shaders: elementwise, reduce, gemm, conv, pool, upsample, pad. The context,
//! the shader registry and the buffer pool live in context, kernels and buffers.

mod adapters;
mod batch;
mod buffers;
mod channel;
mod context;
#[cfg(test)]
mod contract;
mod conv;
mod elementwise;
mod gemm;
mod kernels;
mod launch;
mod loops;
mod pad;
mod peak;
mod pool;
mod reduce;
pub mod selftest;
mod shadow;
mod split;
mod split_conv;
mod split_ops;
mod split_window;
mod tiles;
mod uniforms;
mod upsample;
mod window;

pub use adapters::{enumerate_adapters, AdapterSummary};
pub use buffers::{GpuBuffer, PoolStats};
pub use context::{GpuContext, GpuLimits, GpuOptions, LOOP_CAP};
pub use kernels::shader_sources;
pub use selftest::SelfTestReport;
pub use tiles::{GemmTiles, GemmTiling};

use std::sync::Arc;

use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, ConvSpec, GemmSpec, PadGeom, ReduceOp,
    StridedSpec, UnaryOp, UpsampleGeom,
};
use crate::cpu::CpuBackend;
use crate::shape::WindowGeom;
use crate::Result;
use shadow::{adaptive_shapes, pad_shapes, upsample_shapes, window_shapes, A, E};
use split::Rows;

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

// Every primitive goes through `checked`, which in shadow mode runs it on the CPU too.
impl Backend for GpuBackend {
    type Storage = GpuBuffer;

    fn unary(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        self.checked(
            "unary",
            || format!("{n} elements ({op:?})"),
            &[x],
            E,
            |g| g.unary_any(x, n, op),
            |c, h| c.unary(&h[0], n, op),
        )
    }

    fn binary(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<GpuBuffer> {
        self.checked(
            "binary",
            || format!("output {:?} ({op:?})", spec.out),
            &[a, b],
            E,
            |g| g.binary_any(a, b, op, spec),
            |c, h| c.binary(&h[0], &h[1], op, spec),
        )
    }

    fn reduce_axis(
        &self,
        x: &GpuBuffer,
        outer: usize,
        len: usize,
        inner: usize,
        op: ReduceOp,
    ) -> Result<GpuBuffer> {
        self.checked(
            "reduce",
            || format!("(outer, len, inner) = ({outer}, {len}, {inner}) ({op:?})"),
            &[x],
            A,
            |g| g.reduce_any(x, (outer, len, inner), op),
            |c, h| c.reduce_axis(&h[0], outer, len, inner, op),
        )
    }

    fn copy_strided(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        self.checked(
            "copy",
            || format!("output {:?}", spec.out),
            &[x],
            0.0,
            |g| g.copy_any(x, spec),
            |c, h| c.copy_strided(&h[0], spec),
        )
    }

    fn gemm(&self, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
        self.checked(
            "matmul",
            || format!("{} x ({}, {}) x ({}, {})", s.batch, s.m, s.k, s.k, s.n),
            &[a, b],
            A,
            |g| g.gemm_any(a, b, s),
            |c, h| c.gemm(&h[0], &h[1], s),
        )
    }

    fn conv2d(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        bias: Option<&GpuBuffer>,
        s: &ConvSpec,
        relu: bool,
    ) -> Result<GpuBuffer> {
        let inputs: Vec<&GpuBuffer> = [x, w].into_iter().chain(bias).collect();
        self.checked(
            "conv2d",
            || window_shapes(&s.g),
            &inputs,
            A,
            |g| g.conv2d_any(x, w, bias, s, relu),
            |c, h| c.conv2d(&h[0], &h[1], h.get(2), s, relu),
        )
    }

    fn conv2d_backward_input(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        self.checked(
            "conv2d_backward_input",
            || window_shapes(&s.g),
            &[grad, w],
            A,
            |g| g.conv2d_backward_input_any(grad, w, s),
            |c, h| c.conv2d_backward_input(&h[0], &h[1], s),
        )
    }

    fn conv2d_backward_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        self.checked(
            "conv2d_backward_weight",
            || window_shapes(&s.g),
            &[x, grad],
            A,
            |g| g.conv2d_backward_weight_any(x, grad, s),
            |c, h| c.conv2d_backward_weight(&h[0], &h[1], s),
        )
    }

    fn im2col(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.checked(
            "im2col",
            || window_shapes(g),
            &[x],
            0.0,
            |b| b.im2col_any(x, g),
            |c, h| c.im2col(&h[0], g),
        )
    }

    fn col2im(&self, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.checked(
            "col2im",
            || window_shapes(g),
            &[cols],
            A,
            |b| b.col2im_any(cols, g),
            |c, h| c.col2im(&h[0], g),
        )
    }

    fn depthwise_conv2d(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.checked(
            "depthwise_conv2d",
            || window_shapes(g),
            &[x, w],
            A,
            |b| b.depthwise_conv2d_any(x, w, g, mult),
            |c, h| c.depthwise_conv2d(&h[0], &h[1], g, mult),
        )
    }

    fn depthwise_conv2d_backward_input(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.checked(
            "depthwise_conv2d_backward_input",
            || window_shapes(g),
            &[grad, w],
            A,
            |b| b.depthwise_conv2d_backward_input_any(grad, w, g, mult),
            |c, h| c.depthwise_conv2d_backward_input(&h[0], &h[1], g, mult),
        )
    }

    fn depthwise_conv2d_backward_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.checked(
            "depthwise_conv2d_backward_weight",
            || window_shapes(g),
            &[x, grad],
            A,
            |b| b.depthwise_conv2d_backward_weight_any(x, grad, g, mult),
            |c, h| c.depthwise_conv2d_backward_weight(&h[0], &h[1], g, mult),
        )
    }

    fn max_pool2d(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<(GpuBuffer, GpuBuffer)> {
        let (out, idx) = self.max_pool2d_any(x, g)?;
        if !self.on() {
            return Ok((out, idx));
        }
        let (want, want_idx) = CpuBackend.max_pool2d(&self.host(&[x])?[0], g)?;
        let out = self.verify("max_pool2d", window_shapes(g), out, want, 0.0)?;
        let idx = self.verify("max_pool2d indices", window_shapes(g), idx, want_idx, 0.0)?;
        Ok((out, idx))
    }

    fn max_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<GpuBuffer> {
        self.checked(
            "max_pool2d_backward",
            || window_shapes(g),
            &[grad, indices],
            A,
            |b| b.max_pool2d_backward_any(grad, indices, g),
            |c, h| c.max_pool2d_backward(&h[0], &h[1], g),
        )
    }

    fn avg_pool2d(&self, x: &GpuBuffer, g: &WindowGeom, opts: AvgPoolOpts) -> Result<GpuBuffer> {
        self.checked(
            "avg_pool2d",
            || window_shapes(g),
            &[x],
            A,
            |b| b.avg_pool2d_any(false, x, g, opts),
            |c, h| c.avg_pool2d(&h[0], g, opts),
        )
    }

    fn avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        self.checked(
            "avg_pool2d_backward",
            || window_shapes(g),
            &[grad],
            A,
            |b| b.avg_pool2d_any(true, grad, g, opts),
            |c, h| c.avg_pool2d_backward(&h[0], g, opts),
        )
    }

    fn adaptive_avg_pool2d(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        self.checked(
            "adaptive_avg_pool2d",
            || adaptive_shapes(dims, out),
            &[x],
            A,
            |b| b.adaptive_avg_pool2d_any("adaptive_fwd", x, dims, out),
            |c, h| c.adaptive_avg_pool2d(&h[0], dims, out),
        )
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        self.checked(
            "adaptive_avg_pool2d_backward",
            || adaptive_shapes(dims, out),
            &[grad],
            A,
            |b| b.adaptive_avg_pool2d_any("adaptive_bwd", grad, dims, out),
            |c, h| c.adaptive_avg_pool2d_backward(&h[0], dims, out),
        )
    }

    fn adaptive_max_pool2d(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let (y, idx) = self.adaptive_max_pool2d_any(x, dims, out)?;
        if !self.on() {
            return Ok((y, idx));
        }
        let (want, want_idx) = CpuBackend.adaptive_max_pool2d(&self.host(&[x])?[0], dims, out)?;
        let shapes = || adaptive_shapes(dims, out);
        let y = self.verify("adaptive_max_pool2d", shapes(), y, want, 0.0)?;
        let idx = self.verify("adaptive_max_pool2d indices", shapes(), idx, want_idx, 0.0)?;
        Ok((y, idx))
    }

    fn adaptive_max_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        self.checked(
            "adaptive_max_pool2d_backward",
            || adaptive_shapes(dims, out),
            &[grad, indices],
            A,
            |b| b.adaptive_max_pool2d_backward_any(grad, indices, dims, out),
            |c, h| c.adaptive_max_pool2d_backward(&h[0], &h[1], dims, out),
        )
    }

    fn channel_dot(
        &self,
        x: &GpuBuffer,
        mean: &GpuBuffer,
        g: Option<&GpuBuffer>,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let mut inputs = vec![x, mean];
        inputs.extend(g);
        self.checked(
            "batch_norm2d channel_dot",
            || format!("{dims:?}"),
            &inputs,
            A,
            |b| b.channel_dot_any(x, mean, g, dims),
            |c, h| c.channel_dot(&h[0], &h[1], h.get(2), dims),
        )
    }

    fn channel_combine(
        &self,
        u: &GpuBuffer,
        a: &GpuBuffer,
        vb: Option<(&GpuBuffer, &GpuBuffer)>,
        k: &GpuBuffer,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        if self.ctx.limits.max_storage_buffers_per_shader_stage < channel::COMBINE_BUFFERS {
            return crate::backend::channel::channel_combine(self, u, a, vb, k, dims);
        }
        let mut inputs = vec![u, a, k];
        inputs.extend(vb.map(|(v, b)| [v, b]).into_iter().flatten());
        self.checked(
            "batch_norm2d channel_combine",
            || format!("{dims:?}"),
            &inputs,
            E,
            |be| be.channel_combine_any(u, a, vb, k, dims),
            |c, h| {
                let vb = (h.len() == 5).then(|| (&h[3], &h[4]));
                c.channel_combine(&h[0], &h[1], vb, &h[2], dims)
            },
        )
    }

    fn pad2d(&self, x: &GpuBuffer, g: &PadGeom) -> Result<GpuBuffer> {
        let run = |b: &Self| {
            let ins = [Rows::per(x, g.h * g.w)];
            b.by_items("pad", g.planes, &ins, g.oh * g.ow, |p, n| {
                b.pad("pad_fwd", p[0], &PadGeom { planes: n, ..*g })
            })
        };
        self.checked(
            "pad",
            || pad_shapes(g),
            &[x],
            0.0,
            run,
            |c, h| c.pad2d(&h[0], g),
        )
    }

    fn pad2d_backward(&self, grad: &GpuBuffer, g: &PadGeom) -> Result<GpuBuffer> {
        let run = |b: &Self| {
            let ins = [Rows::per(grad, g.oh * g.ow)];
            b.by_items("pad_backward", g.planes, &ins, g.h * g.w, |p, n| {
                b.pad("pad_bwd", p[0], &PadGeom { planes: n, ..*g })
            })
        };
        let cpu = |c: &CpuBackend, h: &[Vec<f32>]| c.pad2d_backward(&h[0], g);
        self.checked("pad_backward", || pad_shapes(g), &[grad], A, run, cpu)
    }

    fn upsample_nearest(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_nearest",
            || upsample_shapes(g),
            &[x],
            0.0,
            |b| b.upsample_any("nearest_fwd", x, g),
            |c, h| c.upsample_nearest(&h[0], g),
        )
    }

    fn upsample_nearest_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_nearest_backward",
            || upsample_shapes(g),
            &[grad],
            A,
            |b| b.upsample_any("nearest_bwd", grad, g),
            |c, h| c.upsample_nearest_backward(&h[0], g),
        )
    }

    fn upsample_bilinear(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_bilinear",
            || upsample_shapes(g),
            &[x],
            E,
            |b| b.upsample_any("bilinear_fwd", x, g),
            |c, h| c.upsample_bilinear(&h[0], g),
        )
    }

    fn upsample_bilinear_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_bilinear_backward",
            || upsample_shapes(g),
            &[grad],
            A,
            |b| b.upsample_any("bilinear_bwd", grad, g),
            |c, h| c.upsample_bilinear_backward(&h[0], g),
        )
    }
}
