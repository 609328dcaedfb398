//! The GPU backend: every primitive of [`Backend`] as a WGSL dispatch (kernels in `shaders/`).

mod context;

pub(crate) use context::Shader;
pub use context::{
    enumerate_adapters, shader_sources, AdapterSummary, GpuBuffer, GpuContext, GpuLimits,
    GpuOptions, PoolStats,
};

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::backend::{
    AvgPoolOpts, Backend, BinaryOp, BroadcastSpec, GemmSpec, MatLayout, ReduceOp, StridedSpec,
    UnaryOp, UpsampleGeom, MAX_RANK,
};
use crate::shape::{ConvGeom, PoolGeom};
use crate::{Error, Result};

/// Threads per workgroup of the one-dimensional kernels (their `override WG`).
const WG: usize = 256;
/// Axis length from which a sum uses a whole workgroup per output.
const WIDE_REDUCE_MIN: usize = 128;

/// Workgroups for `n_groups` along x, spilling into y and then z past the per-dimension limit
/// (kernels flatten the workgroup id and skip the surplus).
fn grid(n_groups: usize, max: u32) -> Result<[u32; 3]> {
    let max = max as usize;
    let x = n_groups.min(max);
    let rest = n_groups.div_ceil(max).max(1);
    let y = rest.min(max);
    let z = rest.div_ceil(max).max(1);
    if z > max {
        return Err(Error::Gpu(format!(
            "{n_groups} workgroups exceed a {max}^3 grid"
        )));
    }
    Ok([x as u32, y as u32, z as u32])
}

fn u32_of(v: usize, what: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid {
        op: what,
        msg: format!("{v} does not fit the GPU's 32-bit indices"),
    })
}

/// A geometry value for the shaders, which index with i32 arithmetic: at most `i32::MAX`.
fn fit(v: usize, what: &'static str) -> Result<u32> {
    if v > i32::MAX as usize {
        return Err(Error::Invalid {
            op: what,
            msg: format!("{v} exceeds the GPU kernels' 31-bit index range"),
        });
    }
    Ok(v as u32)
}

/// Bound on the largest index a window kernel computes (`o * stride + k * dilation` per axis).
#[allow(clippy::too_many_arguments)]
fn furthest_tap(
    oh: usize,
    sh: usize,
    kh: usize,
    dh: usize,
    ow: usize,
    sw: usize,
    kw: usize,
    dw: usize,
) -> usize {
    let axis = |o: usize, s: usize, k: usize, d: usize| {
        o.saturating_mul(s).saturating_add(k.saturating_mul(d))
    };
    axis(oh, sh, kh, dh).max(axis(ow, sw, kw, dw))
}

fn pack_dims(v: &[usize]) -> Result<[[u32; 4]; 2]> {
    let mut out = [[0u32; 4]; 2];
    for (i, &d) in v.iter().enumerate() {
        out[i / 4][i % 4] = u32_of(d, "strided index")?;
    }
    Ok(out)
}

/// Signed strides as two's-complement u32: the shader's wrapping u32 arithmetic then walks
/// backwards for negative ones.
fn pack_signed(v: &[isize]) -> Result<[[u32; 4]; 2]> {
    let mut out = [[0u32; 4]; 2];
    for (i, &d) in v.iter().enumerate() {
        let s = i32::try_from(d).map_err(|_| Error::Invalid {
            op: "strided index",
            msg: format!("stride {d} does not fit the GPU's 32-bit indices"),
        })?;
        out[i / 4][i % 4] = s as u32;
    }
    Ok(out)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct UnaryParams {
    n: u32,
    op: u32,
    alpha: f32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BinaryParams {
    n: u32,
    op: u32,
    alpha: f32,
    rank: u32,
    plain: u32,
    _pad: [u32; 3],
    dims: [[u32; 4]; 2],
    a_strides: [[u32; 4]; 2],
    b_strides: [[u32; 4]; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ReduceParams {
    outer: u32,
    len: u32,
    inner: u32,
    op: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CopyParams {
    n: u32,
    rank: u32,
    offset: u32,
    _pad: u32,
    dims: [[u32; 4]; 2],
    strides: [[u32; 4]; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatParams {
    offset: u32,
    batch_outer: u32,
    batch_inner: u32,
    row_stride: u32,
    col_stride: u32,
    _pad: [u32; 3],
}

impl MatParams {
    fn new(l: &MatLayout) -> Result<Self> {
        Ok(MatParams {
            offset: u32_of(l.offset, "gemm")?,
            batch_outer: u32_of(l.batch_outer_stride, "gemm")?,
            batch_inner: u32_of(l.batch_inner_stride, "gemm")?,
            row_stride: u32_of(l.row_stride, "gemm")?,
            col_stride: u32_of(l.col_stride, "gemm")?,
            _pad: [0; 3],
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    batch_inner: u32,
    batch_start: u32,
    row_start: u32,
    col_start: u32,
    _pad: u32,
    a: MatParams,
    b: MatParams,
    c: MatParams,
}

/// Output tile of `shaders/gemm.wgsl` (BM = BN).
const GEMM_TILE: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ConvParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pad_top: u32,
    pad_left: u32,
    dh: u32,
    dw: u32,
    oh: u32,
    ow: u32,
    total: u32,
    /// depthwise: filters per input channel
    mult: u32,
}

impl ConvParams {
    fn new(g: &ConvGeom, total: usize) -> Result<Self> {
        // the furthest tap, oh * sh + kh * dh, must stay in range too
        fit(
            furthest_tap(g.oh, g.sh, g.kh, g.dh, g.ow, g.sw, g.kw, g.dw),
            "conv2d",
        )?;
        Ok(ConvParams {
            n: fit(g.n, "conv2d")?,
            c: fit(g.c, "conv2d")?,
            h: fit(g.h, "conv2d")?,
            w: fit(g.w, "conv2d")?,
            kh: fit(g.kh, "conv2d")?,
            kw: fit(g.kw, "conv2d")?,
            sh: fit(g.sh, "conv2d")?,
            sw: fit(g.sw, "conv2d")?,
            pad_top: fit(g.pad_top, "conv2d")?,
            pad_left: fit(g.pad_left, "conv2d")?,
            dh: fit(g.dh, "conv2d")?,
            dw: fit(g.dw, "conv2d")?,
            oh: fit(g.oh, "conv2d")?,
            ow: fit(g.ow, "conv2d")?,
            total: u32_of(total, "conv2d")?,
            mult: 1,
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PoolParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    oh: u32,
    ow: u32,
    total: u32,
    flags: u32,
    divisor: u32,
    _pad: [u32; 3],
}

impl PoolParams {
    fn new(g: &PoolGeom, total: usize, opts: Option<AvgPoolOpts>) -> Result<Self> {
        let (flags, divisor) = match opts {
            Some(o) => (
                o.count_include_pad as u32 | (o.divisor_override.is_some() as u32) << 1,
                fit(o.divisor_override.unwrap_or(0), "avg_pool2d")?,
            ),
            None => (0, 0),
        };
        fit(
            furthest_tap(g.oh, g.sh, g.kh, g.dh, g.ow, g.sw, g.kw, g.dw),
            "pool",
        )?;
        Ok(PoolParams {
            n: fit(g.n, "pool")?,
            c: fit(g.c, "pool")?,
            h: fit(g.h, "pool")?,
            w: fit(g.w, "pool")?,
            kh: fit(g.kh, "pool")?,
            kw: fit(g.kw, "pool")?,
            sh: fit(g.sh, "pool")?,
            sw: fit(g.sw, "pool")?,
            ph: fit(g.ph, "pool")?,
            pw: fit(g.pw, "pool")?,
            dh: fit(g.dh, "pool")?,
            dw: fit(g.dw, "pool")?,
            oh: fit(g.oh, "pool")?,
            ow: fit(g.ow, "pool")?,
            total: u32_of(total, "pool")?,
            flags,
            divisor,
            _pad: [0; 3],
        })
    }

    /// Adaptive pooling reuses the struct: only the sizes matter.
    fn adaptive(
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
        total: usize,
    ) -> Result<Self> {
        let (n, c, h, w) = dims;
        // window bounds are computed as o * h and (i + 1) * oh in u32
        fit(
            (h + 1)
                .saturating_mul(out.0 + 1)
                .max((w + 1).saturating_mul(out.1 + 1)),
            "adaptive_avg_pool2d",
        )?;
        let mut p = PoolParams::zeroed();
        p.n = fit(n, "adaptive_avg_pool2d")?;
        p.c = fit(c, "adaptive_avg_pool2d")?;
        p.h = fit(h, "adaptive_avg_pool2d")?;
        p.w = fit(w, "adaptive_avg_pool2d")?;
        p.oh = fit(out.0, "adaptive_avg_pool2d")?;
        p.ow = fit(out.1, "adaptive_avg_pool2d")?;
        p.total = u32_of(total, "adaptive_avg_pool2d")?;
        Ok(p)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct UpsampleParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    total: u32,
    align_corners: u32,
    scale_h: f32,
    scale_w: f32,
    _pad: [u32; 2],
}

impl UpsampleParams {
    fn new(g: &UpsampleGeom, total: usize) -> Result<Self> {
        Ok(UpsampleParams {
            n: fit(g.n, "upsample")?,
            c: fit(g.c, "upsample")?,
            h: fit(g.h, "upsample")?,
            w: fit(g.w, "upsample")?,
            oh: fit(g.oh, "upsample")?,
            ow: fit(g.ow, "upsample")?,
            total: u32_of(total, "upsample")?,
            align_corners: g.align_corners as u32,
            scale_h: g.scale_h,
            scale_w: g.scale_w,
            _pad: [0; 2],
        })
    }
}

/// The GPU backend: a handle on one context.
#[derive(Clone, Debug)]
pub struct GpuBackend {
    pub(crate) ctx: Arc<GpuContext>,
}

impl GpuBackend {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        GpuBackend { ctx }
    }

    /// One thread per element of a `total`-element output: `entry(src..) -> dst`.
    fn map_kernel<P: Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &P,
        inputs: &[&GpuBuffer],
        total: usize,
    ) -> Result<GpuBuffer> {
        let out = self.ctx.alloc(total, entry)?;
        let mut bindings: Vec<(u32, &GpuBuffer)> = inputs
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, *b))
            .collect();
        let out_binding = inputs.len() as u32 + 1;
        bindings.push((out_binding, &out));
        let groups = grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )?;
        self.ctx.dispatch(
            shader,
            entry,
            bytemuck::bytes_of(params),
            &bindings,
            &[out_binding],
            groups,
        )?;
        Ok(out)
    }

    /// A depthwise kernel over `total` outputs: `src` at binding 1, `aux` at 3, output at 2.
    fn depthwise(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        aux: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
        total: usize,
    ) -> Result<GpuBuffer> {
        let mut p = ConvParams::new(g, total)?;
        p.mult = fit(mult, "conv2d")?;
        let out = self.ctx.alloc(total, "conv2d")?;
        let groups = grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )?;
        self.ctx.dispatch(
            Shader::Conv,
            entry,
            bytemuck::bytes_of(&p),
            &[(1, src), (2, &out), (3, aux)],
            &[2],
            groups,
        )?;
        Ok(out)
    }

    /// A buffer of `n` copies of `value`.
    pub fn full(&self, n: usize, value: f32) -> Result<GpuBuffer> {
        let out = self.ctx.alloc(n, "full")?;
        let p = UnaryParams {
            n: u32_of(n, "full")?,
            op: 13,
            alpha: value,
            _pad: 0,
        };
        let groups = grid(n.div_ceil(WG), self.ctx.limits.max_workgroups_per_dimension)?;
        self.ctx.dispatch(
            Shader::Unary,
            "fill",
            bytemuck::bytes_of(&p),
            &[(2, &out)],
            &[2],
            groups,
        )?;
        Ok(out)
    }
}

impl Backend for GpuBackend {
    type Storage = GpuBuffer;

    fn unary(&self, x: &GpuBuffer, n: usize, op: UnaryOp) -> Result<GpuBuffer> {
        if let UnaryOp::Fill(v) = op {
            return self.full(n, v);
        }
        let (code, alpha) = op.code();
        let p = UnaryParams {
            n: u32_of(n, "unary")?,
            op: code,
            alpha,
            _pad: 0,
        };
        self.map_kernel(Shader::Unary, "unary", &p, &[x], n)
    }

    fn binary(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        op: BinaryOp,
        spec: &BroadcastSpec,
    ) -> Result<GpuBuffer> {
        if spec.out.len() > MAX_RANK {
            return Err(Error::Invalid {
                op: "binary",
                msg: format!("rank {} exceeds {MAX_RANK}", spec.out.len()),
            });
        }
        let (code, alpha) = op.code();
        let n = spec.len();
        let p = BinaryParams {
            n: u32_of(n, "binary")?,
            op: code,
            alpha,
            rank: spec.out.len() as u32,
            plain: spec.is_plain() as u32,
            _pad: [0; 3],
            dims: pack_dims(&spec.out)?,
            a_strides: pack_dims(&spec.a_strides)?,
            b_strides: pack_dims(&spec.b_strides)?,
        };
        self.map_kernel(Shader::Binary, "binary", &p, &[a, b], n)
    }

    fn reduce_axis(
        &self,
        x: &GpuBuffer,
        outer: usize,
        len: usize,
        inner: usize,
        op: ReduceOp,
    ) -> Result<GpuBuffer> {
        let p = ReduceParams {
            outer: u32_of(outer, "sum")?,
            len: u32_of(len, "sum")?,
            inner: u32_of(inner, "sum")?,
            op: op.code(),
        };
        let outputs = outer * inner;
        if len >= WIDE_REDUCE_MIN {
            let out = self.ctx.alloc(outputs, "sum")?;
            let groups = grid(outputs, self.ctx.limits.max_workgroups_per_dimension)?;
            self.ctx.dispatch(
                Shader::Reduce,
                "sum_wide",
                bytemuck::bytes_of(&p),
                &[(1, x), (2, &out)],
                &[2],
                groups,
            )?;
            Ok(out)
        } else {
            self.map_kernel(Shader::Reduce, "sum_narrow", &p, &[x], outputs)
        }
    }

    fn copy_strided(&self, x: &GpuBuffer, spec: &StridedSpec) -> Result<GpuBuffer> {
        if spec.out.len() > MAX_RANK {
            return Err(Error::Invalid {
                op: "copy",
                msg: format!("rank {} exceeds {MAX_RANK}", spec.out.len()),
            });
        }
        let n: usize = spec.out.iter().product();
        let p = CopyParams {
            n: u32_of(n, "copy")?,
            rank: spec.out.len() as u32,
            offset: u32_of(spec.offset, "copy")?,
            _pad: 0,
            dims: pack_dims(&spec.out)?,
            strides: pack_signed(&spec.strides)?,
        };
        self.map_kernel(Shader::Copy, "copy_strided", &p, &[x], n)
    }

    fn gemm(&self, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
        let c = self.ctx.alloc(s.c_len, "matmul")?;
        let max = self.ctx.limits.max_workgroups_per_dimension as usize;
        // Rows, columns and batches beyond one dispatch are split into several.
        let span = max * GEMM_TILE;
        for batch_start in (0..s.batch).step_by(max) {
            let batches = (s.batch - batch_start).min(max);
            for row_start in (0..s.m).step_by(span) {
                let rows = (s.m - row_start).min(span);
                for col_start in (0..s.n).step_by(span) {
                    let cols = (s.n - col_start).min(span);
                    let p = GemmParams {
                        m: u32_of(row_start + rows, "matmul")?,
                        n: u32_of(col_start + cols, "matmul")?,
                        k: u32_of(s.k, "matmul")?,
                        batch_inner: u32_of(s.batch_inner, "matmul")?,
                        batch_start: u32_of(batch_start, "matmul")?,
                        row_start: u32_of(row_start, "matmul")?,
                        col_start: u32_of(col_start, "matmul")?,
                        _pad: 0,
                        a: MatParams::new(&s.a)?,
                        b: MatParams::new(&s.b)?,
                        c: MatParams::new(&s.c)?,
                    };
                    let groups = [
                        cols.div_ceil(GEMM_TILE) as u32,
                        rows.div_ceil(GEMM_TILE) as u32,
                        batches as u32,
                    ];
                    self.ctx.dispatch(
                        Shader::Gemm,
                        "gemm",
                        bytemuck::bytes_of(&p),
                        &[(1, a), (2, b), (3, &c)],
                        &[3],
                        groups,
                    )?;
                }
            }
        }
        Ok(c)
    }

    fn im2col(&self, x: &GpuBuffer, g: &ConvGeom) -> Result<GpuBuffer> {
        let total = g.row_count() * g.row_len();
        self.map_kernel(
            Shader::Conv,
            "im2col",
            &ConvParams::new(g, total)?,
            &[x],
            total,
        )
    }

    fn col2im(&self, cols: &GpuBuffer, g: &ConvGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.map_kernel(
            Shader::Conv,
            "col2im",
            &ConvParams::new(g, total)?,
            &[cols],
            total,
        )
    }

    fn depthwise_conv2d(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * mult * g.oh * g.ow;
        self.depthwise("dw_fwd", x, w, g, mult, total)
    }

    fn depthwise_conv2d_backward_input(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.depthwise("dw_bwd_input", grad, w, g, mult, g.n * g.c * g.h * g.w)
    }

    fn depthwise_conv2d_backward_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        // one workgroup per weight, reducing over (n, oh, ow)
        let total = g.c * mult * g.kh * g.kw;
        let mut p = ConvParams::new(g, total)?;
        p.mult = fit(mult, "conv2d")?;
        let out = self.ctx.alloc(total, "conv2d")?;
        let groups = grid(total, self.ctx.limits.max_workgroups_per_dimension)?;
        self.ctx.dispatch(
            Shader::Conv,
            "dw_bwd_weight",
            bytemuck::bytes_of(&p),
            &[(1, x), (2, &out), (3, grad)],
            &[2],
            groups,
        )?;
        Ok(out)
    }

    fn max_pool2d(&self, x: &GpuBuffer, g: &PoolGeom) -> Result<(GpuBuffer, GpuBuffer)> {
        let total = g.n * g.c * g.oh * g.ow;
        let out = self.ctx.alloc(total, "max_pool2d")?;
        let idx = self.ctx.alloc(total, "max_pool2d")?;
        let p = PoolParams::new(g, total, None)?;
        let groups = grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )?;
        self.ctx.dispatch(
            Shader::Pool,
            "max_fwd",
            bytemuck::bytes_of(&p),
            &[(1, x), (2, &out), (3, &idx)],
            &[2, 3],
            groups,
        )?;
        Ok((out, idx))
    }

    fn max_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &PoolGeom,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let out = self.ctx.alloc(total, "max_pool2d_backward")?;
        let p = PoolParams::new(g, total, None)?;
        let groups = grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )?;
        self.ctx.dispatch(
            Shader::Pool,
            "max_bwd",
            bytemuck::bytes_of(&p),
            &[(1, grad), (2, &out), (3, indices)],
            &[2],
            groups,
        )?;
        Ok(out)
    }

    fn avg_pool2d(&self, x: &GpuBuffer, g: &PoolGeom, opts: AvgPoolOpts) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.oh * g.ow;
        self.map_kernel(
            Shader::Pool,
            "avg_fwd",
            &PoolParams::new(g, total, Some(opts))?,
            &[x],
            total,
        )
    }

    fn avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        g: &PoolGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.map_kernel(
            Shader::Pool,
            "avg_bwd",
            &PoolParams::new(g, total, Some(opts))?,
            &[grad],
            total,
        )
    }

    fn adaptive_avg_pool2d(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let total = dims.0 * dims.1 * out.0 * out.1;
        self.map_kernel(
            Shader::Pool,
            "adaptive_fwd",
            &PoolParams::adaptive(dims, out, total)?,
            &[x],
            total,
        )
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let total = dims.0 * dims.1 * dims.2 * dims.3;
        self.map_kernel(
            Shader::Pool,
            "adaptive_bwd",
            &PoolParams::adaptive(dims, out, total)?,
            &[grad],
            total,
        )
    }

    fn upsample_nearest(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.oh * g.ow;
        self.map_kernel(
            Shader::Upsample,
            "nearest_fwd",
            &UpsampleParams::new(g, total)?,
            &[x],
            total,
        )
    }

    fn upsample_nearest_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.map_kernel(
            Shader::Upsample,
            "nearest_bwd",
            &UpsampleParams::new(g, total)?,
            &[grad],
            total,
        )
    }

    fn upsample_bilinear(&self, x: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.oh * g.ow;
        self.map_kernel(
            Shader::Upsample,
            "bilinear_fwd",
            &UpsampleParams::new(g, total)?,
            &[x],
            total,
        )
    }

    fn upsample_bilinear_backward(&self, grad: &GpuBuffer, g: &UpsampleGeom) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.map_kernel(
            Shader::Upsample,
            "bilinear_bwd",
            &UpsampleParams::new(g, total)?,
            &[grad],
            total,
        )
    }
}
