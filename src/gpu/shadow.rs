//! Shadow mode (`CONVSHADE_CHECK=1` or `GpuOptions::check`): a decorator over a GPU backend
//! that runs every primitive again on the CPU backend with the same inputs and compares the
//! two results. A mismatch is [`Error::ShadowMismatch`] naming the op, the shapes and the
//! largest difference, for users who don't trust their driver. `gpu::backend` puts it in front
//! of the GPU backend in shadow mode; otherwise it is not on the path at all.

use std::sync::Arc;

use super::elementwise;
use super::runtime::{GpuBuffer, GpuContext};
use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, ConvSpec, GemmSpec, PadGeom, ReduceOp,
    SliceSpec, StridedSpec, UnaryOp, UpsampleGeom,
};
use crate::cpu::CpuBackend;
use crate::shape::WindowGeom;
use crate::{Error, Result};

/// Largest difference allowed, relative to the largest magnitude of the CPU result: float32
/// rounding for elementwise ops (`E`), and for sums taken in another order (`A`); copies and
/// max pooling must match exactly.
const E: f32 = 1e-4;
const A: f32 = 1e-3;

/// Compares `got` (GPU) with `want` (CPU); non-finite values must match exactly. `Err` holds
/// what differs.
fn compare(got: &[f32], want: &[f32], tol: f32) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} values against {}", got.len(), want.len()));
    }
    let scale = want.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = if w.is_finite() {
            (g - w).abs()
        } else if g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) {
            0.0
        } else {
            f32::INFINITY
        };
        let diff = if diff.is_nan() { f32::INFINITY } else { diff };
        if worst.is_none_or(|(_, d)| diff > d) {
            worst = Some((i, diff));
        }
    }
    match worst {
        Some((i, d)) if d > tol * scale => Err(format!(
            "largest difference {d:e} at element {i} (GPU {}, CPU {}), allowed {:e}",
            got[i],
            want[i],
            tol * scale
        )),
        _ => Ok(()),
    }
}

/// A backend whose every primitive is checked against the CPU backend.
pub(crate) struct Shadow<B> {
    inner: B,
    ctx: Arc<GpuContext>,
}

impl<B: Backend<Storage = GpuBuffer>> Shadow<B> {
    pub(crate) fn new(inner: B, ctx: Arc<GpuContext>) -> Self {
        Shadow { inner, ctx }
    }

    fn host(&self, inputs: &[&GpuBuffer]) -> Result<Vec<Vec<f32>>> {
        inputs.iter().map(|b| self.ctx.read(b)).collect()
    }

    /// The fault hook: corrupts `op`'s output when a test asks for it.
    fn faulty(&self, op: &'static str, out: GpuBuffer) -> Result<GpuBuffer> {
        match self.ctx.fault_op() == Some(op) {
            true => elementwise::unary(&self.ctx, &out, out.len, UnaryOp::AddScalar(1.0)),
            false => Ok(out),
        }
    }

    /// Runs `gpu`, then `cpu` on host copies of `inputs`, and compares. In a web page, where
    /// nothing may wait, the comparison is deferred: copies of the inputs and the output are
    /// kept, and the next readback compares them (`GpuContext::settle`).
    fn checked(
        &self, (op, shapes, tol): (&'static str, String, f32), inputs: &[&GpuBuffer],
        gpu: impl FnOnce(&B) -> Result<GpuBuffer>,
        cpu: impl FnOnce(&CpuBackend, &[Vec<f32>]) -> Result<Vec<f32>> + Send + 'static,
    ) -> Result<GpuBuffer> {
        let out = self.faulty(op, gpu(&self.inner)?)?;
        if cfg!(target_arch = "wasm32") {
            // host copies of the inputs, then of the output
            let verdict = move |h: &[Vec<f32>]| {
                let (ins, got) = h.split_at(h.len() - 1);
                mismatch(op, shapes, &got[0], &cpu(&CpuBackend, ins)?, tol)
            };
            let kept: Vec<&GpuBuffer> = inputs.iter().copied().chain([&out]).collect();
            self.ctx.defer_check(&kept, Box::new(verdict))?;
            return Ok(out);
        }
        let want = cpu(&CpuBackend, &self.host(inputs)?)?;
        mismatch(op, shapes, &self.ctx.read(&out)?, &want, tol)?;
        Ok(out)
    }

    /// [`Shadow::checked`] for a primitive with two outputs (values and indices), both exact.
    fn checked2(
        &self, (op, shapes): (&'static str, String), x: &GpuBuffer,
        gpu: impl FnOnce(&B) -> Result<(GpuBuffer, GpuBuffer)>,
        cpu: impl FnOnce(&CpuBackend, &Vec<f32>) -> Result<(Vec<f32>, Vec<f32>)> + Send + 'static,
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let (out, idx) = gpu(&self.inner)?;
        let (out, idx) = (self.faulty(op, out)?, self.faulty(op, idx)?);
        if cfg!(target_arch = "wasm32") {
            // host copies of x, the values and the indices
            let verdict = move |h: &[Vec<f32>]| {
                let (want, want_idx) = cpu(&CpuBackend, &h[0])?;
                mismatch(op, shapes.clone(), &h[1], &want, 0.0)?;
                mismatch(op, shapes, &h[2], &want_idx, 0.0)
            };
            self.ctx.defer_check(&[x, &out, &idx], Box::new(verdict))?;
            return Ok((out, idx));
        }
        let (want, want_idx) = cpu(&CpuBackend, &self.ctx.read(x)?)?;
        mismatch(op, shapes.clone(), &self.ctx.read(&out)?, &want, 0.0)?;
        mismatch(op, shapes, &self.ctx.read(&idx)?, &want_idx, 0.0)?;
        Ok((out, idx))
    }
}

/// [`compare`] as the op's [`Error::ShadowMismatch`].
fn mismatch(op: &'static str, shapes: String, got: &[f32], want: &[f32], tol: f32) -> Result<()> {
    compare(got, want, tol).map_err(|detail| Error::ShadowMismatch { op, shapes, detail })
}

/// A window op's shapes: convolution and pooling share the geometry.
fn window(op: &'static str, g: &WindowGeom, tol: f32) -> (&'static str, String, f32) {
    let shapes = format!(
        "input ({}, {}, {}, {}), window {}x{}, output {}x{}",
        g.n, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow
    );
    (op, shapes, tol)
}

fn upsample(op: &'static str, g: &UpsampleGeom, tol: f32) -> (&'static str, String, f32) {
    let shapes = format!("input ({}, {}, {}, {}), output {}x{}", g.n, g.c, g.h, g.w, g.oh, g.ow);
    (op, shapes, tol)
}

fn pad(op: &'static str, g: &PadGeom, tol: f32) -> (&'static str, String, f32) {
    let shapes =
        format!("{} planes of {}x{} padded to {}x{}, {:?}", g.planes, g.h, g.w, g.oh, g.ow, g.kind);
    (op, shapes, tol)
}

type Dims = (usize, usize, usize, usize);

fn adaptive(op: &'static str, dims: Dims, out: (usize, usize)) -> (&'static str, String, f32) {
    (op, format!("input {dims:?}, output {}x{}", out.0, out.1), A)
}

type S = GpuBuffer;

impl<B: Backend<Storage = GpuBuffer>> Backend for Shadow<B> {
    type Storage = GpuBuffer;

    fn unary(&self, x: &S, n: usize, op: UnaryOp) -> Result<S> {
        let what = ("unary", format!("{n} elements ({op:?})"), E);
        self.checked(what, &[x], |g| g.unary(x, n, op), move |c, h| c.unary(&h[0], n, op))
    }

    fn binary(&self, a: &S, b: &S, op: BinaryOp, spec: &BroadcastSpec) -> Result<S> {
        let what = ("binary", format!("output {:?} ({op:?})", spec.out), E);
        let cpu = {
            let spec = spec.clone();
            move |c: &CpuBackend, h: &[Vec<f32>]| c.binary(&h[0], &h[1], op, &spec)
        };
        self.checked(what, &[a, b], |g| g.binary(a, b, op, spec), cpu)
    }

    fn reduce_axis(
        &self, x: &S, outer: usize, len: usize, inner: usize, op: ReduceOp,
    ) -> Result<S> {
        let shapes = format!("(outer, len, inner) = ({outer}, {len}, {inner}) ({op:?})");
        let gpu = |g: &B| g.reduce_axis(x, outer, len, inner, op);
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| c.reduce_axis(&h[0], outer, len, inner, op);
        self.checked(("reduce", shapes, A), &[x], gpu, cpu)
    }

    fn copy_strided(&self, x: &S, spec: &StridedSpec) -> Result<S> {
        let what = ("copy", format!("output {:?}", spec.out), 0.0);
        let cpu = {
            let spec = spec.clone();
            move |c: &CpuBackend, h: &[Vec<f32>]| c.copy_strided(&h[0], &spec)
        };
        self.checked(what, &[x], |g| g.copy_strided(x, spec), cpu)
    }

    fn slice_assign(&self, base: &S, value: &S, spec: &SliceSpec) -> Result<S> {
        let what = ("slice_assign", format!("region {:?} of {:?}", spec.len, spec.dims), 0.0);
        let cpu = {
            let spec = spec.clone();
            move |c: &CpuBackend, h: &[Vec<f32>]| c.slice_assign(&h[0], &h[1], &spec)
        };
        self.checked(what, &[base, value], |g| g.slice_assign(base, value, spec), cpu)
    }

    fn gemm(&self, a: &S, b: &S, s: &GemmSpec) -> Result<S> {
        let shapes = format!("{} x ({}, {}) x ({}, {})", s.batch, s.m, s.k, s.k, s.n);
        let cpu = {
            let s = *s;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.gemm(&h[0], &h[1], &s)
        };
        self.checked(("matmul", shapes, A), &[a, b], |g| g.gemm(a, b, s), cpu)
    }

    fn gemm_bias_relu(
        &self, a: &S, b: &S, s: &GemmSpec, bias: Option<&S>, relu: bool,
    ) -> Result<S> {
        let shapes = format!("({}, {}) x ({}, {}), bias {}", s.m, s.k, s.k, s.n, bias.is_some());
        let inputs: Vec<&S> = [a, b].into_iter().chain(bias).collect();
        let gpu = |g: &B| g.gemm_bias_relu(a, b, s, bias, relu);
        let cpu = {
            let s = *s;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.gemm_bias_relu(&h[0], &h[1], &s, h.get(2), relu)
        };
        self.checked(("linear", shapes, A), &inputs, gpu, cpu)
    }

    fn conv2d(&self, x: &S, w: &S, bias: Option<&S>, s: &ConvSpec, relu: bool) -> Result<S> {
        let inputs: Vec<&S> = [x, w].into_iter().chain(bias).collect();
        let gpu = |g: &B| g.conv2d(x, w, bias, s, relu);
        let cpu = {
            let s = *s;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.conv2d(&h[0], &h[1], h.get(2), &s, relu)
        };
        self.checked(window("conv2d", &s.g, A), &inputs, gpu, cpu)
    }

    fn conv2d_backward_input(&self, grad: &S, w: &S, s: &ConvSpec) -> Result<S> {
        let what = window("conv2d_backward_input", &s.g, A);
        let gpu = |g: &B| g.conv2d_backward_input(grad, w, s);
        let cpu = {
            let s = *s;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.conv2d_backward_input(&h[0], &h[1], &s)
        };
        self.checked(what, &[grad, w], gpu, cpu)
    }

    fn conv2d_backward_weight(&self, x: &S, grad: &S, s: &ConvSpec) -> Result<S> {
        let what = window("conv2d_backward_weight", &s.g, A);
        let gpu = |g: &B| g.conv2d_backward_weight(x, grad, s);
        let cpu = {
            let s = *s;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.conv2d_backward_weight(&h[0], &h[1], &s)
        };
        self.checked(what, &[x, grad], gpu, cpu)
    }

    fn im2col(&self, x: &S, g: &WindowGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.im2col(&h[0], &g)
        };
        self.checked(window("im2col", g, 0.0), &[x], |b| b.im2col(x, g), cpu)
    }

    fn col2im(&self, cols: &S, g: &WindowGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.col2im(&h[0], &g)
        };
        self.checked(window("col2im", g, A), &[cols], |b| b.col2im(cols, g), cpu)
    }

    fn depthwise_conv2d(&self, x: &S, w: &S, g: &WindowGeom, mult: usize) -> Result<S> {
        let gpu = |b: &B| b.depthwise_conv2d(x, w, g, mult);
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.depthwise_conv2d(&h[0], &h[1], &g, mult)
        };
        self.checked(window("depthwise_conv2d", g, A), &[x, w], gpu, cpu)
    }

    fn depthwise_conv2d_backward_input(
        &self, grad: &S, w: &S, g: &WindowGeom, mult: usize,
    ) -> Result<S> {
        let what = window("depthwise_conv2d_backward_input", g, A);
        let gpu = |b: &B| b.depthwise_conv2d_backward_input(grad, w, g, mult);
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| {
                c.depthwise_conv2d_backward_input(&h[0], &h[1], &g, mult)
            }
        };
        self.checked(what, &[grad, w], gpu, cpu)
    }

    fn depthwise_conv2d_backward_weight(
        &self, x: &S, grad: &S, g: &WindowGeom, mult: usize,
    ) -> Result<S> {
        let what = window("depthwise_conv2d_backward_weight", g, A);
        let gpu = |b: &B| b.depthwise_conv2d_backward_weight(x, grad, g, mult);
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| {
                c.depthwise_conv2d_backward_weight(&h[0], &h[1], &g, mult)
            }
        };
        self.checked(what, &[x, grad], gpu, cpu)
    }

    fn max_pool2d(&self, x: &S, g: &WindowGeom) -> Result<(S, S)> {
        let (op, shapes, _) = window("max_pool2d", g, 0.0);
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &Vec<f32>| c.max_pool2d(h, &g)
        };
        self.checked2((op, shapes), x, |b| b.max_pool2d(x, g), cpu)
    }

    fn max_pool2d_backward(&self, grad: &S, indices: &S, g: &WindowGeom) -> Result<S> {
        let what = window("max_pool2d_backward", g, A);
        let gpu = |b: &B| b.max_pool2d_backward(grad, indices, g);
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.max_pool2d_backward(&h[0], &h[1], &g)
        };
        self.checked(what, &[grad, indices], gpu, cpu)
    }

    fn avg_pool2d(&self, x: &S, g: &WindowGeom, opts: AvgPoolOpts) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.avg_pool2d(&h[0], &g, opts)
        };
        let gpu = |b: &B| b.avg_pool2d(x, g, opts);
        self.checked(window("avg_pool2d", g, A), &[x], gpu, cpu)
    }

    fn avg_pool2d_backward(&self, grad: &S, g: &WindowGeom, opts: AvgPoolOpts) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.avg_pool2d_backward(&h[0], &g, opts)
        };
        let gpu = |b: &B| b.avg_pool2d_backward(grad, g, opts);
        self.checked(window("avg_pool2d_backward", g, A), &[grad], gpu, cpu)
    }

    fn adaptive_avg_pool2d(&self, x: &S, dims: Dims, out: (usize, usize)) -> Result<S> {
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| c.adaptive_avg_pool2d(&h[0], dims, out);
        let gpu = |b: &B| b.adaptive_avg_pool2d(x, dims, out);
        self.checked(adaptive("adaptive_avg_pool2d", dims, out), &[x], gpu, cpu)
    }

    fn adaptive_avg_pool2d_backward(&self, grad: &S, dims: Dims, out: (usize, usize)) -> Result<S> {
        let what = adaptive("adaptive_avg_pool2d_backward", dims, out);
        let gpu = |b: &B| b.adaptive_avg_pool2d_backward(grad, dims, out);
        let cpu =
            move |c: &CpuBackend, h: &[Vec<f32>]| c.adaptive_avg_pool2d_backward(&h[0], dims, out);
        self.checked(what, &[grad], gpu, cpu)
    }

    fn adaptive_max_pool2d(&self, x: &S, dims: Dims, out: (usize, usize)) -> Result<(S, S)> {
        let (op, shapes, _) = adaptive("adaptive_max_pool2d", dims, out);
        let cpu = move |c: &CpuBackend, h: &Vec<f32>| c.adaptive_max_pool2d(h, dims, out);
        self.checked2((op, shapes), x, |b| b.adaptive_max_pool2d(x, dims, out), cpu)
    }

    fn adaptive_max_pool2d_backward(
        &self, grad: &S, indices: &S, dims: Dims, out: (usize, usize),
    ) -> Result<S> {
        let what = adaptive("adaptive_max_pool2d_backward", dims, out);
        let gpu = |b: &B| b.adaptive_max_pool2d_backward(grad, indices, dims, out);
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| {
            c.adaptive_max_pool2d_backward(&h[0], &h[1], dims, out)
        };
        self.checked(what, &[grad, indices], gpu, cpu)
    }

    fn channel_dot(
        &self, x: &S, mean: &S, g: Option<&S>, dims: (usize, usize, usize),
    ) -> Result<S> {
        let inputs: Vec<&S> = [x, mean].into_iter().chain(g).collect();
        let what = ("batch_norm2d channel_dot", format!("{dims:?}"), A);
        let gpu = |b: &B| b.channel_dot(x, mean, g, dims);
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| c.channel_dot(&h[0], &h[1], h.get(2), dims);
        self.checked(what, &inputs, gpu, cpu)
    }

    fn channel_combine(
        &self, u: &S, a: &S, vb: Option<(&S, &S)>, k: &S, dims: (usize, usize, usize),
    ) -> Result<S> {
        let mut inputs = vec![u, a, k];
        inputs.extend(vb.map(|(v, b)| [v, b]).into_iter().flatten());
        let what = ("batch_norm2d channel_combine", format!("{dims:?}"), E);
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| {
            let vb = (h.len() == 5).then(|| (&h[3], &h[4]));
            c.channel_combine(&h[0], &h[1], vb, &h[2], dims)
        };
        self.checked(what, &inputs, |b| b.channel_combine(u, a, vb, k, dims), cpu)
    }

    fn channel_affine(
        &self, u: &S, a: &S, k: &S, residual: Option<&S>, relu: bool, dims: (usize, usize, usize),
    ) -> Result<S> {
        let inputs: Vec<&S> = [u, a, k].into_iter().chain(residual).collect();
        let what = ("batch_norm2d channel_affine", format!("{dims:?}"), E);
        let cpu = move |c: &CpuBackend, h: &[Vec<f32>]| {
            c.channel_affine(&h[0], &h[1], &h[2], h.get(3), relu, dims)
        };
        self.checked(what, &inputs, |b| b.channel_affine(u, a, k, residual, relu, dims), cpu)
    }

    fn pad2d(&self, x: &S, g: &PadGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.pad2d(&h[0], &g)
        };
        self.checked(pad("pad", g, 0.0), &[x], |b| b.pad2d(x, g), cpu)
    }

    fn pad2d_backward(&self, grad: &S, g: &PadGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.pad2d_backward(&h[0], &g)
        };
        self.checked(pad("pad_backward", g, A), &[grad], |b| b.pad2d_backward(grad, g), cpu)
    }

    fn upsample_nearest(&self, x: &S, g: &UpsampleGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.upsample_nearest(&h[0], &g)
        };
        let what = upsample("upsample_nearest", g, 0.0);
        self.checked(what, &[x], |b| b.upsample_nearest(x, g), cpu)
    }

    fn upsample_nearest_backward(&self, grad: &S, g: &UpsampleGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.upsample_nearest_backward(&h[0], &g)
        };
        let what = upsample("upsample_nearest_backward", g, A);
        self.checked(what, &[grad], |b| b.upsample_nearest_backward(grad, g), cpu)
    }

    fn upsample_bilinear(&self, x: &S, g: &UpsampleGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.upsample_bilinear(&h[0], &g)
        };
        let what = upsample("upsample_bilinear", g, E);
        self.checked(what, &[x], |b| b.upsample_bilinear(x, g), cpu)
    }

    fn upsample_bilinear_backward(&self, grad: &S, g: &UpsampleGeom) -> Result<S> {
        let cpu = {
            let g = *g;
            move |c: &CpuBackend, h: &[Vec<f32>]| c.upsample_bilinear_backward(&h[0], &g)
        };
        let what = upsample("upsample_bilinear_backward", g, A);
        self.checked(what, &[grad], |b| b.upsample_bilinear_backward(grad, g), cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn comparison_finds_the_largest_difference() {
        assert!(compare(&[1.0, 2.0], &[1.0, 2.0001], 1e-3).is_ok());
        let m = compare(&[131070.0], &[33554432.0], 1e-3).unwrap_err();
        assert!(m.contains("largest difference") && m.contains("element 0"), "{m}");
        assert!(compare(&[f32::NAN], &[0.0], 1e-3).is_err());
        assert!(compare(&[f32::NAN], &[f32::NAN], 0.0).is_ok());
        assert!(compare(&[1.0], &[f32::INFINITY], 1e-3).is_err());
        assert!(compare(&[3.0], &[2.0], 0.0).is_err());
    }
}
