//! Receptive fields: for an element of a layer's output, the input region that can affect it.
//! The analytic form follows the tutorials' formula layer by layer over a [`Sequential`] of
//! window layers; the exact form asks autograd which input elements have a non-zero gradient.

use std::fmt;

use super::{Module, Sequential};
use crate::{bail, no_grad, Device, Result, Tensor};

/// How a layer maps its input's positions to its output's, per spatial axis `(h, w)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// A sliding window: output index `i` reads input indices `i * stride - pad + t * dilation`
    /// for `t < kernel` (convolutions, pools).
    Sliding {
        /// Window size.
        kernel: (usize, usize),
        /// Step between windows.
        stride: (usize, usize),
        /// Padding before the first input element (top, left).
        pad: (usize, usize),
        /// Spacing of the window's taps.
        dilation: (usize, usize),
    },
    /// Each output element from the input element at its own position (activations, batch
    /// norm, dropout).
    Pointwise,
    /// Every output element from every input element (flatten, linear, adaptive pools).
    Global,
    /// A layer the helper cannot follow (upsampling, containers, custom modules).
    Opaque,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Window::Sliding { kernel: k, stride: s, pad: p, dilation: d } => {
                write!(f, "window {}x{} stride {}x{} pad {}x{}", k.0, k.1, s.0, s.1, p.0, p.1)?;
                if d != (1, 1) {
                    write!(f, " dilation {}x{}", d.0, d.1)?;
                }
                Ok(())
            }
            Window::Pointwise => f.write_str("pointwise"),
            Window::Global => f.write_str("global"),
            Window::Opaque => f.write_str("opaque"),
        }
    }
}

/// The receptive field of one layer's output, per spatial axis `(h, w)`: output element `(i, j)`
/// sees input rows `start.0 + i * jump.0 ..` for `size.0` rows (and likewise columns), clipped
/// to the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRow {
    /// The layer's position in the `Sequential`.
    pub index: usize,
    /// What the layer does to positions.
    pub window: Window,
    /// The layer's output `(h, w)`; None where it has no spatial axes (flatten, linear).
    pub out: Option<(usize, usize)>,
    /// The field's size in input elements.
    pub size: (usize, usize),
    /// The distance in input elements between the fields of neighbouring outputs.
    pub jump: (usize, usize),
    /// Where output `(0, 0)`'s field starts in the input (negative: in the padding).
    pub start: (isize, isize),
    /// The field is the whole input (a global layer at or before this one).
    pub global: bool,
}

impl FieldRow {
    /// The input rows and columns output `(i, j)` sees, clipped to an input of `input (h, w)`:
    /// inclusive `(first, last)` per axis.
    pub fn region(
        &self, (i, j): (usize, usize), input: (usize, usize),
    ) -> ((usize, usize), (usize, usize)) {
        if self.global {
            return ((0, input.0 - 1), (0, input.1 - 1));
        }
        let axis = |start: isize, jump: usize, size: usize, at: usize, n: usize| {
            let lo = start + (at * jump) as isize;
            let hi = lo + size as isize - 1;
            (lo.clamp(0, n as isize - 1) as usize, hi.clamp(0, n as isize - 1) as usize)
        };
        (
            axis(self.start.0, self.jump.0, self.size.0, i, input.0),
            axis(self.start.1, self.jump.1, self.size.1, j, input.1),
        )
    }
}

/// Per layer of `net`, the receptive field of its output on an input of `input` = `(n, c, h,
/// w)`: the tutorials' recurrence `size += (dilation * (kernel - 1)) * jump`, `start -= pad *
/// jump`, `jump *= stride`, per axis. Output sizes come from running the layers on zeros. An
/// opaque layer is an `Err` naming it.
pub fn receptive_fields(
    net: &Sequential, input: [usize; 4], device: &Device,
) -> Result<Vec<FieldRow>> {
    let (mut size, mut jump, mut start, mut global) = ((1, 1), (1, 1), (0isize, 0isize), false);
    let mut x = Tensor::zeros(input.to_vec(), device)?;
    let mut rows = Vec::with_capacity(net.len());
    for (index, layer) in net.layers().iter().enumerate() {
        x = no_grad(|| layer.forward(&x))?;
        let window = layer.window();
        match window {
            Window::Sliding { kernel: k, stride: s, pad: p, dilation: d } => {
                size.0 += d.0 * (k.0 - 1) * jump.0;
                size.1 += d.1 * (k.1 - 1) * jump.1;
                start.0 -= (p.0 * jump.0) as isize;
                start.1 -= (p.1 * jump.1) as isize;
                jump = (jump.0 * s.0, jump.1 * s.1);
            }
            Window::Pointwise => {}
            Window::Global => global = true,
            Window::Opaque => bail!("receptive_fields", "layer {index} is not a window layer"),
        }
        let out = match x.dims() {
            [_, _, h, w] => Some((*h, *w)),
            _ => None,
        };
        rows.push(FieldRow { index, window, out, size, jump, start, global });
    }
    Ok(rows)
}

/// The input region that can affect one output element, found by autograd: the input positions
/// `(h, w)` whose gradient is non-zero for output element `at` (a full index into the output),
/// over `trials` random positive inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactField {
    /// Inclusive `(first, last)` input rows, or None when no input element affects it.
    pub rows: Option<(usize, usize)>,
    /// Inclusive `(first, last)` input columns.
    pub cols: Option<(usize, usize)>,
    /// The number of input positions `(h, w)` that affect it.
    pub positions: usize,
}

/// [`ExactField`] of output element `at` of `net` on inputs of `input = (n, c, h, w)`. A
/// position counts when any trial gives it a non-zero gradient: ReLU units that are off and max
/// pooling's losers give none, so for networks with them the region can be smaller than the
/// analytic field.
pub fn receptive_field_exact(
    net: &dyn Module, input: [usize; 4], at: &[usize], device: &Device, trials: u64,
) -> Result<ExactField> {
    let [_, _, h, w] = input;
    let mut hit = vec![false; h * w];
    for seed in 0..trials {
        let x =
            Tensor::rand(input.to_vec(), 0x5eed + seed, device)?.add_scalar(0.5)?.requires_grad_();
        let y = net.forward(&x)?;
        if at.len() != y.rank() || at.iter().zip(y.dims()).any(|(i, d)| i >= d) {
            bail!(
                "receptive_field_exact",
                "index {at:?} is outside the output of shape {}",
                y.shape()
            );
        }
        let flat = at.iter().zip(y.shape().strides()).map(|(i, s)| i * s).sum::<usize>();
        let mut seed_grad = vec![0.0; y.elem_count()];
        seed_grad[flat] = 1.0;
        let g = y.backward_with(&Tensor::from_vec(seed_grad, y.dims().to_vec(), device)?)?;
        let Some(gx) = g.get(&x) else { continue };
        let gx = gx.to_vec()?;
        for (i, v) in gx.iter().enumerate() {
            if *v != 0.0 {
                hit[i % (h * w)] = true;
            }
        }
    }
    let span = |positions: Vec<usize>| Some((*positions.iter().min()?, *positions.iter().max()?));
    let on: Vec<usize> = (0..h * w).filter(|&i| hit[i]).collect();
    Ok(ExactField {
        rows: span(on.iter().map(|i| i / w).collect()),
        cols: span(on.iter().map(|i| i % w).collect()),
        positions: on.len(),
    })
}
