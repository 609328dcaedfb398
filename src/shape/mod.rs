//! Shapes, element counts and broadcasting; `window` holds the only copy of every output-size
//! formula.

mod window;

pub use window::*;

use crate::{bail, Result};

/// The dimensions of a tensor, outermost first. C-contiguous.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl Shape {
    /// The size of each axis.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// The number of elements: the product of the sizes.
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }
    /// C-order strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }
    /// Checks that the element count is addressable (a zero-sized dimension makes an empty
    /// tensor, as in PyTorch).
    pub(crate) fn validate(&self, op: &'static str) -> Result<()> {
        numel(op, &self.0).map(|_| ())
    }

    fn dims_n<const N: usize>(&self, op: &'static str) -> Result<[usize; N]> {
        match <[usize; N]>::try_from(self.0.as_slice()) {
            Ok(d) => Ok(d),
            Err(_) => bail!(op, "expected a {N}-d tensor, got shape {self}"),
        }
    }
    /// The sizes of a 2-d shape; an error for any other rank.
    pub fn dims2(&self) -> Result<(usize, usize)> {
        let [a, b] = self.dims_n("dims2")?;
        Ok((a, b))
    }
    /// The sizes of a 3-d shape; an error for any other rank.
    pub fn dims3(&self) -> Result<(usize, usize, usize)> {
        let [a, b, c] = self.dims_n("dims3")?;
        Ok((a, b, c))
    }
    /// The sizes of a 4-d shape; an error for any other rank.
    pub fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        let [a, b, c, d] = self.dims_n("dims4")?;
        Ok((a, b, c, d))
    }
    /// Same as `dims4` but the error names `op`.
    pub(crate) fn dims4_for(&self, op: &'static str) -> Result<(usize, usize, usize, usize)> {
        let [a, b, c, d] = self.dims_n(op)?;
        Ok((a, b, c, d))
    }
}

/// Largest element count of a tensor (its bytes must be addressable).
pub const MAX_ELEMENTS: usize = isize::MAX as usize / 4;

/// The product of `dims`, or an error naming `op` when it overflows or exceeds [`MAX_ELEMENTS`].
pub fn numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    match dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(n),
        _ => bail!(op, "shape {dims:?} has too many elements"),
    }
}

/// NumPy/PyTorch broadcasting of two shapes (right-aligned).
pub fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
    let rank = a.rank().max(b.rank());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => bail!(op, "shapes {a} and {b} cannot be broadcast together"),
        };
    }
    Ok(Shape(out))
}

fn dim_from_right(s: &Shape, i: usize) -> usize {
    if i < s.rank() {
        s.0[s.rank() - 1 - i]
    } else {
        1
    }
}

/// Strides (in elements) to read `src` as if it had shape `out` (0 on broadcast dims).
pub(crate) fn broadcast_strides(src: &Shape, out: &Shape) -> Vec<usize> {
    let st = src.strides();
    let offset = out.rank() - src.rank();
    (0..out.rank())
        .map(|i| if i < offset || src.0[i - offset] == 1 { 0 } else { st[i - offset] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        let s = broadcast_shapes("t", &[2, 3, 4].into(), &[3, 1].into()).unwrap();
        assert_eq!(s.dims(), &[2, 3, 4]);
        assert!(broadcast_shapes("t", &[2, 3].into(), &[4].into()).is_err());
        assert_eq!(broadcast_strides(&[3, 1].into(), &s), vec![0, 1, 0]);
    }
}
