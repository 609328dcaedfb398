//! Shadow mode (`CONVSHADE_CHECK=1` or `GpuOptions::check`): every GPU primitive is run again
//! on the CPU backend with the same inputs, and the two results compared. A mismatch is an
//! `Err` naming the op, the shapes and the largest difference, for users who don't trust their
//! driver. Off, the wrapper only delegates.

use super::{GpuBackend, GpuBuffer};
use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, GemmSpec, ReduceOp, StridedSpec, UnaryOp,
    UpsampleGeom,
};
use crate::cpu::CpuBackend;
use crate::shape::WindowGeom;
use crate::{Error, Result};

/// Largest difference allowed, relative to the largest magnitude of the CPU result: float32
/// rounding for elementwise ops, and for sums taken in another order.
const TOL_ELEMENTWISE: f32 = 1e-4;
const TOL_ACCUMULATE: f32 = 1e-3;

/// The GPU backend, checked against the CPU backend in shadow mode.
pub(crate) struct Checked(pub(crate) GpuBackend);

/// Compares `got` (GPU) with `want` (CPU); non-finite values must match exactly.
fn compare(op: &str, shapes: &str, got: &[f32], want: &[f32], tol: f32) -> Result<()> {
    let mismatch = |msg: String| {
        Err(Error::Gpu(format!(
            "shadow check: {op} on {shapes}: GPU and CPU disagree: {msg}"
        )))
    };
    if got.len() != want.len() {
        return mismatch(format!("{} values against {}", got.len(), want.len()));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()));
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
        Some((i, d)) if d > tol * scale => mismatch(format!(
            "largest difference {d:e} at element {i} (GPU {}, CPU {}), allowed {:e}",
            got[i],
            want[i],
            tol * scale
        )),
        _ => Ok(()),
    }
}

impl Checked {
    fn on(&self) -> bool {
        self.0.ctx.check_mode()
    }

    fn host(&self, inputs: &[&GpuBuffer]) -> Result<Vec<Vec<f32>>> {
        inputs.iter().map(|b| self.0.ctx.read(b)).collect()
    }

    /// Checks one GPU output against the CPU's; the fault hook corrupts it first.
    fn verify(
        &self,
        op: &'static str,
        shapes: String,
        out: GpuBuffer,
        want: Vec<f32>,
        tol: f32,
    ) -> Result<GpuBuffer> {
        let out = if self.0.ctx.fault_op == Some(op) {
            self.0.unary(&out, out.len, UnaryOp::AddScalar(1.0))?
        } else {
            out
        };
        compare(op, &shapes, &self.0.ctx.read(&out)?, &want, tol)?;
        Ok(out)
    }

    /// Runs `gpu`, and in shadow mode `cpu` on host copies of `inputs`, and compares.
    fn checked(
        &self,
        op: &'static str,
        shapes: impl FnOnce() -> String,
        inputs: &[&GpuBuffer],
        tol: f32,
        gpu: impl FnOnce(&GpuBackend) -> Result<GpuBuffer>,
        cpu: impl FnOnce(&CpuBackend, &[Vec<f32>]) -> Result<Vec<f32>>,
    ) -> Result<GpuBuffer> {
        let out = gpu(&self.0)?;
        if !self.on() {
            return Ok(out);
        }
        let want = cpu(&CpuBackend, &self.host(inputs)?)?;
        self.verify(op, shapes(), out, want, tol)
    }
}

fn conv_shapes(g: &WindowGeom) -> String {
    format!(
        "input ({}, {}, {}, {}), kernel {}x{}, output {}x{}",
        g.n, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow
    )
}

fn pool_shapes(g: &WindowGeom) -> String {
    format!(
        "input ({}, {}, {}, {}), window {}x{}, output {}x{}",
        g.n, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow
    )
}

fn upsample_shapes(g: &UpsampleGeom) -> String {
    format!(
        "input ({}, {}, {}, {}), output {}x{}",
        g.n, g.c, g.h, g.w, g.oh, g.ow
    )
}

fn adaptive_shapes(dims: (usize, usize, usize, usize), out: (usize, usize)) -> String {
    format!("input {dims:?}, output {}x{}", out.0, out.1)
}

const E: f32 = TOL_ELEMENTWISE;
const A: f32 = TOL_ACCUMULATE;

impl Backend for Checked {
    type Storage = GpuBuffer;

    fn unary(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        self.checked(
            "unary",
            || format!("{n} elements ({op:?})"),
            &[x],
            E,
            |g| g.unary(x, n, op),
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
            |g| g.binary(a, b, op, spec),
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
            |g| g.reduce_axis(x, outer, len, inner, op),
            |c, h| c.reduce_axis(&h[0], outer, len, inner, op),
        )
    }

    fn copy_strided(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        self.checked(
            "copy",
            || format!("output {:?}", spec.out),
            &[x],
            0.0,
            |g| g.copy_strided(x, spec),
            |c, h| c.copy_strided(&h[0], spec),
        )
    }

    fn gemm(&self, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
        self.checked(
            "matmul",
            || format!("{} x ({}, {}) x ({}, {})", s.batch, s.m, s.k, s.k, s.n),
            &[a, b],
            A,
            |g| g.gemm(a, b, s),
            |c, h| c.gemm(&h[0], &h[1], s),
        )
    }

    fn im2col(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.checked(
            "im2col",
            || conv_shapes(g),
            &[x],
            0.0,
            |b| b.im2col(x, g),
            |c, h| c.im2col(&h[0], g),
        )
    }

    fn col2im(&self, cols: &GpuBuffer, g: &WindowGeom) -> Result<GpuBuffer> {
        self.checked(
            "col2im",
            || conv_shapes(g),
            &[cols],
            A,
            |b| b.col2im(cols, g),
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
            || conv_shapes(g),
            &[x, w],
            A,
            |b| b.depthwise_conv2d(x, w, g, mult),
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
            || conv_shapes(g),
            &[grad, w],
            A,
            |b| b.depthwise_conv2d_backward_input(grad, w, g, mult),
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
            || conv_shapes(g),
            &[x, grad],
            A,
            |b| b.depthwise_conv2d_backward_weight(x, grad, g, mult),
            |c, h| c.depthwise_conv2d_backward_weight(&h[0], &h[1], g, mult),
        )
    }

    fn max_pool2d(&self, x: &GpuBuffer, g: &WindowGeom) -> Result<(GpuBuffer, GpuBuffer)> {
        let (out, idx) = self.0.max_pool2d(x, g)?;
        if !self.on() {
            return Ok((out, idx));
        }
        let (want, want_idx) = CpuBackend.max_pool2d(&self.host(&[x])?[0], g)?;
        let out = self.verify("max_pool2d", pool_shapes(g), out, want, 0.0)?;
        let idx = self.verify("max_pool2d indices", pool_shapes(g), idx, want_idx, 0.0)?;
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
            || pool_shapes(g),
            &[grad, indices],
            A,
            |b| b.max_pool2d_backward(grad, indices, g),
            |c, h| c.max_pool2d_backward(&h[0], &h[1], g),
        )
    }

    fn avg_pool2d(&self, x: &GpuBuffer, g: &WindowGeom, opts: AvgPoolOpts) -> Result<GpuBuffer> {
        self.checked(
            "avg_pool2d",
            || pool_shapes(g),
            &[x],
            A,
            |b| b.avg_pool2d(x, g, opts),
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
            || pool_shapes(g),
            &[grad],
            A,
            |b| b.avg_pool2d_backward(grad, g, opts),
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
            |b| b.adaptive_avg_pool2d(x, dims, out),
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
            |b| b.adaptive_avg_pool2d_backward(grad, dims, out),
            |c, h| c.adaptive_avg_pool2d_backward(&h[0], dims, out),
        )
    }

    fn upsample_nearest(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_nearest",
            || upsample_shapes(g),
            &[x],
            0.0,
            |b| b.upsample_nearest(x, g),
            |c, h| c.upsample_nearest(&h[0], g),
        )
    }

    fn upsample_nearest_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_nearest_backward",
            || upsample_shapes(g),
            &[grad],
            A,
            |b| b.upsample_nearest_backward(grad, g),
            |c, h| c.upsample_nearest_backward(&h[0], g),
        )
    }

    fn upsample_bilinear(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_bilinear",
            || upsample_shapes(g),
            &[x],
            E,
            |b| b.upsample_bilinear(x, g),
            |c, h| c.upsample_bilinear(&h[0], g),
        )
    }

    fn upsample_bilinear_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        self.checked(
            "upsample_bilinear_backward",
            || upsample_shapes(g),
            &[grad],
            A,
            |b| b.upsample_bilinear_backward(grad, g),
            |c, h| c.upsample_bilinear_backward(&h[0], g),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn comparison_names_the_op_and_the_largest_difference() {
        assert!(compare("sum", "x", &[1.0, 2.0], &[1.0, 2.0001], 1e-3).is_ok());
        let e = compare("sum", "(1, 4, 1)", &[131070.0], &[33554432.0], 1e-3).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("sum on (1, 4, 1)") && m.contains("largest difference"),
            "{m}"
        );
        assert!(compare("relu", "x", &[f32::NAN], &[0.0], 1e-3).is_err());
        assert!(compare("relu", "x", &[f32::NAN], &[f32::NAN], 0.0).is_ok());
        assert!(compare("exp", "x", &[1.0], &[f32::INFINITY], 1e-3).is_err());
        assert!(compare("idx", "x", &[3.0], &[2.0], 0.0).is_err());
    }
}
