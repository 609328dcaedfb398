//! conv3d on the CPU: `Conv3dSpec`, its blocks of output depths, and the two gradients (the
//! forward is `volume_rows`). The 2-d columns of the input planes a block of output depths
//! reads are built into a per-thread slab laid out `(groups, planes, c/groups, kh*kw, oh*ow)`;
//! with the weight's taps reordered `(oc, kd, c/groups, kh, kw)`, the columns of each output
//! depth are then one contiguous window of the slab (kd consecutive planes), so each (output
//! depth, group) is one GEMM reading the slab in place and the output gradient's `(n, oc, od,
//! oh, ow)` rows through their stride. The gradients make no padded, unfolded or permuted copy
//! of the volume, and with an undilated depth a plane's columns are built once per block, not
//! once per depth tap (a dilated kernel's block is one output depth, its kd planes gathered).

use rayon::prelude::*;

use super::conv::{partial_chunks, sum_partials};
use super::gemm::{sgemm, Mat, Threads};
use super::host::{host_vec, host_vec_for_overwrite, transpose_runs, with_scratch};
use super::unfold::{col2im_image, im2col_image};
use crate::backend::ConvSpec;
use crate::Result;

/// Most elements of one thread's slab; a block holds at least one output depth.
const SLAB_BUDGET: usize = 1 << 22;

/// A 3-d convolution as the CPU kernels see it: `x (n, c, d, h, w)`, `weight (oc, c/groups,
/// kd, kh, kw)` -> `(n, oc, od, oh, ow)`. The ops layer has validated the shapes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conv3dSpec {
    /// The convolution over one `(h, w)` plane: `plane.g.n` is 1, `plane.g.c` the input
    /// channels, `plane.d` the output channels.
    pub plane: ConvSpec,
    /// Images.
    pub n: usize,
    /// Input depth.
    pub d: usize,
    /// Kernel depth, stride, dilation and zero planes before the input along depth.
    pub kd: usize,
    pub sd: usize,
    pub dd: usize,
    pub pad: usize,
    /// Output depth.
    pub od: usize,
    /// Most elements of a slab (`SLAB_BUDGET`; smaller in tests, to cut blocks).
    pub slab_budget: usize,
}

/// Output depths `z0..z0 + len` and the input planes their taps read: slab plane `j` is input
/// plane `first + j * step` (zeros outside the input).
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub z0: usize,
    pub len: usize,
    pub first: isize,
    pub step: usize,
    pub planes: usize,
}

impl Conv3dSpec {
    /// The spec with the default slab budget.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plane: ConvSpec, n: usize, d: usize, (kd, sd, dd, pad): (usize, usize, usize, usize),
        od: usize,
    ) -> Self {
        Conv3dSpec { plane, n, d, kd, sd, dd, pad, od, slab_budget: SLAB_BUDGET }
    }
    pub(super) fn ohw(&self) -> usize {
        self.plane.ohw()
    }
    /// Taps per plane: `kh * kw`.
    pub(super) fn taps(&self) -> usize {
        self.plane.g.kh * self.plane.g.kw
    }
    /// Rows of one group's columns: `(c / groups) * kd * kh * kw`, reordered `(kd, c/groups,
    /// kh, kw)`.
    pub(super) fn k(&self) -> usize {
        self.plane.cg() * self.kd * self.taps()
    }
    /// Elements of one image `(c, d, h, w)`.
    pub(super) fn image(&self) -> usize {
        self.plane.g.c * self.d * self.plane.g.h * self.plane.g.w
    }
    /// Elements of the output `(n, oc, od, oh, ow)`.
    pub fn out_len(&self) -> usize {
        self.n * self.plane.d * self.od * self.ohw()
    }
    /// Output channel `oc`'s `(oh, ow)` plane at depth `z` of image `img`: the offset of a
    /// `(dg, ohw)` block whose rows lie `od * ohw` apart.
    pub(super) fn out_offset(&self, img: usize, oc: usize, z: usize) -> usize {
        ((img * self.plane.d + oc) * self.od + z) * self.ohw()
    }
    /// Elements of one slab plane of one group: `(c/groups, kh*kw, ohw)`.
    fn plane_len(&self) -> usize {
        self.plane.cg() * self.taps() * self.ohw()
    }

    /// Output depths per block and the slab planes a full block reads. Dilated depth taps are
    /// not consecutive planes: one output depth per block, its `kd` planes gathered.
    fn block_shape(&self) -> (usize, usize) {
        if self.dd > 1 {
            return (1, self.kd);
        }
        let unit = self.plane.groups * self.plane_len();
        let fits = |b: usize| ((b - 1) * self.sd + self.kd) * unit <= self.slab_budget;
        let mut len = 1;
        while len < self.od && fits(len + 1) {
            len += 1;
        }
        (len, (len - 1) * self.sd + self.kd)
    }
    /// Blocks cutting `0..od`, by the shape alone.
    pub(super) fn blocks(&self) -> Vec<Block> {
        let (len, _) = self.block_shape();
        (0..self.od)
            .step_by(len)
            .map(|z0| {
                let len = len.min(self.od - z0);
                let first = (z0 * self.sd) as isize - self.pad as isize;
                if self.dd > 1 {
                    return Block { z0, len, first, step: self.dd, planes: self.kd };
                }
                Block { z0, len, first, step: 1, planes: (len - 1) * self.sd + self.kd }
            })
            .collect()
    }
    /// Elements of one thread's slab.
    pub(super) fn slab_len(&self) -> usize {
        self.block_shape().1 * self.plane.groups * self.plane_len()
    }
    /// Input plane of slab plane `j`, `None` in the padding.
    pub(super) fn source(&self, b: &Block, j: usize) -> Option<usize> {
        usize::try_from(b.first + (j * b.step) as isize).ok().filter(|&i| i < self.d)
    }
    /// Group `grp`'s part of the slab: `(planes, cg * taps, ohw)`.
    pub(super) fn group_slab<'a>(
        &self, b: &Block, slab: &'a mut [f32], grp: usize,
    ) -> &'a mut [f32] {
        let len = b.planes * self.plane_len();
        &mut slab[grp * len..][..len]
    }
    /// The first element of output depth `z`'s columns in its group's slab: `k` rows of `ohw`.
    fn window(&self, b: &Block, z: usize) -> usize {
        // a dilated block holds one depth: z == z0
        (z - b.z0) * self.sd * self.plane_len()
    }

    /// Builds the slab of block `b` of one image `x (c, d, h, w)`.
    fn fill_slab(&self, x: &[f32], b: &Block, slab: &mut [f32]) {
        let (hw, cg, block) =
            (self.plane.g.h * self.plane.g.w, self.plane.cg(), self.taps() * self.ohw());
        for grp in 0..self.plane.groups {
            let gs = self.group_slab(b, slab, grp);
            for (row, dst) in gs.chunks_exact_mut(block).enumerate() {
                let (j, ci) = (row / cg, grp * cg + row % cg);
                match self.source(b, j) {
                    Some(zi) => {
                        im2col_image(&x[(ci * self.d + zi) * hw..][..hw], &self.plane.g, dst)
                    }
                    None => dst.fill(0.0),
                }
            }
        }
    }

    /// The weight `(oc, cg, kd, taps)` with its taps in the slab's order `(oc, kd, cg, taps)`,
    /// or back with `back`.
    fn reorder(&self, w: &[f32], back: bool, op: &'static str) -> Result<Vec<f32>> {
        let (cg, kd) = (self.plane.cg(), self.kd);
        transpose_runs(w, if back { (kd, cg) } else { (cg, kd) }, self.taps(), op)
    }
}

/// The output gradient's `(dg, ohw)` block of group `grp` at depth `z` of image `img`.
fn grad_block(grad: &[f32], s: &Conv3dSpec, img: usize, grp: usize, z: usize) -> Mat {
    let ohw = s.ohw();
    let m = Mat::rows(&grad[s.out_offset(img, grp * s.plane.dg(), z)..], ohw);
    Mat { rs: (s.od * ohw) as isize, ..m }
}

/// `grad (n, oc, od, oh, ow)`, `w` -> the input gradient `(n, c, d, h, w)`: per block, each
/// output depth's `W_g^T x grad` added into its window of a zeroed slab (depths in order), then
/// each plane's columns added into the plane. An image's blocks run in order, so its elements
/// receive their terms in one order whatever the thread count.
pub(crate) fn conv3d_backward_input(grad: &[f32], w: &[f32], s: &Conv3dSpec) -> Result<Vec<f32>> {
    const OP: &str = "conv3d_backward_input";
    let (k, ohw, dg, cg) = (s.k(), s.ohw(), s.plane.dg(), s.plane.cg());
    let hw = s.plane.g.h * s.plane.g.w;
    let w = s.reorder(w, false, OP)?;
    let mut dx = host_vec_for_overwrite(s.n * s.image(), OP)?;
    if dx.is_empty() {
        return Ok(dx);
    }
    let threads = Threads::for_tasks(s.n);
    let (blocks, block) = (s.blocks(), s.taps() * ohw);
    dx.par_chunks_mut(s.image()).enumerate().try_for_each(|(img, dxn)| {
        // zeroed by a write, not fresh zero pages: columns are added into it, and a first read
        // of a fresh page maps the shared zero page, whose first write then costs a fault and a
        // TLB flush on every core
        dxn.fill(0.0);
        with_scratch(s.slab_len(), OP, |slab| {
            for b in &blocks {
                for grp in 0..s.plane.groups {
                    let gs = s.group_slab(b, slab, grp);
                    gs.fill(0.0);
                    let wt = Mat::rows(&w[grp * dg * k..], k).t(); // (k, dg)
                    for z in b.z0..b.z0 + b.len {
                        let win = &mut gs[s.window(b, z)..][..k * ohw];
                        // window (k, ohw) += W_g^T (k, dg) x grad (dg, ohw)
                        // SAFETY: each operand spans exactly the slice it is made from.
                        unsafe {
                            let go = grad_block(grad, s, img, grp, z);
                            sgemm((k, ohw, dg), wt, go, Mat::rows_mut(win, ohw), true, threads);
                        }
                    }
                    for (row, src) in gs.chunks_exact_mut(block).enumerate() {
                        let (j, ci) = (row / cg, grp * cg + row % cg);
                        if let Some(zi) = s.source(b, j) {
                            col2im_image(src, &s.plane.g, &mut dxn[(ci * s.d + zi) * hw..][..hw]);
                        }
                    }
                }
            }
        })
    })?;
    Ok(dx)
}

/// `x (n, c, d, h, w)`, `grad (n, oc, od, oh, ow)` -> the weight gradient `(oc, c/groups, kd,
/// kh, kw)`: per group the sum over (image, depth) of `grad x window^T`, in fixed chunks of
/// (image, block) pairs whose partials are added in order.
pub(crate) fn conv3d_backward_weight(x: &[f32], grad: &[f32], s: &Conv3dSpec) -> Result<Vec<f32>> {
    const OP: &str = "conv3d_backward_weight";
    let (k, ohw, dg) = (s.k(), s.ohw(), s.plane.dg());
    let wlen = s.plane.d * k;
    let blocks = s.blocks();
    let items: Vec<(usize, Block)> =
        (0..s.n).flat_map(|img| blocks.iter().map(move |b| (img, *b))).collect();
    if wlen == 0 || items.is_empty() {
        return host_vec(wlen, 0.0, OP);
    }
    let (per, chunks) = partial_chunks(items.len(), wlen);
    let threads = Threads::for_tasks(chunks);
    // each partial is overwritten by its first product
    let mut partials = host_vec_for_overwrite(chunks * wlen, OP)?;
    partials.par_chunks_mut(wlen).enumerate().try_for_each(|(j, part)| {
        with_scratch(s.slab_len(), OP, |slab| {
            for (i, (img, b)) in items[j * per..((j + 1) * per).min(items.len())].iter().enumerate()
            {
                s.fill_slab(&x[img * s.image()..], b, slab);
                for grp in 0..s.plane.groups {
                    let gs = s.group_slab(b, slab, grp);
                    for z in b.z0..b.z0 + b.len {
                        // dW_g (dg, k) (+)= grad (dg, ohw) x window^T (ohw, k), column-major
                        // SAFETY: each operand spans exactly the slice it is made from.
                        unsafe {
                            sgemm(
                                (dg, k, ohw),
                                grad_block(grad, s, *img, grp, z),
                                Mat::rows(&gs[s.window(b, z)..], ohw).t(),
                                Mat::cols_mut(&mut part[grp * dg * k..], dg),
                                i > 0 || z > b.z0,
                                threads,
                            );
                        }
                    }
                }
            }
        })
    })?;
    s.reorder(&sum_partials(partials, (s.plane.groups, k, dg), OP)?, true, OP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::volume_rows::conv3d;
    use crate::shape::WindowGeom;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs {w}");
        }
    }

    /// Every (output, weight, input) triple of the convolution, by the definition: the input
    /// position a weight reads for an output, `None` in the padding.
    fn each_term(s: &Conv3dSpec, mut f: impl FnMut(usize, usize, usize)) {
        let g = &s.plane.g;
        let (oc, dg, cg) = (s.plane.d, s.plane.dg(), s.plane.cg());
        let at = |o: usize, k: usize, st: usize, dil: usize, pad: usize, len: usize| {
            (o * st + k * dil).checked_sub(pad).filter(|&i| i < len)
        };
        for img in 0..s.n {
            for o in 0..oc {
                for (z, oy, ox) in itertools_3(s.od, g.oh, g.ow) {
                    let out = (((img * oc + o) * s.od + z) * g.oh + oy) * g.ow + ox;
                    for (ci, t, (ky, kx)) in (0..cg).flat_map(|ci| {
                        (0..s.kd).flat_map(move |t| {
                            (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| (ci, t, (ky, kx))))
                        })
                    }) {
                        let zi = at(z, t, s.sd, s.dd, s.pad, s.d);
                        let yi = at(oy, ky, g.sh, g.dh, g.pad_top, g.h);
                        let xi = at(ox, kx, g.sw, g.dw, g.pad_left, g.w);
                        let (Some(zi), Some(yi), Some(xi)) = (zi, yi, xi) else { continue };
                        let c = (o / dg) * cg + ci;
                        let input = (((img * g.c + c) * s.d + zi) * g.h + yi) * g.w + xi;
                        let weight = (((o * cg + ci) * s.kd + t) * g.kh + ky) * g.kw + kx;
                        f(out, weight, input);
                    }
                }
            }
        }
    }

    fn itertools_3(a: usize, b: usize, c: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |k| (i, j, k))))
    }

    /// Forward and both gradients against the definition, over strides, dilations, padding
    /// (past the kernel too), groups, a 1x1 plane kernel and depths the kernel barely fits.
    #[test]
    fn conv3d_kernels_match_the_definition() {
        // (n, c, d, h, w), oc, (kd, kh, kw), stride, pad (d, h, w), dilation, groups
        type Case = ([usize; 5], usize, [usize; 3], [usize; 3], [usize; 3], [usize; 3], usize);
        let cases: [Case; 7] = [
            ([2, 3, 5, 6, 7], 4, [3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], 1),
            ([1, 4, 6, 5, 5], 6, [2, 3, 1], [2, 1, 2], [0, 1, 0], [1, 2, 1], 2),
            ([3, 2, 4, 4, 3], 2, [3, 1, 1], [1, 1, 1], [3, 0, 0], [2, 1, 1], 1),
            ([1, 2, 3, 8, 8], 3, [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], 1),
            ([2, 1, 7, 3, 4], 2, [1, 2, 2], [3, 1, 1], [0, 1, 1], [1, 1, 1], 1),
            ([1, 6, 3, 4, 4], 3, [3, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1], 3),
            // padding past the kernel's extent: whole output planes and rows read only padding
            ([1, 2, 3, 4, 4], 2, [2, 2, 2], [1, 1, 1], [2, 2, 2], [1, 1, 1], 1),
        ];
        for ([n, c, d, h, w], oc, [kd, kh, kw], [sd, sh, sw], [pd, ph, pw], [dd, dh, dw], groups) in
            cases
        {
            let what = format!("{:?}", ([n, c, d, h, w], oc, [kd, kh, kw], [sd, sh, sw], groups));
            let pads = [ph, ph, pw, pw];
            let g =
                WindowGeom::conv("test", (1, c, h, w), (kh, kw), (sh, sw), pads, (dh, dw)).unwrap();
            let od = (d + 2 * pd - dd * (kd - 1) - 1) / sd + 1;
            let s = Conv3dSpec::new(ConvSpec { g, groups, d: oc }, n, d, (kd, sd, dd, pd), od);
            let x = values(n * c * d * h * w, 1);
            let wt = values(oc * (c / groups) * kd * kh * kw, 2);
            let bias = values(oc, 3);
            let up = values(s.out_len(), 4);
            let mut y = vec![0.0; s.out_len()];
            for (i, v) in y.iter_mut().enumerate() {
                *v = bias[(i / (s.od * s.ohw())) % oc];
            }
            let (mut dx, mut dwt) = (vec![0.0; x.len()], vec![0.0; wt.len()]);
            each_term(&s, |o, k, i| {
                y[o] += wt[k] * x[i];
                dx[i] += wt[k] * up[o];
                dwt[k] += up[o] * x[i];
            });
            // one slab for every depth, one depth per block, two depths per block
            let unit = groups * s.plane_len();
            for slab_budget in [SLAB_BUDGET, 0, (sd + kd) * unit] {
                let s = Conv3dSpec { slab_budget, ..s };
                let what = format!("{what} blocks of {}", s.block_shape().0);
                close(&conv3d(&x, &wt, Some(&bias), &s).unwrap(), &y, &format!("y {what}"));
                close(&conv3d_backward_input(&up, &wt, &s).unwrap(), &dx, &format!("dx {what}"));
                close(&conv3d_backward_weight(&x, &up, &s).unwrap(), &dwt, &format!("dw {what}"));
            }
        }
    }
}
