//! The convolution family: conv2d forward and both gradients as implicit GEMMs, the GEMM
//! kernel's convolution modes (shaders/gemm.wgsl, pipeline constant MODE), which gather their operands from the
//! input and the output gradient as the tiles load, so no column matrix exists on the GPU. Past
//! one binding they run per run of images, or for an image past a binding in bands of output
//! rows (`split::bands`).

use super::elementwise;
use super::gemm::{self, Bias, Extra, GemmParams, GEMM_BINDINGS, GEMM_WGSL};
use super::runtime::kernel::{kernels, Kernel};
use super::runtime::launch::u32_of;
use super::runtime::GpuBuffer;
use super::split::bands::{by_bands, by_bands_input, by_bands_weight, image_fits};
use super::split::{by_items, by_items_summed, each_fits, fits, Ctx, Rows};
use super::window::WindowParams;
use crate::backend::{ConvSpec, GemmSpec, MatLayout, StridedSpec};
use crate::shape::WindowGeom;
use crate::Result;

kernels! { GEMM_WGSL: GemmParams;
    CONV_FWD = ("gemm", "conv2d", GEMM_BINDINGS, "MODE" = 1);
    CONV_WGRAD = ("gemm", "conv2d_backward_weight", GEMM_BINDINGS, "MODE" = 2);
    CONV_DGRAD = ("gemm", "conv2d_backward_input", GEMM_BINDINGS, "MODE" = 3);
    CONV_DGRAD_STRIDED = ("gemm", "conv2d_backward_input", GEMM_BINDINGS, "MODE" = 4);
    /// The stride-1 input gradient as a forward convolution over flipped weights (mode 1).
    CONV_DGRAD_AS_FWD = ("gemm", "conv2d_backward_input", GEMM_BINDINGS, "MODE" = 1);
}

/// A convolution's geometry over a batch of `n` (a run of a split batch).
pub(crate) fn batch(g: &WindowGeom, n: usize) -> WindowGeom {
    WindowGeom { n, ..*g }
}

/// `x (n, c, h, w)`, `w`, `bias` -> `(n, d, oh, ow)`, then a ReLU where `relu` is set.
pub(crate) fn forward(
    ctx: &Ctx, x: &GpuBuffer, w: &GpuBuffer, bias: Option<&GpuBuffer>, s: &ConvSpec, relu: bool,
) -> Result<GpuBuffer> {
    let inputs: Vec<&GpuBuffer> = [x, w].into_iter().chain(bias).collect();
    if fits(ctx, &inputs, &[s.out_len()]) {
        return forward_kernel(ctx, x, w, bias, relu, s);
    }
    if !image_fits(ctx, &s.g, s.d) {
        each_fits(ctx, "conv2d", &[w.len, bias.map_or(0, |b| b.len)])?;
        return by_bands(ctx, "conv2d", x, &s.g, s.d, |xb, bg| {
            forward_kernel(ctx, xb, w, bias, relu, &s.with_g(bg))
        });
    }
    let mut ins = vec![Rows::per(x, s.g.c * s.g.h * s.g.w), Rows::whole(w)];
    ins.extend(bias.map(Rows::whole));
    by_items(ctx, "conv2d", s.g.n, &ins, s.d * s.ohw(), |p, n| {
        let bias = p.get(2).copied();
        forward_kernel(ctx, p[0], p[1], bias, relu, &s.with_g(&batch(&s.g, n)))
    })
}

/// The input gradient: `grad (n, d, oh, ow)`, `w` -> `(n, c, h, w)`.
pub(crate) fn backward_input(
    ctx: &Ctx, grad: &GpuBuffer, w: &GpuBuffer, s: &ConvSpec,
) -> Result<GpuBuffer> {
    const OP: &str = "conv2d_backward_input";
    let chw = s.g.c * s.g.h * s.g.w;
    if fits(ctx, &[grad, w], &[s.g.n * chw]) {
        return input_kernel(ctx, grad, w, s);
    }
    if !image_fits(ctx, &s.g, s.d) {
        each_fits(ctx, OP, &[w.len])?;
        return by_bands_input(ctx, OP, grad, &s.g, s.d, |gb, bg| {
            input_kernel(ctx, gb, w, &s.with_g(bg))
        });
    }
    let ins = [Rows::per(grad, s.d * s.ohw()), Rows::whole(w)];
    by_items(ctx, OP, s.g.n, &ins, chw, |p, n| {
        input_kernel(ctx, p[0], p[1], &s.with_g(&batch(&s.g, n)))
    })
}

/// The weight gradient: `x`, `grad (n, d, oh, ow)` -> `(d, c/groups, kh, kw)`.
pub(crate) fn backward_weight(
    ctx: &Ctx, x: &GpuBuffer, grad: &GpuBuffer, s: &ConvSpec,
) -> Result<GpuBuffer> {
    const OP: &str = "conv2d_backward_weight";
    let len = s.d * s.cgkk();
    if fits(ctx, &[x, grad], &[len]) {
        return weight_kernel(ctx, x, grad, s);
    }
    if !image_fits(ctx, &s.g, s.d) {
        return by_bands_weight(ctx, OP, (x, grad), &s.g, s.d, len, |xb, gb, bg| {
            weight_kernel(ctx, xb, gb, &s.with_g(bg))
        });
    }
    let ins = [Rows::per(x, s.g.c * s.g.h * s.g.w), Rows::per(grad, s.d * s.ohw())];
    by_items_summed(ctx, OP, s.g.n, &ins, len, |p, n| {
        weight_kernel(ctx, p[0], p[1], &s.with_g(&batch(&s.g, n)))
    })
}

/// The window of convolution `s` for the implicit entry points.
fn conv_window(s: &ConvSpec) -> Result<WindowParams> {
    let g = &s.g;
    // every input index must fit the shader's u32 arithmetic (outputs: `total`)
    u32_of(g.n * g.c * g.h * g.w, "conv2d")?;
    WindowParams::new(g, s.out_len(), "conv2d")
}

/// conv2d's forward as an implicit GEMM: the im2col gather runs inside the tile loads, so
/// GPU memory holds only the input, the weights, the output and the tiles. The bias and
/// `relu` run in the epilogue.
fn forward_kernel(
    ctx: &Ctx, x: &GpuBuffer, w: &GpuBuffer, bias: Option<&GpuBuffer>, relu: bool, s: &ConvSpec,
) -> Result<GpuBuffer> {
    forward_as(ctx, (x, w), bias, relu, s, &CONV_FWD)
}

/// [`forward_kernel`] run by kernel `k` (mode 1, named for the op it serves).
fn forward_as(
    ctx: &Ctx, (x, w): (&GpuBuffer, &GpuBuffer), bias: Option<&GpuBuffer>, relu: bool,
    s: &ConvSpec, k: &Kernel<GemmParams>,
) -> Result<GpuBuffer> {
    let g = &s.g;
    let mut spec = s.forward_gemm();
    // batch entry (image, group) reads x from its image's group of channels
    spec.b = MatLayout::strided(g.c * g.h * g.w, s.cg() * g.h * g.w, s.ohw(), 1);
    let extra = Extra {
        win: conv_window(s)?,
        bias: bias.map(|b| Bias::Rows(b, s.dg())),
        relu,
        ..Extra::strided()
    };
    gemm::launch(ctx, (w, x), &spec, k, extra)
}

/// `w (d, c/groups, kh, kw)` -> `(c, d/groups, kh, kw)`, each group's block transposed and
/// every kernel flipped: the weights of [`ConvSpec::input_grad_as_forward`]'s convolution.
fn flipped_transposed(s: &ConvSpec) -> StridedSpec {
    let g = &s.g;
    let kk = g.kh * g.kw;
    let signed = |v: usize| v as isize;
    StridedSpec {
        // (groups, c/groups, d/groups, kh, kw)
        out: vec![s.groups, s.cg(), s.dg(), g.kh, g.kw],
        strides: vec![signed(s.dg() * s.cgkk()), signed(kk), signed(s.cgkk()), -signed(g.kw), -1],
        offset: kk - 1,
    }
}

/// conv2d's weight gradient as an implicit GEMM per group: the output gradient read with
/// images side by side and the input's columns gathered in the tile loads, no copies.
fn weight_kernel(ctx: &Ctx, x: &GpuBuffer, gout: &GpuBuffer, s: &ConvSpec) -> Result<GpuBuffer> {
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
    gemm::launch(ctx, (gout, x), &spec, &CONV_WGRAD, extra)
}

/// conv2d's input gradient as an implicit GEMM per (image, group): `dx_{n, g} (cg, h*w) =
/// W_g^T (cg, dg*kh*kw) x G (dg*kh*kw, h*w)`. With stride 1 and padding within the dilated
/// kernel's extent, G is the columns of the forward convolution
/// `ConvSpec::input_grad_as_forward` over the output gradient (the weights read flipped);
/// otherwise G gathers the output gradient at the window each tap maps an input position
/// to, testing the stride's divisibility per element. Neither needs columns or col2im.
fn input_kernel(ctx: &Ctx, gout: &GpuBuffer, w: &GpuBuffer, s: &ConvSpec) -> Result<GpuBuffer> {
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
        // where the direct variant could run it (K a multiple of 4), the forward convolution
        // itself over a copy of the weights flipped and transposed (a few weights): the same
        // products in the same order as mode 3's flipped reads
        Some(t) if t.cgkk().is_multiple_of(4) => {
            let wt = elementwise::copy(ctx, w, &flipped_transposed(s))?;
            return forward_as(ctx, (gout, &wt), None, false, &t, &CONV_DGRAD_AS_FWD);
        }
        Some(t) => (&CONV_DGRAD, conv_window(&t)?),
        None => (&CONV_DGRAD_STRIDED, conv_window(s)?),
    };
    let extra = Extra { win, images, ..Extra::strided() };
    gemm::launch(ctx, (w, gout), &spec, entry, extra)
}
