//! Elementwise ops: unary maps, broadcasting binary maps, and strided copies.

use rayon::prelude::*;

use super::host::{host_vec_for_overwrite, par_chunks, PAR_MIN};
use crate::backend::{BinaryOp, BroadcastSpec, StridedSpec, UnaryOp};
use crate::Result;

/// Elements per task of the elementwise loops.
const ELEMWISE_CHUNK: usize = 1 << 14;

/// `out[i] = op(x[i])`, `n` elements.
pub(super) fn unary(x: &[f32], n: usize, op: UnaryOp) -> Result<Vec<f32>> {
    let x = &x[..n];
    // One monomorphic loop per op (the variant is a constant in each arm), so the compiler
    // vectorizes it instead of matching on the op per element.
    use UnaryOp as U;
    Ok(match op {
        U::Neg => map1(x, |v| U::Neg.apply(v))?,
        U::Square => map1(x, |v| U::Square.apply(v))?,
        U::Sqrt => map1(x, |v| U::Sqrt.apply(v))?,
        U::Exp => map1(x, |v| U::Exp.apply(v))?,
        U::Log => map1(x, |v| U::Log.apply(v))?,
        U::Relu => map1(x, |v| U::Relu.apply(v))?,
        U::LeakyRelu(a) => map1(x, |v| U::LeakyRelu(a).apply(v))?,
        U::Sigmoid => map1(x, |v| U::Sigmoid.apply(v))?,
        U::Tanh => map1(x, |v| U::Tanh.apply(v))?,
        U::AddScalar(s) => map1(x, |v| U::AddScalar(s).apply(v))?,
        U::MulScalar(s) => map1(x, |v| U::MulScalar(s).apply(v))?,
        U::PowScalar(p) => map1(x, |v| U::PowScalar(p).apply(v))?,
        U::Erf => map1(x, |v| U::Erf.apply(v))?,
    })
}

/// `out[idx] = op(a[idx . a_strides], b[idx . b_strides])` over `spec.out`.
pub(super) fn binary(a: &[f32], b: &[f32], op: BinaryOp, spec: &BroadcastSpec) -> Result<Vec<f32>> {
    use BinaryOp as B;
    Ok(match op {
        B::Add => map2(a, b, spec, |u, v| B::Add.apply(u, v))?,
        B::Sub => map2(a, b, spec, |u, v| B::Sub.apply(u, v))?,
        B::Mul => map2(a, b, spec, |u, v| B::Mul.apply(u, v))?,
        B::Div => map2(a, b, spec, |u, v| B::Div.apply(u, v))?,
        B::ReluBackward => map2(a, b, spec, |u, v| B::ReluBackward.apply(u, v))?,
        B::LeakyReluBackward(s) => map2(a, b, spec, |u, v| B::LeakyReluBackward(s).apply(u, v))?,
        B::SigmoidBackward => map2(a, b, spec, |u, v| B::SigmoidBackward.apply(u, v))?,
        B::TanhBackward => map2(a, b, spec, |u, v| B::TanhBackward.apply(u, v))?,
        B::Eq => map2(a, b, spec, |u, v| B::Eq.apply(u, v))?,
        B::MaxHit => map2(a, b, spec, |u, v| B::MaxHit.apply(u, v))?,
    })
}

/// Contiguous copy of a strided view (permute, slice, expand): rows of the last axis, each
/// row's start found once from the full strides.
pub(super) fn copy_strided(x: &[f32], spec: &StridedSpec) -> Result<Vec<f32>> {
    let n: usize = spec.out.iter().product();
    let mut out = host_vec_for_overwrite(n, "copy_strided")?;
    let (dims, strides) = (&spec.out, &spec.strides);
    let Some((&last, &step)) = dims.last().zip(strides.last()) else {
        if let Some(o) = out.first_mut() {
            *o = x[spec.offset]; // a scalar
        }
        return Ok(out);
    };
    par_chunks(&mut out, last, |r, o| {
        let mut rem = r;
        let mut src = spec.offset as isize;
        for d in (0..dims.len() - 1).rev() {
            src += (rem % dims[d]) as isize * strides[d];
            rem /= dims[d];
        }
        match step {
            1 => o.copy_from_slice(&x[src as usize..][..o.len()]),
            0 => o.fill(x[src as usize]),
            _ => {
                for (j, o) in o.iter_mut().enumerate() {
                    *o = x[(src + j as isize * step) as usize];
                }
            }
        }
    });
    Ok(out)
}

/// `f` over every element, in threaded chunks.
fn map1(x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Result<Vec<f32>> {
    let mut out = host_vec_for_overwrite(x.len(), "unary")?;
    let run = |(o, i): (&mut [f32], &[f32])| {
        for (o, &i) in o.iter_mut().zip(i) {
            *o = f(i);
        }
    };
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(ELEMWISE_CHUNK).zip(x.par_chunks(ELEMWISE_CHUNK)).for_each(run);
    } else {
        run((&mut out, x));
    }
    Ok(out)
}

/// `f(a, b)` with broadcasting: rows of the last axis are walked with that axis's strides
/// (1, or 0 for a broadcast operand), the row starts found from the full strides.
fn map2(
    a: &[f32], b: &[f32], spec: &BroadcastSpec, f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Result<Vec<f32>> {
    let n = spec.len();
    let mut out = host_vec_for_overwrite(n, "binary")?;
    if spec.is_plain() {
        let run = |((o, x), y): ((&mut [f32], &[f32]), &[f32])| {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        };
        if n >= PAR_MIN {
            out.par_chunks_mut(ELEMWISE_CHUNK)
                .zip(a[..n].par_chunks(ELEMWISE_CHUNK))
                .zip(b[..n].par_chunks(ELEMWISE_CHUNK))
                .for_each(run);
        } else {
            run(((&mut out, &a[..n]), &b[..n]));
        }
        return Ok(out);
    }
    let dims = &spec.out;
    let last = dims.last().copied().unwrap_or(1);
    let (sa, sb) =
        (spec.a_strides.last().copied().unwrap_or(0), spec.b_strides.last().copied().unwrap_or(0));
    let row = |r: usize, o: &mut [f32]| {
        let start = r * last;
        let ia = strided_offset(start, dims, &spec.a_strides);
        let ib = strided_offset(start, dims, &spec.b_strides);
        for (j, o) in o.iter_mut().enumerate() {
            *o = f(a[ia + j * sa], b[ib + j * sb]);
        }
    };
    par_chunks(&mut out, last, row);
    Ok(out)
}

/// Row-major multi-index walk: offset of flat index `i` under `strides` for shape `dims`.
#[inline]
fn strided_offset(mut i: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for d in (0..dims.len()).rev() {
        let idx = i % dims[d];
        i /= dims[d];
        off += idx * strides[d];
    }
    off
}
