//! The GEMM's direct variant (`GemmTiles::direct`), a tuning candidate for plain products and
//! for conv2d's forward and weight gradient: no workgroup memory and no barriers. Each thread
//! reads its own rows of A and columns of B as vec4s along whichever axis each operand is
//! contiguous in, 4 deep at a time, and multiplies them into its block of C. Each output still
//! adds its K terms one at a time in order, so the variant gives the staged kernel's bits.
//!
//! It pays where a load is dear and workgroup memory is no faster than the cache: on software
//! adapters every load of a lane is a load of its own, staging a tile costs a load and a store
//! per element and lane, and a barrier switches between the workgroup's lanes. There, the more
//! outputs a thread computes per vec4 it loads, the faster: blocks up to 32x16, whose
//! accumulators live in the cache. Each block is its own entry point, written out here in
//! straight-line code (a loop over the block's rows, even of constant length, stayed a loop
//! on Mesa 22.3's lavapipe and ran at less than half the speed).

use std::fmt::Write;

use super::gemm_subgroup;
use crate::backend::{GemmSpec, MatLayout};

/// Every kind of B the direct variant reads.
pub(crate) const OPERANDS: [Operand; 4] =
    [Operand::Matrix, Operand::Columns, Operand::Windows, Operand::ColumnsAnyK];

/// The blocks of C a thread of the direct variant can compute, `(rows, columns)`.
pub(crate) const BLOCKS: [(u32, u32); 3] = [(8, 8), (16, 16), (32, 16)];

/// What B is to a direct entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    /// a strided matrix, read as vec4s (the plain product)
    Matrix,
    /// conv2d's implicit columns, gathered from its input (the forward convolution, mode 1 of
    /// shaders/gemm.wgsl)
    Columns,
    /// conv2d's windows as rows, image after image, gathered from its input, with A the output
    /// gradient read image after image (the weight gradient, mode 2)
    Windows,
    /// conv2d's implicit columns as [`Operand::Columns`], with A read one element at a time:
    /// for a K that is not a multiple of 4 (one input channel's 3x3 taps, say), the last
    /// step's terms past K are 0, as the staged kernel's last tile
    ColumnsAnyK,
}

/// The entry point computing `rows x cols` blocks with B read as `b` says, and its place in
/// [`OPERANDS`] x [`BLOCKS`] order; None for a block the variant lacks.
pub(crate) fn entry(rows: u32, cols: u32, b: Operand) -> Option<(String, usize)> {
    let block = BLOCKS.iter().position(|&k| k == (rows, cols))?;
    let prefix = match b {
        Operand::Matrix => "gemm",
        Operand::Columns => "conv",
        Operand::Windows => "wgrad",
        Operand::ColumnsAnyK => "convk",
    };
    let operand = OPERANDS.iter().position(|&o| o == b)?;
    Some((format!("{prefix}_direct_{rows}x{cols}"), operand * BLOCKS.len() + block))
}

/// True where the direct variant can run a product: each operand contiguous along one axis,
/// with its extent along that axis, its other stride, its offset and its batch strides
/// multiples of 4 (so that its vec4s are whole and aligned), K and its chunks `ks` too, and
/// each buffer a whole number of vec4s.
pub(crate) fn fits(s: &GemmSpec, ks: usize, (a_len, b_len): (usize, usize)) -> bool {
    let operand = |l: &MatLayout, rows: usize, cols: usize, len: usize| {
        let along = (l.col_stride == 1 && four(l.row_stride) && four(cols))
            || (l.row_stride == 1 && four(l.col_stride) && four(rows));
        along
            && four(l.offset)
            && four(l.batch_outer_stride)
            && four(l.batch_inner_stride)
            && four(len)
    };
    four(s.k) && four(ks) && operand(&s.a, s.m, s.k, a_len) && operand(&s.b, s.k, s.n, b_len)
}

/// True where the direct variant can run a forward convolution: the weights as A, contiguous
/// along K, with K, its chunks `ks`, A's offset and batch strides, and its buffer's length
/// multiples of 4 (its columns are gathered one by one: B needs nothing).
pub(crate) fn fits_conv(s: &GemmSpec, ks: usize, a_len: usize) -> bool {
    let a = &s.a;
    four(s.k)
        && four(ks)
        && a.col_stride == 1
        && four(a.row_stride)
        && four(a.offset)
        && four(a.batch_outer_stride)
        && four(a.batch_inner_stride)
        && four(a_len)
}

/// True where the direct variant can run a forward convolution one A element at a time
/// ([`Operand::ColumnsAnyK`]): K chunks `ks` (when split) multiples of 4; any K and layout.
pub(crate) fn fits_conv_any_k(s: &GemmSpec, ks: usize) -> bool {
    ks >= s.k || four(ks)
}

/// True where the direct variant can run a weight gradient: the output gradient as A,
/// contiguous along each image's `ohw` positions, with `ohw`, A's stride between images
/// `a_image`, its row stride, offset and batch strides, K, its chunks `ks` and A's buffer
/// multiples of 4 (so that no vec4 spans two images).
pub(crate) fn fits_wgrad(
    s: &GemmSpec, ks: usize, a_len: usize, ohw: usize, a_image: usize,
) -> bool {
    four(ohw) && four(a_image) && fits_conv(s, ks, a_len)
}

fn four(v: usize) -> bool {
    v.is_multiple_of(4)
}

/// The entry points of every block, appended to shaders/gemm.wgsl (whose helpers, epilogue and
/// bindings they use).
pub(crate) fn wgsl() -> String {
    let mut out = String::from(
        "\n// The direct variant's entry points, generated by src/gpu/gemm_direct.rs.\n\
         // x + a.x b0 + a.y b1 + a.z b2 + a.w b3, one term at a time in that order\n\
         fn mac(x: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, \
         b3: vec4<f32>) -> vec4<f32> {\n    \
         return fma(vec4(a.w), b3, fma(vec4(a.z), b2, fma(vec4(a.y), b1, fma(vec4(a.x), b0, x))));\n}\n",
    );
    for b in OPERANDS {
        for (rows, cols) in BLOCKS {
            entry_point(&mut out, rows as usize, cols as usize / 4, b, false);
        }
    }
    out
}

/// One entry point: each thread a block of `rows` rows by `vecs` vec4s, at row `rows * ty` and
/// column `4 vecs * tx` of the workgroup's tile, B read as `b` says; with `subgroup`, the
/// subgroup variant's (`gemm_subgroup.rs`).
pub(crate) fn entry_point(out: &mut String, rows: usize, vecs: usize, b: Operand, subgroup: bool) {
    let (name, _) = match subgroup {
        true => gemm_subgroup::entry(rows as u32, 4 * vecs as u32, b),
        false => entry(rows as u32, 4 * vecs as u32, b),
    }
    .unwrap_or_default();
    let mut w = |line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    let (size, builtins) = match subgroup {
        true => gemm_subgroup::SIGNATURE,
        false => ("GEMM_TX, GEMM_TY, 1", ""),
    };
    w(format!("\n@compute @workgroup_size({size})\nfn {name}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>{builtins}) {{"));
    w("    let chunk = wid.z / p.batches;".into());
    w("    let bidx = wid.z % p.batches + p.batch_start;".into());
    w("    let a0 = base(p.a, bidx);".into());
    w("    let b0 = base(p.b, bidx);".into());
    w("    let c0 = base(p.c, bidx) + chunk * p.slab;".into());
    w("    let kc = chunk * p.k_split;".into());
    w("    let k_lo = kc + p.k_start;".into());
    w("    let k_hi = min(min(kc + p.k_end, kc + p.k_split), p.k);".into());
    // the thread's column and row among the workgroup's threads
    match subgroup {
        true => gemm_subgroup::thread(&mut w),
        false => w("    let tx = lid.x; let ty = lid.y;".into()),
    }
    w(format!("    let r = p.row_start + wid.y * GEMM_TY * {rows}u + ty * {rows}u;"));
    w(format!("    let c = p.col_start + wid.x * GEMM_TX * {}u + tx * {}u;", 4 * vecs, 4 * vecs));
    // acc_q_j: row q, vec4 j; a later K range resumes from C
    for q in 0..rows {
        let accs: Vec<String> =
            (0..vecs).map(|j| format!("var acc{q}_{j} = vec4<f32>(0.0);")).collect();
        w(format!("    {}", accs.join(" ")));
    }
    // C's block is read and written in a loop over an array (its branches, written out once
    // per element, took some drivers seconds to compile)
    let n = rows * vecs;
    w(format!("    var blk: array<vec4<f32>, {n}>;"));
    w("    if (p.k_start > 0u) {".into());
    w(format!("        for (var e = 0u; e < {n}u; e++) {{"));
    w(format!("            blk[e] = c_vec(c0, r + e / {vecs}u, c + 4u * (e % {vecs}u));"));
    w("        }".into());
    for q in 0..rows {
        let accs: Vec<String> =
            (0..vecs).map(|j| format!("acc{q}_{j} = blk[{}];", q * vecs + j)).collect();
        w(format!("        {}", accs.join(" ")));
    }
    w("    }".into());
    match b {
        Operand::Matrix => {}
        Operand::Columns | Operand::ColumnsAnyK => column_origins(&mut w, vecs),
        Operand::Windows => column_taps(&mut w, vecs),
    }
    w("    for (var k = k_lo; k < k_hi; k += 4u) {".into());
    match subgroup {
        true => gemm_subgroup::a_shared(&mut w, rows, b),
        false => a_rows(&mut w, rows, b, "av"),
    }
    match b {
        Operand::Matrix => b_loads(&mut w, vecs),
        Operand::Columns => b_gathers(&mut w, vecs, false),
        Operand::ColumnsAnyK => b_gathers(&mut w, vecs, true),
        Operand::Windows => b_windows(&mut w, vecs),
    }
    for q in 0..rows {
        for j in 0..vecs {
            w(format!(
                "        acc{q}_{j} = mac(acc{q}_{j}, av{q}, bv0_{j}, bv1_{j}, bv2_{j}, bv3_{j});"
            ));
        }
    }
    w("    }".into());
    w("    let entry = bidx % p.batch_inner;".into());
    for q in 0..rows {
        let accs: Vec<String> =
            (0..vecs).map(|j| format!("blk[{}] = acc{q}_{j};", q * vecs + j)).collect();
        w(format!("    {}", accs.join(" ")));
    }
    w(format!("    for (var e = 0u; e < {n}u; e++) {{"));
    w(format!("        store_vec(c0, r + e / {vecs}u, c + 4u * (e % {vecs}u), blk[e], entry);"));
    w("    }".into());
    w("}".into());
}

/// `{v}{q}` = A[r + q, k..k + 4] for each row q of the block, read as operand `b`'s A.
pub(crate) fn a_rows(w: &mut impl FnMut(String), rows: usize, b: Operand, v: &str) {
    match b {
        Operand::Windows => a_loads_by_image(w, rows, v),
        Operand::ColumnsAnyK => a_loads_one_by_one(w, rows, v),
        _ => a_loads(w, rows, v),
    }
}

/// `{v}{q}` = A[r + q, k..k + 4] for each row q of the block, from A4 (A as vec4s): one load
/// per row where A is contiguous along K, else four rows at each of the 4 K, transposed.
fn a_loads(w: &mut impl FnMut(String), rows: usize, v: &str) {
    let decl: Vec<String> = (0..rows).map(|q| format!("var {v}{q}: vec4<f32>;")).collect();
    w(format!("        {}", decl.join(" ")));
    w("        if (p.a.col_stride == 1u) {".into());
    w("            let s = p.a.row_stride / 4u;".into());
    w("            let at = (a0 + r * p.a.row_stride + k) / 4u;".into());
    for q in 0..rows {
        w(format!("            {v}{q} = A4[at + {q}u * s];"));
    }
    w("        } else {".into());
    w("            let s = p.a.col_stride / 4u;".into());
    w("            let at = (a0 + r + k * p.a.col_stride) / 4u;".into());
    for h in 0..rows / 4 {
        for i in 0..4 {
            w(format!("            let x{h}_{i} = A4[at + {h}u + {i}u * s];"));
        }
        for (t, lane) in ["x", "y", "z", "w"].iter().enumerate() {
            let q = 4 * h + t;
            w(format!(
                "            {v}{q} = vec4(x{h}_0.{lane}, x{h}_1.{lane}, x{h}_2.{lane}, x{h}_3.{lane});"
            ));
        }
    }
    w("        }".into());
}

/// The K terms of a step after the first within `k_hi` (the first, `k`, always is).
pub(crate) const K_LIVE: &str =
    "        let k1 = k + 1u < k_hi; let k2 = k + 2u < k_hi; let k3 = k + 3u < k_hi;";

/// `{v}{q}` as in [`a_loads`], one element at a time through A's strides, each K term past
/// `k_hi` 0.
fn a_loads_one_by_one(w: &mut impl FnMut(String), rows: usize, v: &str) {
    w("        let rs = p.a.row_stride;".into());
    w("        let cs = p.a.col_stride;".into());
    w("        let at = a0 + r * rs + k * cs;".into());
    w(K_LIVE.into());
    for q in 0..rows {
        w(format!("        let aq{q} = at + {q}u * rs;"));
        w(format!(
            "        let {v}{q} = vec4(A[aq{q}], select(0.0, A[aq{q} + cs], k1), select(0.0, A[aq{q} + 2u * cs], k2), select(0.0, A[aq{q} + 3u * cs], k3));"
        ));
    }
}

/// `bv{i}_{j}` = B[k + i, c + 4 j..c + 4 j + 4] for each of the 4 K and vec4 j of the block,
/// from B4: one load each where B is contiguous along its columns, else four K of each
/// column, transposed.
fn b_loads(w: &mut impl FnMut(String), vecs: usize) {
    let mut decl = String::new();
    for i in 0..4 {
        for j in 0..vecs {
            let _ = write!(decl, "var bv{i}_{j}: vec4<f32>; ");
        }
    }
    w(format!("        {}", decl.trim_end()));
    w("        if (p.b.col_stride == 1u) {".into());
    w("            let s = p.b.row_stride / 4u;".into());
    w("            let at = (b0 + k * p.b.row_stride + c) / 4u;".into());
    for i in 0..4 {
        for j in 0..vecs {
            w(format!("            bv{i}_{j} = B4[at + {i}u * s + {j}u];"));
        }
    }
    w("        } else {".into());
    w("            let s = p.b.col_stride / 4u;".into());
    w("            let at = (b0 + k + c * p.b.col_stride) / 4u;".into());
    for j in 0..vecs {
        // the four columns of vec4 j, each 4 deep along K
        for t in 0..4 {
            w(format!("            let y{j}_{t} = B4[at + {}u * s];", 4 * j + t));
        }
        for (i, lane) in ["x", "y", "z", "w"].iter().enumerate() {
            w(format!(
                "            bv{i}_{j} = vec4(y{j}_0.{lane}, y{j}_1.{lane}, y{j}_2.{lane}, y{j}_3.{lane});"
            ));
        }
    }
    w("        }".into());
}

/// For each column `c + j` of the block (an output position `(oh, ow)`), the input row and
/// column its window starts at, `ih{j}` and `iw{j}` (negative in the padding), and whether
/// the position exists, `in{j}`: computed once, outside the K loop.
fn column_origins(w: &mut impl FnMut(String), vecs: usize) {
    for j in 0..4 * vecs {
        w(format!("    let ih{j} = i32(((c + {j}u) / p.win.ow) * p.win.sh) - i32(p.win.pad_top);"));
        w(format!(
            "    let iw{j} = i32(((c + {j}u) % p.win.ow) * p.win.sw) - i32(p.win.pad_left);"
        ));
        w(format!("    let in{j} = c + {j}u < p.n;"));
    }
}

/// `bv{i}_{j}` as in [`b_loads`], gathered from conv2d's input (mode 1's `x_at`): each of the
/// 4 K terms `(ci, kh, kw)` is the same for every column, so its tap offsets are computed once
/// a step; each column adds its window origin. 0 in the padding and past the matrix, and,
/// with `past_k`, for the terms past `k_hi` (`k1`..`k3` from [`a_loads_one_by_one`]).
fn b_gathers(w: &mut impl FnMut(String), vecs: usize, past_k: bool) {
    w("        let taps = p.win.kh * p.win.kw;".into());
    w("        let plane = p.win.h * p.win.w;".into());
    for i in 0..4 {
        w(format!("        let t{i} = (k + {i}u) % taps;"));
        w(format!("        let x{i} = b0 + ((k + {i}u) / taps) * plane;"));
        w(format!("        let dh{i} = i32((t{i} / p.win.kw) * p.win.dh);"));
        w(format!("        let dw{i} = i32((t{i} % p.win.kw) * p.win.dw);"));
        let live = (past_k && i > 0).then(|| format!("k{i}"));
        gather_term(w, i, vecs, live, |j| {
            [format!("ih{j} + dh{i}"), format!("iw{j} + dw{i}"), format!("x{i}")]
        });
    }
}

/// `{v}{q}` as in [`a_loads`] from the output gradient with K = (image, position): the 4 K of
/// a step lie in one image (the host keeps `oh * ow` a multiple of 4), `p.a_image` apart.
fn a_loads_by_image(w: &mut impl FnMut(String), rows: usize, v: &str) {
    w("        let ohw = p.win.oh * p.win.ow;".into());
    w("        let s = p.a.row_stride / 4u;".into());
    w("        let at = (a0 + (k / ohw) * p.a_image + r * p.a.row_stride + k % ohw) / 4u;".into());
    for q in 0..rows {
        w(format!("        let {v}{q} = A4[at + {q}u * s];"));
    }
}

/// For each column `c + j` of the block (a tap `(ci, kh, kw)`), its channel's plane offset
/// `xc{j}`, its offsets from a window's origin `th{j}` and `tw{j}` (the padding taken off),
/// and whether the tap exists, `in{j}`: computed once, outside the K loop.
fn column_taps(w: &mut impl FnMut(String), vecs: usize) {
    w("    let taps = p.win.kh * p.win.kw;".into());
    for j in 0..4 * vecs {
        w(format!("    let t{j} = (c + {j}u) % taps;"));
        w(format!("    let xc{j} = ((c + {j}u) / taps) * p.win.h * p.win.w;"));
        w(format!("    let th{j} = i32((t{j} / p.win.kw) * p.win.dh) - i32(p.win.pad_top);"));
        w(format!("    let tw{j} = i32((t{j} % p.win.kw) * p.win.dw) - i32(p.win.pad_left);"));
        w(format!("    let in{j} = c + {j}u < p.n;"));
    }
}

/// `bv{i}_{j}` as in [`b_loads`] for mode 2: row k = (image, output position) of the input's
/// windows, column a tap. Each of the 4 K of a step is the same window for every column, so
/// its origin is computed once a step; each column adds its tap. 0 in the padding and past
/// the matrix.
fn b_windows(w: &mut impl FnMut(String), vecs: usize) {
    // `ohw`: from `a_loads_by_image`
    for i in 0..4 {
        w(format!("        let pos{i} = (k + {i}u) % ohw;"));
        w(format!("        let x{i} = b0 + ((k + {i}u) / ohw) * p.b_image;"));
        w(format!("        let oh{i} = i32((pos{i} / p.win.ow) * p.win.sh);"));
        w(format!("        let ow{i} = i32((pos{i} % p.win.ow) * p.win.sw);"));
        gather_term(w, i, vecs, None, |j| {
            [format!("oh{i} + th{j}"), format!("ow{i} + tw{j}"), format!("x{i} + xc{j}")]
        });
    }
}

/// K term `i` of every column `j` of the block, gathered: input row and column `at(j)[0..2]`
/// of the plane starting at `at(j)[2]`, 0 outside the input, past the matrix (`in{j}`) and
/// where `live` (a condition of the term) is false; then the term's vec4s `bv{i}_{j}`.
fn gather_term(
    w: &mut impl FnMut(String), i: usize, vecs: usize, live: Option<String>,
    at: impl Fn(usize) -> [String; 3],
) {
    let live = live.map_or(String::new(), |l| format!("{l} && "));
    for j in 0..4 * vecs {
        let [h, x, plane] = at(j);
        w(format!("        let h{i}_{j} = {h}; let w{i}_{j} = {x};"));
        w(format!(
            "        let ok{i}_{j} = {live}in{j} && h{i}_{j} >= 0 && w{i}_{j} >= 0 && u32(h{i}_{j}) < p.win.h && u32(w{i}_{j}) < p.win.w;"
        ));
        w(format!(
            "        let e{i}_{j} = select(0.0, B[{plane} + u32(select(0, h{i}_{j} * i32(p.win.w) + w{i}_{j}, ok{i}_{j}))], ok{i}_{j});"
        ));
    }
    for j in 0..vecs {
        let e: Vec<String> = (0..4).map(|t| format!("e{i}_{}", 4 * j + t)).collect();
        w(format!("        let bv{i}_{j} = vec4({});", e.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_has_an_entry_point_in_the_generated_text() {
        let text = wgsl();
        for b in OPERANDS {
            for (rows, cols) in BLOCKS {
                let (name, _) = entry(rows, cols, b).unwrap();
                assert!(text.contains(&format!("fn {name}(")), "{name}");
            }
        }
        assert_eq!(entry(4, 4, Operand::Matrix), None);
    }

    fn spec(m: usize, n: usize, k: usize, a: MatLayout, b: MatLayout) -> GemmSpec {
        let c = MatLayout::row_major(m, n);
        GemmSpec { batch: 1, batch_inner: 1, m, n, k, a, b, c, c_len: m * n }
    }

    #[test]
    fn only_whole_aligned_vec4s_fit() {
        let (a, b) = (MatLayout::row_major(36, 132), MatLayout::row_major(132, 88));
        let fit = |s: &GemmSpec| fits(s, s.k, (s.m * s.k, s.k * s.n));
        // contiguous along either axis
        assert!(fit(&spec(36, 88, 132, a, b)));
        assert!(fit(&spec(36, 88, 132, MatLayout::row_major(132, 36).t(), b)));
        assert!(fit(&spec(36, 88, 132, a, MatLayout::row_major(88, 132).t())));
        // K, a row stride, an offset or a buffer not a multiple of 4
        assert!(!fit(&spec(36, 88, 130, MatLayout::row_major(36, 130), b)));
        assert!(!fit(&spec(36, 90, 132, a, MatLayout::row_major(132, 90))));
        assert!(!fit(&spec(36, 88, 132, MatLayout { offset: 2, ..a }, b)));
        let s = spec(36, 88, 132, a, b);
        assert!(!fits(&s, 130, (36 * 132, 132 * 88)));
        assert!(!fits(&s, 132, (36 * 132 + 1, 132 * 88)));
        // a transposed operand's extent along its contiguous axis
        assert!(!fit(&spec(34, 88, 132, MatLayout::row_major(132, 36).t(), b)));
    }
}
