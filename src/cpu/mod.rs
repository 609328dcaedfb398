//! The CPU backend: ndarray-style loops over contiguous `Vec<f32>`, threaded with rayon, and a
//! packed, threaded GEMM from `matrixmultiply`.

#[doc(hidden)]
pub mod oracle;

use rayon::prelude::*;

use crate::backend::{
    adaptive_window, bilinear_src, nearest_src, AvgPoolOpts, Backend, BinaryOp, BroadcastSpec,
    GemmSpec, ReduceOp, StridedSpec, UnaryOp, UpsampleGeom,
};
use crate::shape::{ConvGeom, PoolGeom};
use crate::Result;

/// A host vector of `n` copies of `value`, or an `Err` naming `op` when the memory cannot be
/// had (never an abort).
pub(crate) fn host_vec(n: usize, value: f32, op: &'static str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| crate::Error::Invalid {
        op,
        msg: format!(
            "cannot allocate {n} elements ({} bytes) on the host",
            n.saturating_mul(4)
        ),
    })?;
    v.resize(n, value);
    Ok(v)
}

/// Below this many elements, threading costs more than it saves.
const PAR_MIN: usize = 1 << 14;

/// The CPU backend. Stateless: all storage is `Vec<f32>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

/// Raw pointer that rayon tasks may share when each writes a disjoint part.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    // A method call makes closures capture the whole (Send) wrapper, not the raw field.
    fn get(self) -> *mut f32 {
        self.0
    }
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

fn par_fill(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync + Send) {
    if out.len() >= PAR_MIN {
        out.par_iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    } else {
        out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    }
}

/// Sums the middle axis of `(outer, len, inner)` with f64 accumulators, so long sums keep
/// float32 accuracy (a plain f32 running sum stops growing at 2^24). Few outputs over a long
/// axis are summed in parallel blocks.
fn sum_axis(x: &[f32], outer: usize, len: usize, inner: usize) -> Result<Vec<f32>> {
    let outputs = outer * inner;
    // The path depends on the shape only (never on the thread count), so results do too.
    if outputs < FEW_OUTPUTS && len >= 2 * SUM_BLOCK {
        // Fixed blocks summed in parallel, then the block sums in order: the same result
        // whatever the thread count or scheduling.
        return Ok((0..outputs)
            .map(|o| {
                let base = (o / inner) * len * inner + o % inner;
                let blocks: Vec<f64> = (0..len.div_ceil(SUM_BLOCK))
                    .into_par_iter()
                    .map(|b| {
                        (b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(len))
                            .map(|k| x[base + k * inner] as f64)
                            .sum::<f64>()
                    })
                    .collect();
                blocks.iter().sum::<f64>() as f32
            })
            .collect());
    }
    let mut out = host_vec(outputs, 0.0, "sum")?;
    par_chunks(&mut out, inner, |o, row| {
        let base = o * len * inner;
        let mut acc = vec![0.0f64; inner];
        for k in 0..len {
            for (a, &v) in acc
                .iter_mut()
                .zip(&x[base + k * inner..base + (k + 1) * inner])
            {
                *a += v as f64;
            }
        }
        for (r, a) in row.iter_mut().zip(acc) {
            *r = a as f32;
        }
    });
    Ok(out)
}

/// Elements per parallel block of a long sum.
const SUM_BLOCK: usize = 1 << 14;
/// Up to this many outputs, a long sum is split into blocks across threads.
const FEW_OUTPUTS: usize = 16;

/// Elements per task of the elementwise loops.
const ELEMWISE_CHUNK: usize = 1 << 14;

/// `f` over every element, in threaded chunks.
fn map1(x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Result<Vec<f32>> {
    let mut out = host_vec(x.len(), 0.0, "unary")?;
    let run = |(o, i): (&mut [f32], &[f32])| {
        for (o, &i) in o.iter_mut().zip(i) {
            *o = f(i);
        }
    };
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(ELEMWISE_CHUNK)
            .zip(x.par_chunks(ELEMWISE_CHUNK))
            .for_each(run);
    } else {
        run((&mut out, x));
    }
    Ok(out)
}

/// `f(a, b)` with broadcasting: rows of the last axis are walked with that axis's strides
/// (1, or 0 for a broadcast operand), the row starts found from the full strides.
fn map2(
    a: &[f32],
    b: &[f32],
    spec: &BroadcastSpec,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Result<Vec<f32>> {
    let n = spec.len();
    let mut out = host_vec(n, 0.0, "binary")?;
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
    let (sa, sb) = (
        spec.a_strides.last().copied().unwrap_or(0),
        spec.b_strides.last().copied().unwrap_or(0),
    );
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

/// Fills `out` in chunks of `chunk` elements (one plane, one row), threaded when large.
fn par_chunks(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

impl Backend for CpuBackend {
    type Storage = Vec<f32>;

    fn unary(&self, x: &Vec<f32>, n: usize, op: UnaryOp) -> Result<Vec<f32>> {
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
            U::RdivScalar(s) => map1(x, |v| U::RdivScalar(s).apply(v))?,
            U::PowScalar(p) => map1(x, |v| U::PowScalar(p).apply(v))?,
            U::Fill(c) => host_vec(n, c, "unary")?,
        })
    }

    fn binary(
        &self,
        a: &Vec<f32>,
        b: &Vec<f32>,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<Vec<f32>> {
        use BinaryOp as B;
        Ok(match op {
            B::Add => map2(a, b, spec, |u, v| B::Add.apply(u, v))?,
            B::Sub => map2(a, b, spec, |u, v| B::Sub.apply(u, v))?,
            B::Mul => map2(a, b, spec, |u, v| B::Mul.apply(u, v))?,
            B::Div => map2(a, b, spec, |u, v| B::Div.apply(u, v))?,
            B::ReluBackward => map2(a, b, spec, |u, v| B::ReluBackward.apply(u, v))?,
            B::LeakyReluBackward(s) => {
                map2(a, b, spec, |u, v| B::LeakyReluBackward(s).apply(u, v))?
            }
            B::SigmoidBackward => map2(a, b, spec, |u, v| B::SigmoidBackward.apply(u, v))?,
            B::TanhBackward => map2(a, b, spec, |u, v| B::TanhBackward.apply(u, v))?,
        })
    }

    fn reduce_axis(
        &self,
        x: &Vec<f32>,
        outer: usize,
        len: usize,
        inner: usize,
        op: ReduceOp,
    ) -> Result<Vec<f32>> {
        if op == ReduceOp::Sum {
            return sum_axis(x, outer, len, inner);
        }
        let mut out = host_vec(outer * inner, op.identity(), "reduce_axis")?;
        par_chunks(&mut out, inner, |o, row| {
            let base = o * len * inner;
            for k in 0..len {
                let src = &x[base + k * inner..base + (k + 1) * inner];
                for (r, s) in row.iter_mut().zip(src) {
                    *r = op.combine(*r, *s);
                }
            }
        });
        Ok(out)
    }

    fn copy_strided(&self, x: &Vec<f32>, spec: &StridedSpec) -> Result<Vec<f32>> {
        let n: usize = spec.out.iter().product();
        let mut out = host_vec(n, 0.0, "copy_strided")?;
        par_fill(&mut out, |i| {
            let mut rem = i;
            let mut src = spec.offset as isize;
            for d in (0..spec.out.len()).rev() {
                src += (rem % spec.out[d]) as isize * spec.strides[d];
                rem /= spec.out[d];
            }
            x[src as usize]
        });
        Ok(out)
    }

    fn gemm(&self, a: &Vec<f32>, b: &Vec<f32>, s: &GemmSpec) -> Result<Vec<f32>> {
        let mut c = host_vec(s.c_len, 0.0, "gemm")?;
        let cp = SyncPtr(c.as_mut_ptr());
        let run = |bi: usize| {
            let (ao, bo, co) = (
                s.a.base(bi, s.batch_inner),
                s.b.base(bi, s.batch_inner),
                s.c.base(bi, s.batch_inner),
            );
            // SAFETY: the ops layer checked every layout's extent against its buffer, and each
            // batch writes a disjoint set of C elements (GemmSpec's contract).
            unsafe {
                matrixmultiply::sgemm(
                    s.m,
                    s.k,
                    s.n,
                    1.0,
                    a.as_ptr().add(ao),
                    s.a.row_stride as isize,
                    s.a.col_stride as isize,
                    b.as_ptr().add(bo),
                    s.b.row_stride as isize,
                    s.b.col_stride as isize,
                    0.0,
                    cp.get().add(co),
                    s.c.row_stride as isize,
                    s.c.col_stride as isize,
                );
            }
        };
        if s.batch > 1 && s.m * s.n * s.k < (1 << 18) {
            (0..s.batch).into_par_iter().for_each(run);
        } else {
            (0..s.batch).for_each(run);
        }
        Ok(c)
    }

    fn im2col(&self, x: &Vec<f32>, g: &ConvGeom) -> Result<Vec<f32>> {
        let g = *g;
        let windows = g.row_count();
        let mut cols = host_vec(g.row_len() * windows, 0.0, "im2col")?;
        par_chunks(&mut cols, windows, |row, out| {
            // row = (c, kh, kw); out: that tap for every (n, oh, ow)
            let kw = row % g.kw;
            let kh = (row / g.kw) % g.kh;
            let c = row / (g.kw * g.kh);
            for n in 0..g.n {
                let plane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
                let out = &mut out[n * g.oh * g.ow..][..g.oh * g.ow];
                for oh in 0..g.oh {
                    let ih = (oh * g.sh + kh * g.dh) as isize - g.pad_top as isize;
                    let dst = &mut out[oh * g.ow..][..g.ow];
                    if ih < 0 || ih as usize >= g.h {
                        continue; // stays zero
                    }
                    let src = &plane[ih as usize * g.w..][..g.w];
                    for (ow, d) in dst.iter_mut().enumerate() {
                        let iw = (ow * g.sw + kw * g.dw) as isize - g.pad_left as isize;
                        if iw >= 0 && (iw as usize) < g.w {
                            *d = src[iw as usize];
                        }
                    }
                }
            }
        });
        Ok(cols)
    }

    fn col2im(&self, cols: &Vec<f32>, g: &ConvGeom) -> Result<Vec<f32>> {
        let g = *g;
        let windows = g.row_count();
        let mut x = host_vec(g.n * g.c * g.h * g.w, 0.0, "col2im")?;
        // One task per input plane scatters its taps in (kh, kw, oh, ow) order: every element
        // receives its contributions in (kh, kw) order, the order of the GPU's gather.
        par_chunks(&mut x, g.h * g.w, |nc, plane| {
            let (n, c) = (nc / g.c, nc % g.c);
            for kh in 0..g.kh {
                for kw in 0..g.kw {
                    let row = &cols[((c * g.kh + kh) * g.kw + kw) * windows + n * g.oh * g.ow..]
                        [..g.oh * g.ow];
                    for oh in 0..g.oh {
                        let ih = (oh * g.sh + kh * g.dh) as isize - g.pad_top as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        let dst = &mut plane[ih as usize * g.w..][..g.w];
                        for (ow, &v) in row[oh * g.ow..][..g.ow].iter().enumerate() {
                            let iw = (ow * g.sw + kw * g.dw) as isize - g.pad_left as isize;
                            if iw >= 0 && (iw as usize) < g.w {
                                dst[iw as usize] += v;
                            }
                        }
                    }
                }
            }
        });
        Ok(x)
    }

    fn depthwise_conv2d(
        &self,
        x: &Vec<f32>,
        w: &Vec<f32>,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<Vec<f32>> {
        let g = *g;
        let d = g.c * mult;
        let mut y = host_vec(g.n * d * g.oh * g.ow, 0.0, "depthwise_conv2d")?;
        par_chunks(&mut y, g.oh * g.ow, |nd, out| {
            // nd = (n, d); channel d reads input channel d / mult
            let (n, dd) = (nd / d, nd % d);
            let plane = &x[(n * g.c + dd / mult) * g.h * g.w..][..g.h * g.w];
            let k = &w[dd * g.kh * g.kw..][..g.kh * g.kw];
            for kh in 0..g.kh {
                for kw in 0..g.kw {
                    let wv = k[kh * g.kw + kw];
                    for oh in 0..g.oh {
                        let ih = (oh * g.sh + kh * g.dh) as isize - g.pad_top as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        let src = &plane[ih as usize * g.w..][..g.w];
                        for (ow, o) in out[oh * g.ow..][..g.ow].iter_mut().enumerate() {
                            let iw = (ow * g.sw + kw * g.dw) as isize - g.pad_left as isize;
                            if iw >= 0 && (iw as usize) < g.w {
                                *o += src[iw as usize] * wv;
                            }
                        }
                    }
                }
            }
        });
        Ok(y)
    }

    fn depthwise_conv2d_backward_input(
        &self,
        grad: &Vec<f32>,
        w: &Vec<f32>,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<Vec<f32>> {
        let g = *g;
        let d = g.c * mult;
        let mut dx = host_vec(
            g.n * g.c * g.h * g.w,
            0.0,
            "depthwise_conv2d_backward_input",
        )?;
        par_chunks(&mut dx, g.h * g.w, |nc, plane| {
            let (n, c) = (nc / g.c, nc % g.c);
            for ih in 0..g.h {
                for iw in 0..g.w {
                    let mut acc = 0.0;
                    for m in 0..mult {
                        let dd = c * mult + m;
                        let go = &grad[(n * d + dd) * g.oh * g.ow..][..g.oh * g.ow];
                        for kh in 0..g.kh {
                            let Some(oh) = conv_src(ih, kh, g.pad_top, g.dh, g.sh, g.oh) else {
                                continue;
                            };
                            for kw in 0..g.kw {
                                let Some(ow) = conv_src(iw, kw, g.pad_left, g.dw, g.sw, g.ow)
                                else {
                                    continue;
                                };
                                acc += go[oh * g.ow + ow] * w[(dd * g.kh + kh) * g.kw + kw];
                            }
                        }
                    }
                    plane[ih * g.w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }

    fn depthwise_conv2d_backward_weight(
        &self,
        x: &Vec<f32>,
        grad: &Vec<f32>,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<Vec<f32>> {
        let g = *g;
        let d = g.c * mult;
        let mut dw = host_vec(d * g.kh * g.kw, 0.0, "depthwise_conv2d_backward_weight")?;
        par_chunks(&mut dw, g.kh * g.kw, |dd, taps| {
            for (t, out) in taps.iter_mut().enumerate() {
                let (kh, kw) = (t / g.kw, t % g.kw);
                let mut acc = 0.0f64;
                for n in 0..g.n {
                    let plane = &x[(n * g.c + dd / mult) * g.h * g.w..][..g.h * g.w];
                    let go = &grad[(n * d + dd) * g.oh * g.ow..][..g.oh * g.ow];
                    for oh in 0..g.oh {
                        let ih = (oh * g.sh + kh * g.dh) as isize - g.pad_top as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        for ow in 0..g.ow {
                            let iw = (ow * g.sw + kw * g.dw) as isize - g.pad_left as isize;
                            if iw >= 0 && (iw as usize) < g.w {
                                acc += (plane[ih as usize * g.w + iw as usize] * go[oh * g.ow + ow])
                                    as f64;
                            }
                        }
                    }
                }
                *out = acc as f32;
            }
        });
        Ok(dw)
    }

    fn max_pool2d(&self, x: &Vec<f32>, g: &PoolGeom) -> Result<(Vec<f32>, Vec<f32>)> {
        let g = *g;
        let plane_out = g.oh * g.ow;
        let mut out = host_vec(g.n * g.c * plane_out, 0.0, "max_pool2d")?;
        let mut idx = host_vec(out.len(), 0.0, "max_pool2d")?;
        let work = |nc: usize, o: &mut [f32], ix: &mut [f32]| {
            let plane = &x[nc * g.h * g.w..][..g.h * g.w];
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let (mut best, mut arg) = (f32::NEG_INFINITY, -1i64);
                    for kh in 0..g.kh {
                        let ih = (oh * g.sh + kh * g.dh) as isize - g.ph as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        for kw in 0..g.kw {
                            let iw = (ow * g.sw + kw * g.dw) as isize - g.pw as isize;
                            if iw < 0 || iw as usize >= g.w {
                                continue;
                            }
                            let i = ih as usize * g.w + iw as usize;
                            let v = plane[i];
                            // As PyTorch: NaN propagates, ties keep the first maximum.
                            if v > best || v.is_nan() || arg < 0 {
                                best = v;
                                arg = i as i64;
                            }
                        }
                    }
                    o[oh * g.ow + ow] = best;
                    ix[oh * g.ow + ow] = arg as f32;
                }
            }
        };
        out.par_chunks_mut(plane_out)
            .zip(idx.par_chunks_mut(plane_out))
            .enumerate()
            .for_each(|(nc, (o, ix))| work(nc, o, ix));
        Ok((out, idx))
    }

    fn max_pool2d_backward(
        &self,
        grad: &Vec<f32>,
        indices: &Vec<f32>,
        g: &PoolGeom,
    ) -> Result<Vec<f32>> {
        let g = *g;
        let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, "max_pool2d_backward")?;
        par_chunks(&mut dx, g.h * g.w, |nc, plane| {
            let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
            let ix = &indices[nc * g.oh * g.ow..][..g.oh * g.ow];
            for ih in 0..g.h {
                for iw in 0..g.w {
                    let me = (ih * g.w + iw) as f32;
                    let mut acc = 0.0;
                    for kh in 0..g.kh {
                        let Some(oh) = conv_src(ih, kh, g.ph, g.dh, g.sh, g.oh) else {
                            continue;
                        };
                        for kw in 0..g.kw {
                            let Some(ow) = conv_src(iw, kw, g.pw, g.dw, g.sw, g.ow) else {
                                continue;
                            };
                            if ix[oh * g.ow + ow] == me {
                                acc += go[oh * g.ow + ow];
                            }
                        }
                    }
                    plane[ih * g.w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }

    fn avg_pool2d(&self, x: &Vec<f32>, g: &PoolGeom, opts: AvgPoolOpts) -> Result<Vec<f32>> {
        let g = *g;
        let mut out = host_vec(g.n * g.c * g.oh * g.ow, 0.0, "avg_pool2d")?;
        par_chunks(&mut out, g.oh * g.ow, |nc, o| {
            let plane = &x[nc * g.h * g.w..][..g.h * g.w];
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let w = avg_window(&g, oh, ow, opts);
                    let mut acc = 0.0;
                    for ih in w.h0..w.h1 {
                        for iw in w.w0..w.w1 {
                            acc += plane[ih * g.w + iw];
                        }
                    }
                    o[oh * g.ow + ow] = acc / w.divisor;
                }
            }
        });
        Ok(out)
    }

    fn avg_pool2d_backward(
        &self,
        grad: &Vec<f32>,
        g: &PoolGeom,
        opts: AvgPoolOpts,
    ) -> Result<Vec<f32>> {
        let g = *g;
        let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, "avg_pool2d_backward")?;
        par_chunks(&mut dx, g.h * g.w, |nc, plane| {
            let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
            for ih in 0..g.h {
                for iw in 0..g.w {
                    let mut acc = 0.0;
                    for oh in windows_covering(ih, g.kh, g.sh, g.ph, g.oh) {
                        for ow in windows_covering(iw, g.kw, g.sw, g.pw, g.ow) {
                            let w = avg_window(&g, oh, ow, opts);
                            if ih >= w.h0 && ih < w.h1 && iw >= w.w0 && iw < w.w1 {
                                acc += go[oh * g.ow + ow] / w.divisor;
                            }
                        }
                    }
                    plane[ih * g.w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }

    fn adaptive_avg_pool2d(
        &self,
        x: &Vec<f32>,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>> {
        let (n, c, h, w) = dims;
        let (oh, ow) = out;
        let mut y = host_vec(n * c * oh * ow, 0.0, "adaptive_avg_pool2d")?;
        par_chunks(&mut y, oh * ow, |nc, o| {
            let plane = &x[nc * h * w..][..h * w];
            for i in 0..oh {
                let (h0, h1) = adaptive_window(i, h, oh);
                for j in 0..ow {
                    let (w0, w1) = adaptive_window(j, w, ow);
                    let mut acc = 0.0;
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            acc += plane[ih * w + iw];
                        }
                    }
                    o[i * ow + j] = acc / ((h1 - h0) * (w1 - w0)) as f32;
                }
            }
        });
        Ok(y)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &Vec<f32>,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>> {
        let (n, c, h, w) = dims;
        let (oh, ow) = out;
        let mut dx = host_vec(n * c * h * w, 0.0, "adaptive_avg_pool2d_backward")?;
        par_chunks(&mut dx, h * w, |nc, plane| {
            let go = &grad[nc * oh * ow..][..oh * ow];
            for ih in 0..h {
                let (oh0, oh1) = adaptive_range(ih, h, oh);
                for iw in 0..w {
                    let (ow0, ow1) = adaptive_range(iw, w, ow);
                    let mut acc = 0.0;
                    for i in oh0..oh1 {
                        let (h0, h1) = adaptive_window(i, h, oh);
                        if ih < h0 || ih >= h1 {
                            continue;
                        }
                        for j in ow0..ow1 {
                            let (w0, w1) = adaptive_window(j, w, ow);
                            if iw >= w0 && iw < w1 {
                                acc += go[i * ow + j] / ((h1 - h0) * (w1 - w0)) as f32;
                            }
                        }
                    }
                    plane[ih * w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }

    fn upsample_nearest(&self, x: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        let g = *g;
        let mut y = host_vec(g.n * g.c * g.oh * g.ow, 0.0, "upsample_nearest")?;
        let cols: Vec<usize> = (0..g.ow).map(|j| nearest_src(j, g.w, g.scale_w)).collect();
        par_chunks(&mut y, g.oh * g.ow, |nc, o| {
            let plane = &x[nc * g.h * g.w..][..g.h * g.w];
            for i in 0..g.oh {
                let row = &plane[nearest_src(i, g.h, g.scale_h) * g.w..][..g.w];
                for (dst, &sw) in o[i * g.ow..][..g.ow].iter_mut().zip(&cols) {
                    *dst = row[sw];
                }
            }
        });
        Ok(y)
    }

    fn upsample_nearest_backward(&self, grad: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        let g = *g;
        let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, "upsample_nearest_backward")?;
        par_chunks(&mut dx, g.h * g.w, |nc, plane| {
            let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
            for ih in 0..g.h {
                let (a0, a1) = nearest_range(ih, g.h, g.oh, g.scale_h);
                for iw in 0..g.w {
                    let (b0, b1) = nearest_range(iw, g.w, g.ow, g.scale_w);
                    let mut acc = 0.0;
                    for i in a0..a1 {
                        for j in b0..b1 {
                            acc += go[i * g.ow + j];
                        }
                    }
                    plane[ih * g.w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }

    fn upsample_bilinear(&self, x: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        let g = *g;
        let mut y = host_vec(g.n * g.c * g.oh * g.ow, 0.0, "upsample_bilinear")?;
        // Source columns and weights are the same for every row and plane: compute them once.
        let cols: Vec<_> = (0..g.ow)
            .map(|j| bilinear_src(j, g.w, g.scale_w, g.align_corners))
            .collect();
        par_chunks(&mut y, g.oh * g.ow, |nc, o| {
            let p = &x[nc * g.h * g.w..][..g.h * g.w];
            for i in 0..g.oh {
                let (h0, h1, lh0, lh1) = bilinear_src(i, g.h, g.scale_h, g.align_corners);
                let (r0, r1) = (&p[h0 * g.w..][..g.w], &p[h1 * g.w..][..g.w]);
                for (dst, &(w0, w1, lw0, lw1)) in o[i * g.ow..][..g.ow].iter_mut().zip(&cols) {
                    *dst =
                        lh0 * (lw0 * r0[w0] + lw1 * r0[w1]) + lh1 * (lw0 * r1[w0] + lw1 * r1[w1]);
                }
            }
        });
        Ok(y)
    }

    fn upsample_bilinear_backward(&self, grad: &Vec<f32>, g: &UpsampleGeom) -> Result<Vec<f32>> {
        let g = *g;
        let mut dx = host_vec(g.n * g.c * g.h * g.w, 0.0, "upsample_bilinear_backward")?;
        par_chunks(&mut dx, g.h * g.w, |nc, plane| {
            let go = &grad[nc * g.oh * g.ow..][..g.oh * g.ow];
            for ih in 0..g.h {
                let (a0, a1) = bilinear_range(ih, g.h, g.oh, g.scale_h, g.align_corners);
                for iw in 0..g.w {
                    let (b0, b1) = bilinear_range(iw, g.w, g.ow, g.scale_w, g.align_corners);
                    let mut acc = 0.0;
                    for i in a0..a1 {
                        let wh = bilinear_weight(ih, i, g.h, g.scale_h, g.align_corners);
                        if wh == 0.0 {
                            continue;
                        }
                        for j in b0..b1 {
                            let ww = bilinear_weight(iw, j, g.w, g.scale_w, g.align_corners);
                            acc += wh * ww * go[i * g.ow + j];
                        }
                    }
                    plane[ih * g.w + iw] = acc;
                }
            }
        });
        Ok(dx)
    }
}

/// The output position whose window tap `k` lands on input `i`, if any:
/// `o * stride + k * dilation - pad == i`.
#[inline]
pub(crate) fn conv_src(
    i: usize,
    k: usize,
    pad: usize,
    dilation: usize,
    stride: usize,
    out: usize,
) -> Option<usize> {
    let t = i as isize + pad as isize - (k * dilation) as isize;
    if t < 0 || !(t as usize).is_multiple_of(stride) {
        return None;
    }
    let o = t as usize / stride;
    (o < out).then_some(o)
}

/// Outputs `[lo, hi)` whose (undilated) window of size `k` may cover input `i`.
#[inline]
fn windows_covering(
    i: usize,
    k: usize,
    stride: usize,
    pad: usize,
    out: usize,
) -> std::ops::Range<usize> {
    let ip = i + pad;
    let lo = if ip + 1 > k {
        (ip + 1 - k).div_ceil(stride)
    } else {
        0
    };
    let hi = (ip / stride + 1).min(out);
    lo..hi.max(lo)
}

/// An average-pooling window clipped to the input, and its divisor.
struct AvgWindow {
    h0: usize,
    h1: usize,
    w0: usize,
    w1: usize,
    divisor: f32,
}

/// PyTorch's avg_pool2d window: the divisor counts padding (clipped to `in + pad`) when
/// `count_include_pad`, else only real input elements; `divisor_override` replaces both.
#[inline]
fn avg_window(g: &PoolGeom, oh: usize, ow: usize, opts: AvgPoolOpts) -> AvgWindow {
    let hs = (oh * g.sh) as isize - g.ph as isize;
    let ws = (ow * g.sw) as isize - g.pw as isize;
    let he = (hs + g.kh as isize).min((g.h + g.ph) as isize);
    let we = (ws + g.kw as isize).min((g.w + g.pw) as isize);
    let pool_size = (he - hs) * (we - ws);
    let h0 = hs.max(0) as usize;
    let w0 = ws.max(0) as usize;
    let h1 = (he.min(g.h as isize)).max(0) as usize;
    let w1 = (we.min(g.w as isize)).max(0) as usize;
    let divisor = match opts.divisor_override {
        Some(d) => d as f32,
        None if opts.count_include_pad => pool_size as f32,
        None => ((h1 - h0) * (w1 - w0)) as f32,
    };
    AvgWindow {
        h0,
        h1: h1.max(h0),
        w0,
        w1: w1.max(w0),
        divisor,
    }
}

/// Adaptive-pool outputs whose window may contain input `i`.
#[inline]
fn adaptive_range(i: usize, input: usize, out: usize) -> (usize, usize) {
    let lo = (i * out) / input;
    let hi = (((i + 1) * out).div_ceil(input)).min(out);
    (lo.saturating_sub(1), hi)
}

/// Outputs `[lo, hi)` of nearest upsampling that read input `i` (`nearest_src(o) == i`).
#[inline]
fn nearest_range(i: usize, input: usize, out: usize, scale: f32) -> (usize, usize) {
    // nearest_src is monotone in o: find the first o with src >= i and the first with src > i.
    let first = |target: usize| {
        let (mut lo, mut hi) = (0, out);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if nearest_src(mid, input, scale) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    (first(i), first(i + 1))
}

/// Outputs `[lo, hi)` of bilinear interpolation that may read input `i` (i0 or i1 equal to i).
#[inline]
fn bilinear_range(
    i: usize,
    input: usize,
    out: usize,
    scale: f32,
    align_corners: bool,
) -> (usize, usize) {
    // i0 is monotone in o and i1 is i0 or i0 + 1: outputs with i0 in [i - 1, i].
    let first = |target: usize| {
        let (mut lo, mut hi) = (0, out);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if bilinear_src(mid, input, scale, align_corners).0 >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    (first(i.saturating_sub(1)), first(i + 1))
}

/// Weight with which output `o` reads input `i` along one axis.
#[inline]
fn bilinear_weight(i: usize, o: usize, input: usize, scale: f32, align_corners: bool) -> f32 {
    let (i0, i1, l0, l1) = bilinear_src(o, input, scale, align_corners);
    let mut w = 0.0;
    if i0 == i {
        w += l0;
    }
    if i1 == i {
        w += l1;
    }
    w
}
