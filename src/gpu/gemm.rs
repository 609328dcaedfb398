//! The strided batched GEMM, split over dispatch limits and the loop budget.

use bytemuck::Zeroable;

use super::kernels::{Shader, GEMM_BK, GEMM_TILE};
use super::launch::u32_of;
use super::uniforms::{uniform, WgslType};
use super::window::WindowParams;
use super::{loops, GpuBackend, GpuBuffer};
use crate::backend::{ConvSpec, GemmSpec, MatLayout};
use crate::Result;

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
        /// this dispatch's K range; later ranges resume from C
        k_start: u32,
        k_end: u32,
        /// conv_wgrad: A's and B's stride between images along k
        a_image: u32,
        b_image: u32,
        _pad: u32,
        a: MatParams,
        b: MatParams,
        c: MatParams,
        /// the convolution of the conv_* entry points
        win: WindowParams,
    }
}

impl WgslType for WindowParams {
    const WGSL: &'static str = "WindowParams";
}

/// The kernel's entry points: strided operands, or a convolution's operands gathered as the
/// tiles are loaded (see shaders/gemm.wgsl).
#[derive(Clone, Copy)]
enum Entry {
    Strided,
    ConvForward,
    ConvWeightGrad,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Strided => "gemm",
            Entry::ConvForward => "conv_fwd",
            Entry::ConvWeightGrad => "conv_wgrad",
        }
    }
}

/// The window and image strides of convolution `s` for the implicit entry points.
fn conv_params(s: &ConvSpec) -> Result<(WindowParams, [usize; 2])> {
    let g = &s.g;
    // every input index must fit the shader's u32 arithmetic (outputs: `total`)
    u32_of(g.n * g.c * g.h * g.w, "conv2d")?;
    let win = WindowParams::new(g, s.out_len(), "conv2d")?;
    // along k of the weight gradient: one image of the output gradient, one of the input
    Ok((win, [s.d * s.ohw(), g.c * g.h * g.w]))
}

impl GpuBackend {
    /// conv2d's forward as an implicit GEMM: the im2col gather runs inside the tile loads, so
    /// GPU memory holds only the input, the weights, the output and the tiles.
    pub(super) fn conv_implicit(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        let g = &s.g;
        let mut spec = s.forward_gemm();
        // batch entry (image, group) reads x from its image's group of channels
        spec.b = MatLayout::strided(g.c * g.h * g.w, s.cg() * g.h * g.w, s.ohw(), 1);
        let (win, _) = conv_params(s)?;
        self.gemm_split(w, x, &spec, Entry::ConvForward, (win, [0, 0]))
    }

    /// conv2d's weight gradient as an implicit GEMM per group: the output gradient read with
    /// images side by side and the input's columns gathered in the tile loads, no copies.
    pub(super) fn conv_weight_implicit(
        &self,
        x: &GpuBuffer,
        gout: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        let (g, ohw) = (&s.g, s.ohw());
        let mut spec = s.weight_grad_gemm();
        // group b reads its filters' gradients and its channels of every image
        spec.a = MatLayout::strided(s.dg() * ohw, 0, ohw, 1);
        spec.b = MatLayout::strided(s.cg() * g.h * g.w, 0, 1, g.n * ohw);
        let conv = conv_params(s)?;
        self.gemm_split(gout, x, &spec, Entry::ConvWeightGrad, conv)
    }

    /// The strided batched GEMM: [`GpuBackend::gemm_split`] with B an ordinary operand.
    pub(super) fn gemm_strided(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
    ) -> Result<GpuBuffer> {
        self.gemm_split(a, b, s, Entry::Strided, (WindowParams::zeroed(), [0, 0]))
    }

    /// Rows, columns and batches beyond one dispatch are split into several; so is K beyond
    /// the loop budget, each later K range resuming from C (bit-identical to one dispatch).
    fn gemm_split(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
        entry: Entry,
        (win, [a_image, b_image]): (WindowParams, [usize; 2]),
    ) -> Result<GpuBuffer> {
        let c = self.ctx.alloc(s.c_len, "matmul")?;
        let max = self.ctx.limits.max_workgroups_per_dimension as usize;
        let span = max * GEMM_TILE;
        let kc = loops::gemm_k_chunk(self.cap(), GEMM_BK);
        let k_starts: Vec<usize> = if s.k == 0 {
            vec![0]
        } else {
            (0..s.k).step_by(kc).collect()
        };
        for batch_start in (0..s.batch).step_by(max) {
            let batches = (s.batch - batch_start).min(max);
            for row_start in (0..s.m).step_by(span) {
                let rows = (s.m - row_start).min(span);
                for col_start in (0..s.n).step_by(span) {
                    let cols = (s.n - col_start).min(span);
                    for &k_start in &k_starts {
                        let p = GemmParams {
                            m: u32_of(row_start + rows, "matmul")?,
                            n: u32_of(col_start + cols, "matmul")?,
                            k: u32_of(s.k, "matmul")?,
                            batch_inner: u32_of(s.batch_inner, "matmul")?,
                            batch_start: u32_of(batch_start, "matmul")?,
                            row_start: u32_of(row_start, "matmul")?,
                            col_start: u32_of(col_start, "matmul")?,
                            k_start: u32_of(k_start, "matmul")?,
                            k_end: u32_of((k_start + kc).min(s.k), "matmul")?,
                            a_image: u32_of(a_image, "matmul")?,
                            b_image: u32_of(b_image, "matmul")?,
                            _pad: 0,
                            a: MatParams::new(&s.a)?,
                            b: MatParams::new(&s.b)?,
                            c: MatParams::new(&s.c)?,
                            win,
                        };
                        let groups = [
                            cols.div_ceil(GEMM_TILE) as u32,
                            rows.div_ceil(GEMM_TILE) as u32,
                            batches as u32,
                        ];
                        self.ctx.dispatch(
                            Shader::Gemm,
                            entry.name(),
                            bytemuck::bytes_of(&p),
                            &[(1, a), (2, b), (3, &c)],
                            &[3],
                            groups,
                        )?;
                    }
                }
            }
        }
        Ok(c)
    }
}
