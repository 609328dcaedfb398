//! Shadow mode (`CONVSHADE_CHECK=1` or `GpuOptions::check`): every GPU primitive is run again
//! on the CPU backend with the same inputs, and the two results compared. A mismatch is an
//! `Err` naming the op, the shapes and the largest difference, for users who don't trust their
//! driver. Off, `checked` runs only the GPU side. `impl Backend for GpuBackend` (mod.rs) sends
//! every primitive through it.

use super::{GpuBackend, GpuBuffer};
use crate::backend::{UnaryOp, UpsampleGeom};
use crate::cpu::CpuBackend;
use crate::shape::WindowGeom;
use crate::{Error, Result};

/// Largest difference allowed, relative to the largest magnitude of the CPU result: float32
/// rounding for elementwise ops, and for sums taken in another order.
const TOL_ELEMENTWISE: f32 = 1e-4;
const TOL_ACCUMULATE: f32 = 1e-3;

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

impl GpuBackend {
    pub(super) fn on(&self) -> bool {
        self.ctx.check_mode()
    }

    pub(super) fn host(&self, inputs: &[&GpuBuffer]) -> Result<Vec<Vec<f32>>> {
        inputs.iter().map(|b| self.ctx.read(b)).collect()
    }

    /// Checks one GPU output against the CPU's; the fault hook corrupts it first.
    pub(super) fn verify(
        &self,
        op: &'static str,
        shapes: String,
        out: GpuBuffer,
        want: Vec<f32>,
        tol: f32,
    ) -> Result<GpuBuffer> {
        let out = if self.ctx.fault_op == Some(op) {
            self.unary_any(&out, out.len, UnaryOp::AddScalar(1.0))?
        } else {
            out
        };
        compare(op, &shapes, &self.ctx.read(&out)?, &want, tol)?;
        Ok(out)
    }

    /// Runs `gpu`, and in shadow mode `cpu` on host copies of `inputs`, and compares.
    pub(super) fn checked(
        &self,
        op: &'static str,
        shapes: impl FnOnce() -> String,
        inputs: &[&GpuBuffer],
        tol: f32,
        gpu: impl FnOnce(&GpuBackend) -> Result<GpuBuffer>,
        cpu: impl FnOnce(&CpuBackend, &[Vec<f32>]) -> Result<Vec<f32>>,
    ) -> Result<GpuBuffer> {
        let out = gpu(self)?;
        if !self.on() {
            return Ok(out);
        }
        let want = cpu(&CpuBackend, &self.host(inputs)?)?;
        self.verify(op, shapes(), out, want, tol)
    }
}

/// A window op's shapes: convolution and pooling share the geometry.
pub(super) fn window_shapes(g: &WindowGeom) -> String {
    format!(
        "input ({}, {}, {}, {}), window {}x{}, output {}x{}",
        g.n, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow
    )
}

pub(super) fn upsample_shapes(g: &UpsampleGeom) -> String {
    format!(
        "input ({}, {}, {}, {}), output {}x{}",
        g.n, g.c, g.h, g.w, g.oh, g.ow
    )
}

pub(super) fn pad_shapes(g: &crate::backend::PadGeom) -> String {
    format!(
        "{} planes of {}x{} padded to {}x{}, {:?}",
        g.planes, g.h, g.w, g.oh, g.ow, g.kind
    )
}

pub(super) fn adaptive_shapes(dims: (usize, usize, usize, usize), out: (usize, usize)) -> String {
    format!("input {dims:?}, output {}x{}", out.0, out.1)
}

pub(super) const E: f32 = TOL_ELEMENTWISE;
pub(super) const A: f32 = TOL_ACCUMULATE;

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
