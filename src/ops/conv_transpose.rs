//! `F.conv_transpose2d`: the adjoint of a convolution, run by the backends' conv2d primitives
//! (its forward is a convolution's input gradient; its gradients are a convolution forward and
//! a weight gradient), so both devices use their implicit GEMMs.

use crate::backend::{Backend, ConvSpec};
use crate::ops::conv::{
    add_bias, attach_conv, check_conv_args, conv_forward_raw, Pair, WeightLayout,
};
use crate::shape::{Shape, WindowGeom};
use crate::tensor::{on_backend2, Tensor};
use crate::Result;

/// Options of [`conv_transpose2d`], as PyTorch's (padding on both sides of each axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    /// Stride of the convolution this is the adjoint of, `(height, width)`.
    pub stride: (usize, usize),
    /// Rows and columns removed from each side of the output, `(height, width)`.
    pub padding: (usize, usize),
    /// Extra rows and columns at the bottom and right: below the stride or the dilation.
    pub output_padding: (usize, usize),
    /// Spacing between kernel elements, `(height, width)`.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels must both be divisible by it.
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        ConvTranspose2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl ConvTranspose2dOptions {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        stride(s: impl Into<Pair>) = s.into().0;
        padding(p: impl Into<Pair>) = p.into().0;
        output_padding(p: impl Into<Pair>) = p.into().0;
        dilation(d: impl Into<Pair>) = d.into().0;
        groups(g: usize) = g;
    }
}

/// `input (n, c_in, h, w)`, `weight (c_in, c_out/groups, kh, kw)`, `bias (c_out)` ->
/// `(n, c_out, (h-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1, ...)`.
pub fn conv_transpose2d(
    input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, opts: &ConvTranspose2dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let o = opts;
    let args = (input, weight, bias);
    let ((n, c_in, h, w), (c_out, kh, kw)) =
        check_conv_args(OP, args, o.groups, WeightLayout::Transposed)?;
    let cg_out = c_out / o.groups;
    // the convolution from the output back to the input: its windows are the input's positions
    let g = WindowGeom::conv_transpose(
        OP,
        (n, h, w),
        c_out,
        (kh, kw),
        o.stride,
        o.padding,
        o.dilation,
        o.output_padding,
    )?;
    let (oh, ow) = (g.h, g.w);
    let spec = ConvSpec { g, groups: o.groups, d: c_in };
    crate::shape::numel(OP, &[n, c_out, oh, ow])?;
    if let Some(y) = super::conv::empty_conv_result(OP, input, weight, bias, [n, c_out, oh, ow])? {
        return Ok(y);
    }
    let st = on_backend2!(OP, input.storage(), weight.storage(), xs, ws, be => be.conv2d_backward_input(xs, ws, &spec));
    let y = add_bias(Tensor::from_storage(st, Shape::from([n, c_out, oh, ow])), bias)?;
    attach_conv(
        y,
        input,
        weight,
        bias,
        None,
        // the input's gradient: the convolution of the output gradient
        move |gout, w| conv_forward_raw(gout, w, None, &spec, false),
        // the weight's: a convolution's weight gradient with the roles of input and output
        // gradient exchanged
        move |gout, x| {
            let st = on_backend2!(OP, gout.storage(), x.storage(), gs, xs, be => be.conv2d_backward_weight(gs, xs, &spec));
            Ok(Tensor::from_storage(st, Shape::from([c_in, cg_out, kh, kw])))
        },
    )
}
