//! The CPU backend: plain loops over contiguous `Vec<f32>` buffers, threaded with rayon, and
//! packed SIMD GEMMs from the `gemm` crate. One file per op family, as in `shaders/`.

mod channel;
mod conv;
mod depthwise;
mod elementwise;
mod gemm;
mod host;
#[doc(hidden)]
pub mod oracle;
mod pad;
mod pool;
mod recycle;
mod reduce;
mod slice;
mod unfold;
mod upsample;
pub(crate) mod volume_conv;
pub(crate) mod volume_pool;
pub(crate) mod volume_rows;

pub(crate) use host::host_vec;
pub(crate) use recycle::give as recycle;
pub use recycle::release_cached_host_memory;

use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, ConvSpec, GemmSpec, PadGeom, ReduceOp,
    SliceSpec, StridedSpec, UnaryOp, UpsampleGeom,
};
use crate::shape::WindowGeom;
use crate::Result;

/// The CPU backend. Stateless: all storage is `Vec<f32>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    type Storage = Vec<f32>;

    fn unary(&self, x: &Vec<f32>, n: usize, op: UnaryOp) -> Result<Vec<f32>> {
        elementwise::unary(x, n, op)
    }

    fn binary(
        &self, a: &Vec<f32>, b: &Vec<f32>, op: BinaryOp, spec: &BroadcastSpec,
    ) -> Result<Vec<f32>> {
        elementwise::binary(a, b, op, spec)
    }

    fn reduce_axis(
        &self, x: &Vec<f32>, outer: usize, len: usize, inner: usize, op: ReduceOp,
    ) -> Result<Vec<f32>> {
        reduce::reduce_axis(x, outer, len, inner, op)
    }

    fn copy_strided(&self, x: &Vec<f32>, spec: &StridedSpec) -> Result<Vec<f32>> {
        elementwise::copy_strided(x, spec)
    }

    fn slice_assign(&self, base: &Vec<f32>, value: &Vec<f32>, s: &SliceSpec) -> Result<Vec<f32>> {
        slice::slice_assign(base, value, s)
    }

    fn gemm(&self, a: &Vec<f32>, b: &Vec<f32>, s: &GemmSpec) -> Result<Vec<f32>> {
        gemm::gemm(a, b, s)
    }

    fn im2col(&self, x: &Vec<f32>, g: &WindowGeom) -> Result<Vec<f32>> {
        unfold::im2col(x, g)
    }

    fn col2im(&self, cols: &Vec<f32>, g: &WindowGeom) -> Result<Vec<f32>> {
        unfold::col2im(cols, g)
    }

    fn conv2d(
        &self, x: &Vec<f32>, w: &Vec<f32>, bias: Option<&Vec<f32>>, s: &ConvSpec, relu: bool,
    ) -> Result<Vec<f32>> {
        conv::conv2d(x, w, bias.map(|b| &b[..]), s, relu)
    }

    fn conv2d_backward_input(
        &self, grad: &Vec<f32>, w: &Vec<f32>, s: &ConvSpec,
    ) -> Result<Vec<f32>> {
        conv::conv2d_backward_input(grad, w, s)
    }

    fn conv2d_backward_weight(
        &self, x: &Vec<f32>, grad: &Vec<f32>, s: &ConvSpec,
    ) -> Result<Vec<f32>> {
        conv::conv2d_backward_weight(x, grad, s)
    }

    fn depthwise_conv2d(
        &self, x: &Vec<f32>, w: &Vec<f32>, g: &WindowGeom, mult: usize,
    ) -> Result<Vec<f32>> {
        depthwise::depthwise_conv2d(x, w, g, mult)
    }

    fn depthwise_conv2d_backward_input(
        &self, grad: &Vec<f32>, w: &Vec<f32>, g: &WindowGeom, mult: usize,
    ) -> Result<Vec<f32>> {
        depthwise::depthwise_conv2d_backward_input(grad, w, g, mult)
    }

    fn depthwise_conv2d_backward_weight(
        &self, x: &Vec<f32>, grad: &Vec<f32>, g: &WindowGeom, mult: usize,
    ) -> Result<Vec<f32>> {
        depthwise::depthwise_conv2d_backward_weight(x, grad, g, mult)
    }

    fn max_pool2d(&self, x: &Vec<f32>, g: &WindowGeom) -> Result<(Vec<f32>, Vec<f32>)> {
        pool::max_pool2d(x, g)
    }

    fn max_pool2d_backward(
        &self, grad: &Vec<f32>, indices: &Vec<f32>, g: &WindowGeom,
    ) -> Result<Vec<f32>> {
        pool::max_pool2d_backward(grad, indices, g)
    }

    fn avg_pool2d(&self, x: &Vec<f32>, g: &WindowGeom, opts: AvgPoolOpts) -> Result<Vec<f32>> {
        pool::avg_pool2d(x, g, opts)
    }

    fn avg_pool2d_backward(
        &self, grad: &Vec<f32>, g: &WindowGeom, opts: AvgPoolOpts,
    ) -> Result<Vec<f32>> {
        pool::avg_pool2d_backward(grad, g, opts)
    }

    fn adaptive_avg_pool2d(
        &self, x: &Vec<f32>, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<Vec<f32>> {
        pool::adaptive_avg_pool2d(x, dims, out)
    }

    fn adaptive_avg_pool2d_backward(
        &self, grad: &Vec<f32>, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<Vec<f32>> {
        pool::adaptive_avg_pool2d_backward(grad, dims, out)
    }

    fn adaptive_max_pool2d(
        &self, x: &Vec<f32>, dims: (usize, usize, usize, usize), out: (usize, usize),
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        pool::adaptive_max_pool2d(x, dims, out)
    }

    fn adaptive_max_pool2d_backward(
        &self, grad: &Vec<f32>, indices: &Vec<f32>, dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>> {
        pool::adaptive_max_pool2d_backward(grad, indices, dims, out)
    }

    fn channel_dot(
        &self, x: &Vec<f32>, mean: &Vec<f32>, g: Option<&Vec<f32>>, dims: (usize, usize, usize),
    ) -> Result<Vec<f32>> {
        channel::channel_dot(x, mean, g.map(|v| v.as_slice()), dims)
    }

    fn channel_combine(
        &self, u: &Vec<f32>, a: &Vec<f32>, vb: Option<(&Vec<f32>, &Vec<f32>)>, k: &Vec<f32>,
        dims: (usize, usize, usize),
    ) -> Result<Vec<f32>> {
        let vb = vb.map(|(v, b)| (v.as_slice(), b.as_slice()));
        channel::channel_combine(u, a, vb, k, dims)
    }

    fn channel_affine(
        &self, u: &Vec<f32>, a: &Vec<f32>, k: &Vec<f32>, residual: Option<&Vec<f32>>, relu: bool,
        dims: (usize, usize, usize),
    ) -> Result<Vec<f32>> {
        channel::channel_affine(u, a, k, residual.map(|r| r.as_slice()), relu, dims)
    }

    fn pad2d(&self, x: &Vec<f32>, g: &PadGeom) -> Result<Vec<f32>> {
        pad::pad2d(x, g)
    }

    fn pad2d_backward(&self, grad: &Vec<f32>, g: &PadGeom) -> Result<Vec<f32>> {
        pad::pad2d_backward(grad, g)
    }

    fn upsample_nearest(&self, x: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        upsample::upsample_nearest(x, g)
    }

    fn upsample_nearest_backward(&self, grad: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        upsample::upsample_nearest_backward(grad, g)
    }

    fn upsample_bilinear(&self, x: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        upsample::upsample_bilinear(x, g)
    }

    fn upsample_bilinear_backward(&self, grad: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        upsample::upsample_bilinear_backward(grad, g)
    }
}
