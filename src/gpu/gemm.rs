//! The strided batched GEMM, split over dispatch limits and the loop budget.

use super::kernels::{Shader, GEMM_BK, GEMM_TILE};
use super::launch::{fit, u32_of};
use super::uniforms::{uniform, WgslType};
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
        _pad: [u32; 3],
        a: MatParams,
        b: MatParams,
        c: MatParams,
        win: WinParams,
    }
}

uniform! {
    /// Implicit convolution operands, gathered as the tiles are loaded (no column matrix in
    /// memory), for `x (n, c, h, w)` under this window and `d` filters. `mode` 0: ordinary
    /// strided operands; 1 (forward): B is the columns of `x`, batch entry (image, group);
    /// 2 (weight gradient): A is the output gradient with images side by side and B the
    /// transposed columns of `x`, batch entry = group.
    WinParams as "Win" {
        mode: u32,
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
        ow: u32,
        cg: u32,
        d: u32,
        ohw: u32,
    }
}

impl WgslType for WinParams {
    const WGSL: &'static str = "Win";
}

impl WinParams {
    /// B as an ordinary strided operand.
    fn off() -> Self {
        bytemuck::Zeroable::zeroed()
    }

    /// The implicit operands of convolution `s` in `mode` (1 forward, 2 weight gradient).
    pub(super) fn of(s: &ConvSpec, mode: u32) -> Result<Self> {
        let g = &s.g;
        let f = |v: usize| fit(v, "conv2d");
        // every input and output index must fit the shader's u32 arithmetic
        u32_of(g.n * g.c * g.h * g.w, "conv2d")?;
        u32_of(s.out_len(), "conv2d")?;
        Ok(WinParams {
            mode,
            c: f(g.c)?,
            h: f(g.h)?,
            w: f(g.w)?,
            kh: f(g.kh)?,
            kw: f(g.kw)?,
            sh: f(g.sh)?,
            sw: f(g.sw)?,
            pad_top: f(g.pad_top)?,
            pad_left: f(g.pad_left)?,
            dh: f(g.dh)?,
            dw: f(g.dw)?,
            ow: f(g.ow)?,
            cg: f(s.cg())?,
            d: f(s.d)?,
            ohw: f(s.ohw())?,
        })
    }
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
        self.gemm_split(w, x, &spec, WinParams::of(s, 1)?)
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
        self.gemm_split(gout, x, &spec, WinParams::of(s, 2)?)
    }

    /// The strided batched GEMM: [`GpuBackend::gemm_split`] with B an ordinary operand.
    pub(super) fn gemm_strided(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
    ) -> Result<GpuBuffer> {
        self.gemm_split(a, b, s, WinParams::off())
    }

    /// Rows, columns and batches beyond one dispatch are split into several; so is K beyond
    /// the loop budget, each later K range resuming from C (bit-identical to one dispatch).
    fn gemm_split(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
        win: WinParams,
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
                            _pad: [0; 3],
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
                            ["gemm", "conv_fwd", "conv_wgrad"][win.mode as usize],
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
