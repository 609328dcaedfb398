//! Padding of the last two axes (`F.pad` with four widths): the geometry, and per axis the map
//! from an output index to the input index it reads, shared by both backends.

/// How the border is filled. The codes are the shader's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadKind {
    Constant = 0,
    Reflect = 1,
    Replicate = 2,
    Circular = 3,
}

/// `(planes, h, w) -> (planes, oh, ow)`; output row `y` reads input row `y - top` folded back
/// into the input by `kind` (a negative `top` or `left` crops, constant mode only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PadGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub top: isize,
    pub left: isize,
    pub kind: PadKind,
    /// the constant mode's fill
    pub value: f32,
}

/// The input index output `o` reads along an axis of `n` inputs with `before` added in front,
/// or `None` where constant padding fills it. The widths are already checked against the
/// mode: reflect below `n`, circular at most `n`, so one fold lands inside.
#[inline]
pub(crate) fn pad_source(o: usize, before: isize, n: usize, kind: PadKind) -> Option<usize> {
    let n = n as isize;
    let s = o as isize - before;
    let s = match kind {
        PadKind::Constant => s,
        PadKind::Reflect if s < 0 => -s,
        PadKind::Reflect if s >= n => 2 * (n - 1) - s,
        PadKind::Replicate => s.clamp(0, n - 1),
        PadKind::Circular if s < 0 => s + n,
        PadKind::Circular if s >= n => s - n,
        _ => s,
    };
    (0..n).contains(&s).then_some(s as usize)
}

/// The outputs reading input `i` along an axis, as up to three ascending ranges `[lo, hi)` of
/// `[0, out)` (empty ones are `(0, 0)`): the same set `pad_source` maps to `i`, in the order
/// the GPU's gather adds them.
pub(crate) fn pad_readers(
    i: usize, before: isize, n: usize, out: usize, kind: PadKind,
) -> [(usize, usize); 3] {
    let (i, ni, out_i) = (i as isize, n as isize, out as isize);
    let range = |lo: isize, hi: isize| {
        let (lo, hi) = (lo.max(0), hi.min(out_i));
        if lo < hi {
            (lo as usize, hi as usize)
        } else {
            (0, 0)
        }
    };
    let one = |s: isize| range(s + before, s + before + 1);
    match kind {
        PadKind::Constant => [one(i), (0, 0), (0, 0)],
        PadKind::Replicate => {
            let lo = if i == 0 { 0 } else { i + before };
            let hi = if i == ni - 1 { out_i } else { i + before + 1 };
            [range(lo, hi), (0, 0), (0, 0)]
        }
        PadKind::Reflect => {
            let left = if i > 0 { one(-i) } else { (0, 0) };
            let right = if i < ni - 1 { one(2 * (ni - 1) - i) } else { (0, 0) };
            [left, one(i), right]
        }
        PadKind::Circular => [one(i - ni), one(i), one(i + ni)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers of each input are exactly the outputs whose source it is, ascending.
    #[test]
    fn readers_invert_sources() {
        let kinds = [PadKind::Constant, PadKind::Reflect, PadKind::Replicate, PadKind::Circular];
        for kind in kinds {
            for n in 1..6usize {
                for before in -2..7isize {
                    for after in -2..7isize {
                        let ok = match kind {
                            PadKind::Constant => true,
                            PadKind::Reflect => before < n as isize && after < n as isize,
                            PadKind::Replicate => true,
                            PadKind::Circular => before <= n as isize && after <= n as isize,
                        } && (kind == PadKind::Constant || before >= 0 && after >= 0);
                        let out = n as isize + before + after;
                        if !ok || out <= 0 {
                            continue;
                        }
                        let out = out as usize;
                        for i in 0..n {
                            let want: Vec<usize> = (0..out)
                                .filter(|&o| pad_source(o, before, n, kind) == Some(i))
                                .collect();
                            let got: Vec<usize> = pad_readers(i, before, n, out, kind)
                                .iter()
                                .flat_map(|&(lo, hi)| lo..hi)
                                .collect();
                            assert_eq!(got, want, "{kind:?} n {n} pads {before},{after} i {i}");
                        }
                    }
                }
            }
        }
    }
}
