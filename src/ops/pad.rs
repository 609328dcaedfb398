//! `F.pad` over the last one or two axes, with the constant, reflect, replicate and circular
//! modes, and the padded convolutions (`padding_mode`) built on it.

use crate::backend::{Backend, PadGeom, PadKind};
use crate::ops::empty::filled_with_zero_grads;
use crate::shape::Shape;
use crate::tensor::{on_backend, Tensor};
use crate::{ensure, Result};

/// How [`pad`] fills the border, as `F.pad`'s `mode` (and `value`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// Every padded element is the value (negative widths crop).
    Constant(f32),
    /// Mirrored without repeating the edge: widths below the axis length.
    Reflect,
    /// The edge repeated.
    Replicate,
    /// Wrapped around: widths at most the axis length.
    Circular,
}

/// How a convolution pads its input, as `nn.Conv2d`'s `padding_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PaddingMode {
    /// Zeros.
    #[default]
    Zeros,
    /// The input mirrored at its edges, without repeating them.
    Reflect,
    /// The edge values repeated.
    Replicate,
    /// The input wrapped around.
    Circular,
}

/// `F.pad(x, widths, mode)`: `widths` is `[left, right]` (last axis) or
/// `[left, right, top, bottom]` (last two axes), as PyTorch orders them. Widths may be negative
/// in constant mode only, where they crop. Reflect, replicate and circular pad a batch of
/// images: a 2-, 3- or 4-d input for two widths' axes, as PyTorch asks.
pub fn pad(x: &Tensor, widths: &[isize], mode: PadMode) -> Result<Tensor> {
    const OP: &str = "pad";
    ensure!(
        widths.len() == 2 || widths.len() == 4,
        OP,
        "widths must be [left, right] or [left, right, top, bottom], got {} values",
        widths.len()
    );
    let axes = widths.len() / 2;
    let rank = x.rank();
    ensure!(
        rank >= axes,
        OP,
        "{} widths pad the last {axes} axes, but the input has shape {}",
        widths.len(),
        x.shape()
    );
    let (kind, value) = match mode {
        PadMode::Constant(v) => (PadKind::Constant, v),
        PadMode::Reflect => (PadKind::Reflect, 0.0),
        PadMode::Replicate => (PadKind::Replicate, 0.0),
        PadMode::Circular => (PadKind::Circular, 0.0),
    };
    if kind != PadKind::Constant {
        ensure!(
            (axes..=axes + 2).contains(&rank),
            OP,
            "{mode:?} padding of {axes} axes needs a {}- to {}-d input, got shape {}",
            axes,
            axes + 2,
            x.shape()
        );
    }
    let dims = x.dims();
    // the padded axes as (h, w): a lone last axis is a height of 1
    let (h, w) = match axes {
        1 => (1, dims[rank - 1]),
        _ => (dims[rank - 2], dims[rank - 1]),
    };
    let (left, right) = (widths[0], widths[1]);
    let (top, bottom) = match axes {
        1 => (0, 0),
        _ => (widths[2], widths[3]),
    };
    for (axis, n, before, after) in [("width", w, left, right), ("height", h, top, bottom)] {
        check_widths(mode, axis, n, before, after)?;
    }
    let grown = |n: usize, a: isize, b: isize| n as isize + a + b;
    let (oh, ow) = (grown(h, top, bottom), grown(w, left, right));
    ensure!(
        oh > 0 && ow > 0,
        OP,
        "widths {widths:?} leave nothing of the input's shape {}",
        x.shape()
    );
    let planes = dims[..rank - axes].iter().product::<usize>();
    let mut out_dims = dims.to_vec();
    out_dims[rank - 1] = ow as usize;
    if axes == 2 {
        out_dims[rank - 2] = oh as usize;
    }
    crate::shape::numel(OP, &out_dims)?;
    if kind != PadKind::Constant {
        // as PyTorch: only a leading batch axis may be empty
        let batch = usize::from(rank == axes + 2);
        ensure!(
            !dims[batch..].contains(&0),
            OP,
            "{mode:?} padding needs every axis but the batch non-empty, got shape {}",
            x.shape()
        );
    }
    if x.elem_count() == 0 || out_dims.contains(&0) {
        // nothing to read: the constant everywhere (PyTorch pads empty axes only so)
        let fill = match mode {
            PadMode::Constant(v) => v,
            _ if out_dims.contains(&0) => 0.0,
            _ => crate::bail!(OP, "{mode:?} padding of the empty input {}", x.shape()),
        };
        return filled_with_zero_grads(x, &[], Shape::from(out_dims), fill);
    }
    let g = PadGeom { planes, h, w, oh: oh as usize, ow: ow as usize, top, left, kind, value };
    let st = on_backend!(x.storage(), s, be => be.pad2d(s, &g));
    let y = Tensor::from_storage(st, Shape::from(out_dims));
    let in_shape = x.shape().clone();
    Ok(y.attach(&[x], move |gr| {
        let st = on_backend!(gr.storage(), s, be => be.pad2d_backward(s, &g));
        Ok(vec![Some(Tensor::from_storage(st, in_shape.clone()))])
    }))
}

/// PyTorch's limits on the widths of one axis of `n` elements.
fn check_widths(mode: PadMode, axis: &str, n: usize, before: isize, after: isize) -> Result<()> {
    const OP: &str = "pad";
    let n_i = n as isize;
    match mode {
        PadMode::Constant(_) => Ok(()),
        _ if before < 0 || after < 0 => {
            crate::bail!(
                OP,
                "{mode:?} padding takes no negative widths, got {before} and {after} on the {axis}"
            )
        }
        PadMode::Reflect => {
            ensure!(
                before < n_i && after < n_i,
                OP,
                "reflect padding ({before}, {after}) must be below the input's {axis} of {n}"
            );
            Ok(())
        }
        PadMode::Replicate => {
            ensure!(n > 0, OP, "replicate padding of an empty {axis}");
            Ok(())
        }
        PadMode::Circular => {
            ensure!(
                before <= n_i && after <= n_i,
                OP,
                "circular padding ({before}, {after}) must be at most the input's {axis} of {n}"
            );
            Ok(())
        }
    }
}

/// The input of a convolution with a non-zero `padding_mode`: padded by `pads`
/// (`[top, bottom, left, right]`), for a convolution without padding.
pub(crate) fn pad_for_conv(x: &Tensor, pads: [usize; 4], mode: PaddingMode) -> Result<Tensor> {
    let mode = match mode {
        PaddingMode::Zeros => PadMode::Constant(0.0),
        PaddingMode::Reflect => PadMode::Reflect,
        PaddingMode::Replicate => PadMode::Replicate,
        PaddingMode::Circular => PadMode::Circular,
    };
    let [t, b, l, r] = pads.map(|p| p as isize);
    pad(x, &[l, r, t, b], mode).map_err(|e| match e {
        crate::Error::Invalid { msg, .. } => {
            crate::Error::Invalid { op: "conv2d", msg: format!("padding_mode {mode:?}: {msg}") }
        }
        e => e,
    })
}
