//! The strided batched GEMM, split over dispatch limits and the loop budget.

use bytemuck::Zeroable;

use super::kernels::Shader;
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
        /// conv_wgrad: A's and B's stride between images along k; conv_dgrad: A's between filters
        a_image: u32,
        b_image: u32,
        /// bit 0: add `bias[(batch entry % batch_inner) * bias_stride + row]`; bit 1: ReLU
        /// (both on the last K range only)
        epilogue: u32,
        bias_stride: u32,
        _pad: [u32; 3],
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
    ConvInputGrad,
    ConvInputGradStrided,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Strided => "gemm",
            Entry::ConvForward => "conv_fwd",
            Entry::ConvWeightGrad => "conv_wgrad",
            Entry::ConvInputGrad => "conv_dgrad",
            Entry::ConvInputGradStrided => "conv_dgrad_strided",
        }
    }
}

/// What an entry point reads beyond the operands' strides, and the epilogue.
#[derive(Clone, Copy)]
struct Extra<'a> {
    /// the convolution of the conv_* entry points
    win: WindowParams,
    /// `GemmParams::a_image`, `b_image`
    images: [usize; 2],
    /// a per-row bias, `bias_stride` rows apart per batch entry
    bias: Option<(&'a GpuBuffer, usize)>,
    relu: bool,
}

impl Extra<'_> {
    fn strided() -> Self {
        Extra {
            win: WindowParams::zeroed(),
            images: [0, 0],
            bias: None,
            relu: false,
        }
    }
}

/// The window of convolution `s` for the implicit entry points.
fn conv_window(s: &ConvSpec) -> Result<WindowParams> {
    let g = &s.g;
    // every input index must fit the shader's u32 arithmetic (outputs: `total`)
    u32_of(g.n * g.c * g.h * g.w, "conv2d")?;
    WindowParams::new(g, s.out_len(), "conv2d")
}

impl GpuBackend {
    /// conv2d's forward as an implicit GEMM: the im2col gather runs inside the tile loads, so
    /// GPU memory holds only the input, the weights, the output and the tiles. The bias and
    /// `relu` run in the epilogue.
    pub(super) fn conv_implicit(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        bias: Option<&GpuBuffer>,
        relu: bool,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        let g = &s.g;
        let mut spec = s.forward_gemm();
        // batch entry (image, group) reads x from its image's group of channels
        spec.b = MatLayout::strided(g.c * g.h * g.w, s.cg() * g.h * g.w, s.ohw(), 1);
        let extra = Extra {
            win: conv_window(s)?,
            images: [0, 0],
            bias: bias.map(|b| (b, s.dg())),
            relu,
        };
        self.gemm_split(w, x, &spec, Entry::ConvForward, extra)
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
        let extra = Extra {
            win: conv_window(s)?,
            // along k: one image of the output gradient, one of the input
            images: [s.d * ohw, g.c * g.h * g.w],
            ..Extra::strided()
        };
        self.gemm_split(gout, x, &spec, Entry::ConvWeightGrad, extra)
    }

    /// conv2d's input gradient as an implicit GEMM per (image, group): `dx_{n, g} (cg, h*w) =
    /// W_g^T (cg, dg*kh*kw) x G (dg*kh*kw, h*w)`. With stride 1 and padding within the dilated
    /// kernel's extent, G is the columns of the forward convolution
    /// `ConvSpec::input_grad_as_forward` over the output gradient (the weights read flipped);
    /// otherwise G gathers the output gradient at the window each tap maps an input position
    /// to, testing the stride's divisibility per element. Neither needs columns or col2im.
    pub(super) fn conv_input_implicit(
        &self,
        gout: &GpuBuffer,
        w: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        let (g, ohw, hw) = (&s.g, s.ohw(), s.g.h * s.g.w);
        let spec = GemmSpec {
            batch: g.n * s.groups,
            batch_inner: s.groups,
            m: s.cg(),
            n: hw,
            k: s.dg() * g.kh * g.kw,
            // the group's block of w; the image's output-gradient channels of the group; the
            // image's input channels of the group
            a: MatLayout::strided(0, s.dg() * s.cgkk(), g.kh * g.kw, 1),
            b: MatLayout::strided(s.d * ohw, s.dg() * ohw, ohw, 1),
            c: MatLayout::strided(g.c * hw, s.cg() * hw, hw, 1),
            c_len: g.n * g.c * hw,
        };
        // along k: from one filter of the group to the next
        let images = [s.cgkk(), 0];
        let (entry, win) = match s.input_grad_as_forward() {
            Some(t) => (Entry::ConvInputGrad, conv_window(&t)?),
            None => (Entry::ConvInputGradStrided, conv_window(s)?),
        };
        let extra = Extra {
            win,
            images,
            ..Extra::strided()
        };
        self.gemm_split(w, gout, &spec, entry, extra)
    }

    /// The strided batched GEMM: [`GpuBackend::gemm_split`] with B an ordinary operand.
    pub(super) fn gemm_strided(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
    ) -> Result<GpuBuffer> {
        self.gemm_split(a, b, s, Entry::Strided, Extra::strided())
    }

    /// Rows, columns and batches beyond one dispatch are split into several; so is K beyond
    /// the loop budget, each later K range resuming from C (bit-identical to one dispatch).
    fn gemm_split(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        s: &GemmSpec,
        entry: Entry,
        extra: Extra<'_>,
    ) -> Result<GpuBuffer> {
        let c = self.ctx.alloc(s.c_len, "matmul")?;
        let tiles = self.ctx.limits.gemm.pick(s.m, s.n);
        let (bm, bn) = tiles.tile();
        let max = self.ctx.limits.max_workgroups_per_dimension as usize;
        let kc = loops::gemm_k_chunk(self.cap(), &tiles);
        let k_starts: Vec<usize> = if s.k == 0 {
            vec![0]
        } else {
            (0..s.k).step_by(kc).collect()
        };
        let epilogue = extra.bias.is_some() as u32 | (extra.relu as u32) << 1;
        // without a bias, binding 4 is A again (read-only both times)
        let bias = extra.bias.map_or(a, |(b, _)| b);
        for batch_start in (0..s.batch).step_by(max) {
            let batches = (s.batch - batch_start).min(max);
            for row_start in (0..s.m).step_by(max * bm) {
                let rows = (s.m - row_start).min(max * bm);
                for col_start in (0..s.n).step_by(max * bn) {
                    let cols = (s.n - col_start).min(max * bn);
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
                            a_image: u32_of(extra.images[0], "matmul")?,
                            b_image: u32_of(extra.images[1], "matmul")?,
                            epilogue,
                            bias_stride: u32_of(extra.bias.map_or(0, |(_, st)| st), "matmul")?,
                            _pad: [0; 3],
                            a: MatParams::new(&s.a)?,
                            b: MatParams::new(&s.b)?,
                            c: MatParams::new(&s.c)?,
                            win: extra.win,
                        };
                        let groups = [
                            cols.div_ceil(bn) as u32,
                            rows.div_ceil(bm) as u32,
                            batches as u32,
                        ];
                        self.ctx.dispatch_ranges(
                            (Shader::Gemm, entry.name(), tiles),
                            bytemuck::bytes_of(&p),
                            &[
                                (1, a, 0, a.len),
                                (2, b, 0, b.len),
                                (3, &c, 0, c.len),
                                (4, bias, 0, bias.len),
                            ],
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
