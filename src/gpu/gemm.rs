//! The GEMM family (shaders/gemm.wgsl): the tiled strided batched GEMM, launched in as many
//! dispatches as the dispatch limits and the loop budget need, and split past one binding in
//! blocks of batches, rows, columns and K. Its convolution entry points, which gather their
//! operands as the tiles load, belong to the convolution family (`conv.rs`), which launches them
//! through [`launch`].

use bytemuck::Zeroable;

use super::elementwise;
use super::gemm_direct::{self, Operand};
use super::gemm_direct_kernels::{direct_fit, direct_kernel};
use super::runtime::kernel::{kernels, Buffer, Module};
use super::runtime::launch::u32_of;
use super::runtime::loops;
use super::runtime::uniforms::{uniform, Uniform, WgslType};
use super::runtime::{Bind, GemmTiles, GpuBuffer, Kernel};
use super::split::{fits, gather_range, resolve, too_large, Ctx, Partials};
use super::window::WindowParams;
use crate::backend::channel::per_channel;
use crate::backend::{BinaryOp, GemmSpec, MatLayout, ReduceOp, UnaryOp};
use crate::{Error, Result};

/// shaders/gemm.wgsl, and the direct variant's entry points (`gemm_direct.rs`).
pub(crate) static GEMM_WGSL: Module = Module::with_tail(
    "gemm",
    include_str!("../../shaders/gemm.wgsl"),
    gemm_uniforms,
    GemmParams::WGSL_NAME,
    BUFFERS,
    gemm_direct::wgsl,
);

/// [`GEMM_WGSL`] with the subgroup variant's entry points too (`gemm_subgroup.rs`): compiled
/// only where the context uses subgroups.
pub(crate) static GEMM_SUBGROUPS_WGSL: Module = Module::with_tail(
    "gemm_subgroups",
    include_str!("../../shaders/gemm.wgsl"),
    gemm_uniforms,
    GemmParams::WGSL_NAME,
    BUFFERS,
    super::gemm_subgroup::wgsl,
);

kernels! { GEMM_WGSL: GemmParams;
    GEMM = ("gemm", "matmul", GEMM_BINDINGS, "MODE" = 0);
}

uniform! {
    /// One operand's `MatLayout` as the shader reads it.
    MatParams as "Mat" {
        offset: u32,
        batch_outer: u32,
        batch_inner: u32,
        row_stride: u32,
        col_stride: u32,
        _pad: [u32; 3],
    }
}

impl WgslType for MatParams {
    const WGSL: &'static str = "Mat";
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

uniform! {
    GemmParams as "Params" {
        m: u32,
        n: u32,
        k: u32,
        batch_inner: u32,
        batch_start: u32,
        row_start: u32,
        col_start: u32,
        /// this dispatch's K range within each chunk; later ranges resume from C
        k_start: u32,
        k_end: u32,
        /// conv_wgrad: A's and B's stride between images along k; conv_dgrad: A's between filters
        a_image: u32,
        b_image: u32,
        /// bit 0: add `bias[(batch entry % batch_inner) * bias_stride + row]`; bit 1: ReLU;
        /// bit 2: add `bias[column]` (all on the last K range only)
        epilogue: u32,
        bias_stride: u32,
        /// K per chunk of a product split along K (K itself when unsplit), C elements between
        /// the chunks' slabs, and batch entries per dispatch (grid z is chunks x entries)
        k_split: u32,
        slab: u32,
        batches: u32,
        a: MatParams,
        b: MatParams,
        c: MatParams,
        /// the convolution of the conv_* entry points
        win: WindowParams,
    }
}

fn gemm_uniforms() -> String {
    MatParams::wgsl() + &WindowParams::wgsl() + &GemmParams::wgsl()
}

/// A, B, C (written) and the bias (A again where there is none).
pub(crate) const GEMM_BINDINGS: &[Bind] = &[Bind::In(1), Bind::In(2), Bind::Out(3), Bind::In(4)];

/// A, B, C, the epilogue's per-row bias (any read-only buffer where unused), and A and B
/// again as vec4s (the direct variant's).
const BUFFERS: &[Buffer] = &[
    Buffer::read("A"),
    Buffer::read("B"),
    Buffer::write("C"),
    Buffer::read("bias"),
    Buffer::read("A4").of("vec4<f32>"),
    Buffer::read("B4").of("vec4<f32>"),
];

/// The epilogue's bias.
#[derive(Clone, Copy)]
pub(crate) enum Bias<'a> {
    /// one per row, `stride` rows apart per batch entry (a convolution's, per output channel)
    Rows(&'a GpuBuffer, usize),
    /// one per column, for one batch entry (a linear layer's)
    Columns(&'a GpuBuffer),
}

/// What an entry point reads beyond the operands' strides, and the epilogue.
#[derive(Clone, Copy)]
pub(crate) struct Extra<'a> {
    /// the convolution of the conv_* entry points
    pub win: WindowParams,
    /// `GemmParams::a_image`, `b_image`
    pub images: [usize; 2],
    pub bias: Option<Bias<'a>>,
    pub relu: bool,
}

impl Extra<'_> {
    pub(crate) fn strided() -> Self {
        Extra { win: WindowParams::zeroed(), images: [0, 0], bias: None, relu: false }
    }
}

/// Rows, columns and batches beyond one dispatch go in several; so does K beyond the loop
/// budget, each later K range resuming from C (bit-identical to one dispatch). `k` is the
/// plain GEMM or one of the convolution entry points, all of which share GEMM_BINDINGS.
pub(crate) fn launch(
    ctx: &Ctx, (a, b): (&GpuBuffer, &GpuBuffer), s: &GemmSpec, k: &Kernel<GemmParams>,
    extra: Extra<'_>,
) -> Result<GpuBuffer> {
    let dims = [s.batch, s.m, s.n, s.k];
    let max_groups = ctx.limits().max_workgroups_per_dimension as usize;
    let ks = k_chunk(s, ctx.binding_len(), max_groups);
    let direct = direct_fit(s, k, ks, (a.len, b.len), &extra);
    let run = |t: GemmTiles| match t.direct && direct.is_none() {
        true => Err(Error::Gpu(format!("{}: the direct GEMM does not fit", k.info.op))),
        false => launch_tiled(ctx, (a, b), s, (k, direct), extra, (t, ks)).map(drop),
    };
    let mut tiles = ctx.gemm_tiling(&k.info, dims, run)?;
    if tiles.direct && direct.is_none() {
        tiles = tiles.staged();
    }
    launch_tiled(ctx, (a, b), s, (k, direct), extra, (tiles, ks))
}

/// [`launch`] with the tiling `tiles`, K in chunks of `ks` (`k_chunk`), and the direct
/// variant's operand where the product fits it (`direct_fit`).
fn launch_tiled(
    ctx: &Ctx, (a, b): (&GpuBuffer, &GpuBuffer), s: &GemmSpec,
    (k, direct): (&Kernel<GemmParams>, Option<Operand>), extra: Extra<'_>,
    (tiles, ks): (GemmTiles, usize),
) -> Result<GpuBuffer> {
    let op = k.info.op;
    let limits = ctx.limits();
    let max = limits.max_workgroups_per_dimension as usize;
    let chunks = s.k.div_ceil(ks).max(1);
    let c = ctx.alloc(chunks * s.c_len, op)?;
    let k = match direct {
        Some(b) if tiles.direct => direct_kernel(tiles, b)?,
        _ => k,
    };
    let (bm, bn) = tiles.tile();
    let kc = loops::gemm_k_chunk(ctx.cap(), &tiles);
    let k_starts: Vec<usize> = if s.k == 0 { vec![0] } else { (0..ks).step_by(kc).collect() };
    // a split product runs its epilogue after the chunks are summed (`epilogue_apart`)
    let epilogue = (chunks == 1) as u32
        * (matches!(extra.bias, Some(Bias::Rows(..))) as u32
            | (extra.relu as u32) << 1
            | (matches!(extra.bias, Some(Bias::Columns(_))) as u32) << 2);
    let (bias, bias_stride) = match extra.bias {
        Some(Bias::Rows(b, stride)) => (b, stride),
        Some(Bias::Columns(b)) => (b, 0),
        // binding 4 is A again (read-only both times)
        None => (a, 0),
    };
    let u = |v: usize| u32_of(v, op);
    let per_dispatch = max / chunks;
    for batch_start in (0..s.batch).step_by(per_dispatch) {
        let batches = (s.batch - batch_start).min(per_dispatch);
        for row_start in (0..s.m).step_by(max * bm) {
            let rows = (s.m - row_start).min(max * bm);
            for col_start in (0..s.n).step_by(max * bn) {
                let cols = (s.n - col_start).min(max * bn);
                for &k_start in &k_starts {
                    let p = GemmParams {
                        m: u(row_start + rows)?,
                        n: u(col_start + cols)?,
                        k: u(s.k)?,
                        batch_inner: u(s.batch_inner)?,
                        batch_start: u(batch_start)?,
                        row_start: u(row_start)?,
                        col_start: u(col_start)?,
                        k_start: u(k_start)?,
                        k_end: u((k_start + kc).min(ks))?,
                        a_image: u(extra.images[0])?,
                        b_image: u(extra.images[1])?,
                        epilogue,
                        bias_stride: u(bias_stride)?,
                        k_split: u(ks)?,
                        slab: u(s.c_len)?,
                        batches: u(batches)?,
                        a: MatParams::new(&s.a)?,
                        b: MatParams::new(&s.b)?,
                        c: MatParams::new(&s.c)?,
                        win: extra.win,
                    };
                    let z = (batches * chunks) as u32;
                    let groups = [cols.div_ceil(bn) as u32, rows.div_ceil(bm) as u32, z];
                    ctx.launch_tiled(k, tiles, &p, &[a, b, &c, bias], groups)?;
                }
            }
        }
    }
    if chunks == 1 {
        return Ok(c);
    }
    // the chunks' partial products, summed in chunk order, then the epilogue as passes of its
    // own: the bits of the product without an epilogue followed by the ops it stands for
    let c = super::reduce::reduce(ctx, &c, (1, chunks, s.c_len), ReduceOp::Sum)?;
    epilogue_apart(ctx, c, s, extra)
}

/// The epilogue after a split product, on C contiguous as `(entries, rows, columns)`: the
/// row bias (a convolution's, one per output channel) or column bias (a linear layer's)
/// added, then the ReLU.
fn epilogue_apart(ctx: &Ctx, c: GpuBuffer, s: &GemmSpec, extra: Extra<'_>) -> Result<GpuBuffer> {
    let rows = s.m * s.batch_inner; // channels of a grouped convolution's output
                                    // a bias is a vector along the middle axis of (outer, len, inner)
    let along = match extra.bias {
        Some(Bias::Rows(b, _)) => Some((b, (s.c_len / (rows * s.n), rows, s.n))),
        Some(Bias::Columns(b)) => Some((b, (s.c_len / s.n, s.n, 1))),
        None => None,
    };
    let mut y = c;
    if let Some((b, dims)) = along {
        y = elementwise::binary(ctx, &y, b, BinaryOp::Add, &per_channel(dims))?;
    }
    if extra.relu {
        y = elementwise::unary(ctx, &y, s.c_len, UnaryOp::Relu)?;
    }
    Ok(y)
}

/// Products with fewer outputs than this may be split along K.
const SPLIT_OUTPUTS: usize = 1 << 16;
/// The least K per chunk of a split product, and the most partial products kept.
const SPLIT_MIN_K: usize = 1024;
const SPLIT_PARTIALS: usize = 1 << 20;
const SPLIT_MAX_CHUNKS: usize = 32;

/// K per chunk: a product with few outputs and a long K (a weight gradient, summing over every
/// image and position) runs its K chunks side by side, else it would fill only a few
/// workgroups. The chunks depend on the shape alone, never on the tiling, so every tiling
/// adds each output's terms in the same order, with or without an epilogue.
fn k_chunk(s: &GemmSpec, binding: usize, max_groups: usize) -> usize {
    let whole = s.k.max(1);
    let outputs = s.batch * s.m * s.n;
    if outputs >= SPLIT_OUTPUTS {
        return whole;
    }
    let chunks = (s.k / SPLIT_MIN_K)
        .min(SPLIT_PARTIALS / outputs.max(1))
        .min(SPLIT_MAX_CHUNKS)
        .min(binding / s.c_len.max(1))
        .min(max_groups / s.batch.max(1));
    if chunks < 2 {
        return whole;
    }
    // a multiple of 4, so that the direct variant can read each chunk 4 deep
    s.k.div_ceil(chunks).next_multiple_of(4)
}

/// The strided batched GEMM within one binding.
fn gemm_kernel(ctx: &Ctx, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
    launch(ctx, (a, b), s, &GEMM, Extra::strided())
}

/// A linear layer's product `(m, k) x (k, n)` with its epilogue in the GEMM's stores:
/// `bias[column]` added, then a ReLU where `relu` is set. `None` where the product is batched
/// or its operands do not fit one binding each (the caller runs the passes apart).
pub(crate) fn gemm_bias_relu(
    ctx: &Ctx, (a, b): (&GpuBuffer, &GpuBuffer), s: &GemmSpec, bias: Option<&GpuBuffer>, relu: bool,
) -> Result<Option<GpuBuffer>> {
    let single = s.batch == 1 && s.c == MatLayout::row_major(s.m, s.n);
    let ins: Vec<&GpuBuffer> = [a, b].into_iter().chain(bias).collect();
    if !single || !fits(ctx, &ins, &[s.c_len]) {
        return Ok(None);
    }
    let extra = Extra { bias: bias.map(Bias::Columns), relu, ..Extra::strided() };
    launch(ctx, (a, b), s, &GEMM, extra).map(Some)
}

/// The strided batched GEMM, in blocks past one binding: batches, rows, columns and K ranges
/// whose operand ranges fit a binding each; a block's K ranges are summed in order, then its
/// rows copied into C.
pub(crate) fn gemm(ctx: &Ctx, a: &GpuBuffer, b: &GpuBuffer, s: &GemmSpec) -> Result<GpuBuffer> {
    if fits(ctx, &[a, b], &[s.c_len]) {
        return gemm_kernel(ctx, a, b, s);
    }
    let max = ctx.binding_len();
    if (s.c.col_stride != 1 && s.n > 1) || s.k == 0 || s.m == 0 || s.n == 0 {
        return Err(too_large("matmul", s.c_len, max));
    }
    let (bb, mi, nj, kk) = gemm_blocks(s, max);
    let c = ctx.alloc_any(s.c_len, "matmul")?;
    for b0 in (0..s.batch).step_by(bb) {
        let nb = bb.min(s.batch - b0);
        for i0 in (0..s.m).step_by(mi) {
            let m = mi.min(s.m - i0);
            for j0 in (0..s.n).step_by(nj) {
                let n = nj.min(s.n - j0);
                let block = gemm_block(ctx, (a, b), s, (b0, nb), (i0, m), (j0, n), kk)?;
                for bi in 0..nb {
                    let to = s.c.base(b0 + bi, s.batch_inner) + i0 * s.c.row_stride + j0;
                    let rows = (&c, to, s.c.row_stride);
                    super::split::copy_rows(ctx, (&block, bi * m * n, n), rows, m, n)?;
                }
            }
        }
    }
    Ok(c)
}

/// One block of C, `(nb, m, n)` row-major: batches `b0..`, rows `i0..`, columns `j0..`, its K
/// ranges of `kk` summed in order.
fn gemm_block(
    ctx: &Ctx, (a, b): (&GpuBuffer, &GpuBuffer), s: &GemmSpec, (b0, nb): (usize, usize),
    (i0, m): (usize, usize), (j0, n): (usize, usize), kk: usize,
) -> Result<GpuBuffer> {
    // where a layout's sub-block starts, and how many elements it spans
    let range = |l: &MatLayout, r0: usize, c0: usize, r: usize, cc: usize| {
        let at = l.base(b0, s.batch_inner) + r0 * l.row_stride + c0 * l.col_stride;
        (at, (nb - 1) * l.batch_outer_stride + span(l, r, cc))
    };
    let local = |l: &MatLayout| MatLayout { offset: 0, batch_inner_stride: 0, ..*l };
    if s.k == 0 {
        return Err(Error::Gpu("matmul: a block without a K range".into()));
    }
    let mut sum = Partials::new(nb * m * n);
    for k0 in (0..s.k).step_by(kk) {
        let k = kk.min(s.k - k0);
        let (a_at, a_len) = range(&s.a, i0, k0, m, k);
        let (b_at, b_len) = range(&s.b, k0, j0, k, n);
        let got = [gather_range(ctx, a, a_at, a_len)?, gather_range(ctx, b, b_at, b_len)?];
        let p = resolve([a, b].into_iter(), &got);
        let piece = GemmSpec {
            batch: nb,
            batch_inner: 1,
            m,
            n,
            k,
            a: local(&s.a),
            b: local(&s.b),
            c: MatLayout::row_major(m, n),
            c_len: nb * m * n,
        };
        sum.add(ctx, gemm_kernel(ctx, p[0], p[1], &piece)?)?;
    }
    sum.finish(ctx)
}

/// Elements a layout's `(r, c)` sub-block spans, first to last.
fn span(l: &MatLayout, r: usize, c: usize) -> usize {
    1 + (r - 1) * l.row_stride + (c - 1) * l.col_stride
}

/// GEMM blocks within one binding `max`: `(batches, rows, columns, K)` per block. Halves the
/// dimension that adds the most to an operand's span until all three operands fit; with whole
/// matrices, takes as many batches as fit.
fn gemm_blocks(s: &GemmSpec, max: usize) -> (usize, usize, usize, usize) {
    let (mut mi, mut nj, mut kk) = (s.m, s.n, s.k);
    let halve = |d: &mut usize| *d = d.div_ceil(2);
    loop {
        if span(&s.a, mi, kk) > max {
            if (mi - 1) * s.a.row_stride >= (kk - 1) * s.a.col_stride {
                halve(&mut mi)
            } else {
                halve(&mut kk)
            }
        } else if span(&s.b, kk, nj) > max {
            if (kk - 1) * s.b.row_stride >= (nj - 1) * s.b.col_stride {
                halve(&mut kk)
            } else {
                halve(&mut nj)
            }
        } else if mi * nj > max {
            if mi >= nj {
                halve(&mut mi)
            } else {
                halve(&mut nj)
            }
        } else {
            break;
        }
    }
    let mut bb = 1;
    if (mi, nj, kk) == (s.m, s.n, s.k) && s.batch_inner == 1 {
        let fit = |l: &MatLayout, sp: usize| {
            (max - sp).checked_div(l.batch_outer_stride).unwrap_or(s.batch) + 1
        };
        bb = fit(&s.a, span(&s.a, mi, kk))
            .min(fit(&s.b, span(&s.b, kk, nj)))
            .min(max / (mi * nj))
            .clamp(1, s.batch);
    }
    (bb, mi, nj, kk)
}
