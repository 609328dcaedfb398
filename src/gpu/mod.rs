//! The GPU backend: every primitive of [`Backend`] as a WGSL dispatch (kernels in `shaders/`).

mod context;
mod conv;
mod gemm;
mod loops;
mod pool;
mod reduce;
pub mod selftest;
mod shadow;
mod upsample;

pub(crate) use context::Shader;
pub use context::{
    enumerate_adapters, shader_sources, AdapterSummary, GpuBuffer, GpuContext, GpuLimits,
    GpuOptions, PoolStats, LOOP_CAP,
};
pub use selftest::SelfTestReport;
pub(crate) use shadow::Checked;

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
    chunk: u32,
    chunks: u32,
    _pad: [u32; 2],
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
    k_start: u32,
    k_end: u32,
    _pad: [u32; 3],
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
    /// this pass's rows of the outer tap loop (see `loops::row_passes`)
    r0: u32,
    r1: u32,
    _pad: [u32; 2],
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
            r0: 0,
            r1: 0,
            _pad: [0; 2],
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
    /// this pass's rows of the outer window loop, and the row count (see `loops::row_passes`)
    r0: u32,
    r1: u32,
    r_end: u32,
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
            r0: 0,
            r1: 0,
            r_end: 0,
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
    /// backward passes: this pass's rows of the outer loop
    r0: u32,
    r1: u32,
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
            r0: 0,
            r1: 0,
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

    fn cap(&self) -> usize {
        self.ctx.limits.loop_cap
    }

    /// Workgroups for one thread per element of a `total`-element output.
    fn threads(&self, total: usize) -> Result<[u32; 3]> {
        grid(
            total.div_ceil(WG),
            self.ctx.limits.max_workgroups_per_dimension,
        )
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
        self.map_passes(
            shader,
            entry,
            *params,
            |_, _, _| {},
            inputs,
            total,
            &[(0, 0)],
        )
    }

    /// [`GpuBackend::map_kernel`] in passes over the rows of the kernel's outer loop (`passes`
    /// from `loops::row_passes`), each dispatch resuming from the output of the one before.
    #[allow(clippy::too_many_arguments)]
    fn map_passes<P: Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        params: P,
        set_rows: impl Fn(&mut P, u32, u32),
        inputs: &[&GpuBuffer],
        total: usize,
        passes: &[(u32, u32)],
    ) -> Result<GpuBuffer> {
        let out = self.ctx.alloc(total, entry)?;
        let mut bindings: Vec<(u32, &GpuBuffer)> = inputs
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, *b))
            .collect();
        let out_binding = inputs.len() as u32 + 1;
        bindings.push((out_binding, &out));
        let groups = self.threads(total)?;
        for &(r0, r1) in passes {
            let mut p = params;
            set_rows(&mut p, r0, r1);
            self.ctx.dispatch(
                shader,
                entry,
                bytemuck::bytes_of(&p),
                &bindings,
                &[out_binding],
                groups,
            )?;
        }
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
        self.ctx.dispatch(
            Shader::Unary,
            "fill",
            bytemuck::bytes_of(&p),
            &[(2, &out)],
            &[2],
            self.threads(n)?,
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
        self.reduce(x, outer, len, inner, op)
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
        self.gemm_split(a, b, s)
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
        self.col2im_passes(cols, g)
    }

    fn depthwise_conv2d(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * mult * g.oh * g.ow;
        self.depthwise("dw_fwd", x, w, g, mult, total, g.kh)
    }

    fn depthwise_conv2d_backward_input(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        self.depthwise("dw_bwd_input", grad, w, g, mult, total, mult * g.kh)
    }

    fn depthwise_conv2d_backward_weight(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &ConvGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        self.depthwise_weight(x, grad, g, mult)
    }

    fn max_pool2d(&self, x: &GpuBuffer, g: &PoolGeom) -> Result<(GpuBuffer, GpuBuffer)> {
        self.max_pool_fwd(x, g)
    }

    fn max_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &PoolGeom,
    ) -> Result<GpuBuffer> {
        self.max_pool_bwd(grad, indices, g)
    }

    fn avg_pool2d(&self, x: &GpuBuffer, g: &PoolGeom, opts: AvgPoolOpts) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.oh * g.ow;
        let p = PoolParams::new(g, total, Some(opts))?;
        self.pool_passes("avg_fwd", p, x, total, g.kh, g.kw)
    }

    fn avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        g: &PoolGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        let total = g.n * g.c * g.h * g.w;
        let p = PoolParams::new(g, total, Some(opts))?;
        // outputs whose windows can cover one input, per axis
        let rows = (g.kh - 1) / g.sh + 1;
        let cols = (g.kw - 1) / g.sw + 1;
        self.pool_passes("avg_bwd", p, grad, total, rows, cols)
    }

    fn adaptive_avg_pool2d(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let total = dims.0 * dims.1 * out.0 * out.1;
        let p = PoolParams::adaptive(dims, out, total)?;
        // the longest window per axis
        let rows = (dims.2.div_ceil(out.0) + 1).min(dims.2);
        let cols = (dims.3.div_ceil(out.1) + 1).min(dims.3);
        self.pool_passes("adaptive_fwd", p, x, total, rows, cols)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        grad: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let total = dims.0 * dims.1 * dims.2 * dims.3;
        let p = PoolParams::adaptive(dims, out, total)?;
        // the most windows covering one input per axis (the kernel scans one extra each side)
        let rows = (out.0.div_ceil(dims.2) + 2).min(out.0);
        let cols = (out.1.div_ceil(dims.3) + 2).min(out.1);
        self.pool_passes("adaptive_bwd", p, grad, total, rows, cols)
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
        self.upsample_bwd("nearest_bwd", grad, g)
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
        self.upsample_bwd("bilinear_bwd", grad, g)
    }
}
