// Strided batched matrix product C[b] = A[b] (m, k) x B[b] (k, n).
// Each operand is addressed through its own strides (src/backend/mod.rs `MatLayout`), so transposed
// operands, grouped convolution and per-image products need no copies.
// Implicit-GEMM convolution, the im2col gather inside the tile loads so no column matrix exists
// in memory, over an input x (n, c, h, w) with the window p.win:
// - mode 1 (conv2d): B is x's columns; batch entry = (image, group), k = (c, kh, kw) within
//   the group, column = (oh, ow).
// - mode 2 (its weight gradient): batch entry = group; A is the output gradient (n, d, oh, ow) read with
//   images side by side (k = (image, oh, ow), p.a_image apart), B the transposed columns
//   (column = (c, kh, kw), images p.b_image apart).
// - mode 3 (its input gradient, stride 1): a stride-1 input gradient as the forward convolution of the output
//   gradient (B, gathered as in mode 1) with the weights transposed and flipped: A[r = ci,
//   k = (co, t)] = w[co, ci, taps - 1 - t], filters p.a_image apart.
// - mode 4 (its input gradient, any stride): any input gradient; batch entry = (image, group), A[r = ci,
//   k = (co, t)] = w[co, ci, t], B row k, column (ih, iw) the output gradient at the window
//   whose tap t reads input (ih, iw) (a gather: no columns, no col2im, no atomics).
// The operands' batch strides (p.a, p.b) locate each entry's first filter and channel.
//
// Tiling (sizes are pipeline constants, picked per adapter by src/gpu/runtime/tiles.rs): a workgroup of
// GEMM_TX x GEMM_TY threads computes a GEMM_BM x GEMM_BN tile of C, each thread an 8x8, 8x4, 4x8 or 4x4 block
// held in vec4s. A and B are staged GEMM_BK deep in workgroup memory, K-major
// ([k][row] and [k][column], one vec4 of padding per k row against bank conflicts), so each
// thread reads its rows and columns as vec4s. The next K tile is fetched into registers while
// the current one is multiplied. The direct variant, without staging, appends its entry points
// to this module (src/gpu/gemm_direct.rs generates them) and uses its helpers and epilogue.

// The operand mode, a pipeline constant every kernel of this module sets (0: the strided GEMM;
// 1-4: the convolutions above): the driver compiles one pipeline per mode, and its compiler
// drops the other modes' branches from the tile loads. (Declared first: naga 30 mishandles a
// pipeline constant declared after the module's other global expressions.)
override MODE: u32;

// each thread computes a BLOCK_ROWS x (4 BLOCK_VECS) block of C (the prelude's constants; the
// statements of a larger block are constant-folded away)
override GEMM_BM: u32 = GEMM_TY * BLOCK_ROWS;
override GEMM_BN: u32 = GEMM_TX * 4u * BLOCK_VECS;
override THREADS: u32 = GEMM_TX * GEMM_TY;
// tile elements each thread stages per operand
override A_LOADS: u32 = GEMM_BK * GEMM_BM / THREADS;
override B_LOADS: u32 = GEMM_BK * GEMM_BN / THREADS;
// vec4s per k row of a staged tile
override A_ROW: u32 = GEMM_BM / 4u + 1u;
override B_ROW: u32 = GEMM_BN / 4u + 1u;
// the register arrays' capacity: the host keeps every tile within it
const MAX_LOADS: u32 = 32u;

var<workgroup> As: array<vec4<f32>, GEMM_BK * A_ROW>; // [GEMM_BK][GEMM_BM / 4 + 1]
var<workgroup> Bs: array<vec4<f32>, GEMM_BK * B_ROW>; // [GEMM_BK][GEMM_BN / 4 + 1]

fn base(mat: Mat, b: u32) -> u32 {
    return mat.offset + (b / p.batch_inner) * mat.batch_outer + (b % p.batch_inner) * mat.batch_inner;
}

// (row, k) of A's tile and (k, column) of B's that load e fills: neighbouring loads take
// neighbouring addresses of the operand (along k when it is contiguous in k).
fn a_slot(e: u32) -> vec2<u32> {
    if (p.a.col_stride == 1u) {
        return vec2<u32>(e / GEMM_BK, e % GEMM_BK);
    }
    return vec2<u32>(e % GEMM_BM, e / GEMM_BM);
}

fn b_slot(e: u32) -> vec2<u32> {
    if (p.b.col_stride == 1u) {
        return vec2<u32>(e / GEMM_BN, e % GEMM_BN);
    }
    return vec2<u32>(e % GEMM_BK, e / GEMM_BK);
}

// A[r, k] and B[k, c] of this batch entry, 0 outside the matrix or past this pass's K range
// (which ends at k_hi: a parameter, not a private variable, so that the tile loop's bound is
// uniform to a browser's compiler).
fn a_at(a0: u32, r: u32, k: u32, k_hi: u32, mode: u32) -> f32 {
    if (r >= p.m || k >= k_hi) { return 0.0; }
    if (mode == 2u) {
        let ohw = p.win.oh * p.win.ow;
        return A[a0 + (k / ohw) * p.a_image + r * p.a.row_stride + k % ohw];
    }
    if (mode == 3u || mode == 4u) {
        let taps = p.win.kh * p.win.kw;
        var t = k % taps;
        if (mode == 3u) {
            t = taps - 1u - t;
        }
        return A[a0 + (k / taps) * p.a_image + r * taps + t];
    }
    return A[a0 + r * p.a.row_stride + k * p.a.col_stride];
}

fn b_at(b0: u32, k: u32, c: u32, k_hi: u32, mode: u32) -> f32 {
    if (c >= p.n || k >= k_hi) { return 0.0; }
    if (mode == 1u || mode == 3u) {
        return x_at(b0, k, c);
    }
    if (mode == 4u) {
        return grad_at(b0, k, c);
    }
    if (mode == 2u) {
        // row k = (image, window), column c = tap
        let ohw = p.win.oh * p.win.ow;
        return x_at(b0 + (k / ohw) * p.b_image, c, k % ohw);
    }
    return B[b0 + k * p.b.row_stride + c * p.b.col_stride];
}

// Column c = (oh, ow) of row k = (ci, kh, kw) of the implicit columns, from the group's
// channels of one image starting at x0; 0 in the padding.
fn x_at(x0: u32, k: u32, c: u32) -> f32 {
    let taps = p.win.kh * p.win.kw;
    let ci = k / taps;
    let t = k % taps;
    let oh = c / p.win.ow;
    let ow = c % p.win.ow;
    let ih = i32(oh * p.win.sh + (t / p.win.kw) * p.win.dh) - i32(p.win.pad_top);
    let iw = i32(ow * p.win.sw + (t % p.win.kw) * p.win.dw) - i32(p.win.pad_left);
    if (ih < 0 || iw < 0 || u32(ih) >= p.win.h || u32(iw) >= p.win.w) {
        return 0.0;
    }
    return B[x0 + (ci * p.win.h + u32(ih)) * p.win.w + u32(iw)];
}

// Row k = (co, t), column c = (ih, iw) of mode 4's B: the output gradient of filter co (rows
// p.b.row_stride apart from g0) at the window whose tap t reads input (ih, iw); 0 where none does.
fn grad_at(g0: u32, k: u32, c: u32) -> f32 {
    let taps = p.win.kh * p.win.kw;
    let t = k % taps;
    let th = i32(c / p.win.w + p.win.pad_top) - i32((t / p.win.kw) * p.win.dh);
    let tw = i32(c % p.win.w + p.win.pad_left) - i32((t % p.win.kw) * p.win.dw);
    if (th < 0 || tw < 0 || u32(th) % p.win.sh != 0u || u32(tw) % p.win.sw != 0u) {
        return 0.0;
    }
    let oh = u32(th) / p.win.sh;
    let ow = u32(tw) / p.win.sw;
    if (oh >= p.win.oh || ow >= p.win.ow) {
        return 0.0;
    }
    return B[g0 + (k / taps) * p.b.row_stride + oh * p.win.ow + ow];
}

@compute @workgroup_size(GEMM_TX, GEMM_TY, 1)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    gemm_tile(wid, lid, MODE);
}

// Row q of this thread's block: C row 4 * (ty + (q / 4) * TY) + q % 4; its columns
// 4 * (tx + j * TX) + 0..3 for j = 0, 1. Neighbouring threads hold neighbouring vec4s of the
// staged tiles.
fn block_row(row0: u32, ty: u32, q: u32) -> u32 {
    return row0 + 4u * (ty + (q / 4u) * GEMM_TY) + q % 4u;
}

fn block_col(col0: u32, tx: u32, j: u32) -> u32 {
    return col0 + 4u * (tx + j * GEMM_TX);
}

// Kernel-wide loops only (the loop budget, src/gpu/loops.rs, counts them): C's block is read and
// written element by element without loops.

// C[r, c] of this batch entry, 0 past the matrix.
fn c_at(c0: u32, r: u32, c: u32) -> f32 {
    if (r < p.m && c < p.n) {
        return C[c0 + r * p.c.row_stride + c * p.c.col_stride];
    }
    return 0.0;
}

fn c_vec(c0: u32, r: u32, c: u32) -> vec4<f32> {
    return vec4<f32>(c_at(c0, r, c), c_at(c0, r, c + 1u), c_at(c0, r, c + 2u), c_at(c0, r, c + 3u));
}

// The epilogue of one element on the last K range (`add`: its row's bias; a column's bias from the
// binding), then the store where it lies inside the matrix.
fn store_at(c0: u32, r: u32, c: u32, v: f32, add: f32) {
    if (c >= p.n) {
        return;
    }
    var y = v;
    if (p.k_end >= p.k) {
        // no bias adds nothing, not even to -0
        if ((p.epilogue & 1u) != 0u) {
            y += add;
        }
        if ((p.epilogue & 4u) != 0u) {
            y += bias[c];
        }
        // as the unary ReLU: NaN stays NaN, -0 becomes 0
        if ((p.epilogue & 2u) != 0u && y <= 0.0 && !is_nan(y)) {
            y = 0.0;
        }
    }
    C[c0 + r * p.c.row_stride + c * p.c.col_stride] = y;
}

// Four columns from c of row r through the epilogue (`entry`: the batch entry's bias rows).
fn store_vec(c0: u32, r: u32, c: u32, v: vec4<f32>, entry: u32) {
    if (r >= p.m) {
        return;
    }
    var add = 0.0;
    if (p.k_end >= p.k && (p.epilogue & 1u) != 0u) {
        add = bias[entry * p.bias_stride + r];
    }
    store_at(c0, r, c, v.x, add);
    store_at(c0, r, c + 1u, v.y, add);
    store_at(c0, r, c + 2u, v.z, add);
    store_at(c0, r, c + 3u, v.w, add);
}

// One row of the block: a vec4 from column cols.x, and one from cols.y in a block of two.
fn store_row(c0: u32, r: u32, cols: vec2<u32>, v0: vec4<f32>, v1: vec4<f32>, entry: u32) {
    store_vec(c0, r, cols.x, v0, entry);
    if (BLOCK_VECS == 2u) {
        store_vec(c0, r, cols.y, v1, entry);
    }
}

// The output tile of workgroup wid, operands read as `mode` says (0: strided; 1-4: see the
// top of this file). The block's accumulators are named, not an indexed array, so that every
// compiler keeps them in registers.
fn gemm_tile(wid: vec3<u32>, lid: vec3<u32>, mode: u32) {
    // grid z: (K chunk, batch entry); a product split along K writes each chunk's partial
    // product to a slab of its own, summed in chunk order afterwards
    let chunk = wid.z / p.batches;
    let bidx = wid.z % p.batches + p.batch_start;
    let a0 = base(p.a, bidx);
    let b0 = base(p.b, bidx);
    let c0 = base(p.c, bidx) + chunk * p.slab;
    // this pass's K range, [k_start, k_end) within the chunk
    let kc = chunk * p.k_split;
    let k_lo = kc + p.k_start;
    let k_hi = min(min(kc + p.k_end, kc + p.k_split), p.k);
    let row0 = p.row_start + wid.y * GEMM_BM;
    let col0 = p.col_start + wid.x * GEMM_BN;
    let tid = lid.y * GEMM_TX + lid.x;
    let cols = vec2<u32>(block_col(col0, lid.x, 0u), block_col(col0, lid.x, 1u));

    // acc_q_j: row q, vec4 j; a later K range resumes from C
    var acc00 = vec4<f32>(0.0); var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0); var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0); var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0); var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0); var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0); var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0); var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0); var acc71 = vec4<f32>(0.0);
    if (p.k_start > 0u) {
        // a block's unused vec4s read nothing but stay zero
        let r = array<u32, 8>(block_row(row0, lid.y, 0u), block_row(row0, lid.y, 1u),
            block_row(row0, lid.y, 2u), block_row(row0, lid.y, 3u), block_row(row0, lid.y, 4u),
            block_row(row0, lid.y, 5u), block_row(row0, lid.y, 6u), block_row(row0, lid.y, 7u));
        acc00 = c_vec(c0, r[0], cols.x); acc10 = c_vec(c0, r[1], cols.x);
        acc20 = c_vec(c0, r[2], cols.x); acc30 = c_vec(c0, r[3], cols.x);
        if (BLOCK_VECS == 2u) {
            acc01 = c_vec(c0, r[0], cols.y); acc11 = c_vec(c0, r[1], cols.y);
            acc21 = c_vec(c0, r[2], cols.y); acc31 = c_vec(c0, r[3], cols.y);
        }
        if (BLOCK_ROWS == 8u) {
            acc40 = c_vec(c0, r[4], cols.x); acc50 = c_vec(c0, r[5], cols.x);
            acc60 = c_vec(c0, r[6], cols.x); acc70 = c_vec(c0, r[7], cols.x);
            if (BLOCK_VECS == 2u) {
                acc41 = c_vec(c0, r[4], cols.y); acc51 = c_vec(c0, r[5], cols.y);
                acc61 = c_vec(c0, r[6], cols.y); acc71 = c_vec(c0, r[7], cols.y);
            }
        }
    }

    // the first K tile into registers
    var ra: array<f32, MAX_LOADS>;
    var rb: array<f32, MAX_LOADS>;
    for (var l = 0u; l < A_LOADS; l++) {
        let s = a_slot(tid + l * THREADS);
        ra[l] = a_at(a0, row0 + s.x, k_lo + s.y, k_hi, mode);
    }
    for (var l = 0u; l < B_LOADS; l++) {
        let s = b_slot(tid + l * THREADS);
        rb[l] = b_at(b0, k_lo + s.x, col0 + s.y, k_hi, mode);
    }

    for (var k0 = k_lo; k0 < k_hi; k0 += GEMM_BK) {
        for (var l = 0u; l < A_LOADS; l++) {
            let s = a_slot(tid + l * THREADS);
            As[s.y * A_ROW + s.x / 4u][s.x % 4u] = ra[l];
        }
        for (var l = 0u; l < B_LOADS; l++) {
            let s = b_slot(tid + l * THREADS);
            Bs[s.x * B_ROW + s.y / 4u][s.y % 4u] = rb[l];
        }
        workgroupBarrier();
        // the next K tile's loads are in flight while this one is multiplied
        let k1 = k0 + GEMM_BK;
        if (k1 < k_hi) {
            for (var l = 0u; l < A_LOADS; l++) {
                let s = a_slot(tid + l * THREADS);
                ra[l] = a_at(a0, row0 + s.x, k1 + s.y, k_hi, mode);
            }
            for (var l = 0u; l < B_LOADS; l++) {
                let s = b_slot(tid + l * THREADS);
                rb[l] = b_at(b0, k1 + s.x, col0 + s.y, k_hi, mode);
            }
        }
        for (var kk = 0u; kk < GEMM_BK; kk++) {
            let b0v = Bs[kk * B_ROW + lid.x];
            let a0v = As[kk * A_ROW + lid.y];
            // the second vec4 of each, read only by a block that has it
            var b1v = vec4<f32>(0.0);
            var a1v = vec4<f32>(0.0);
            if (BLOCK_VECS == 2u) {
                b1v = Bs[kk * B_ROW + lid.x + GEMM_TX];
            }
            if (BLOCK_ROWS == 8u) {
                a1v = As[kk * A_ROW + lid.y + GEMM_TY];
            }
            acc00 = fma(vec4<f32>(a0v.x), b0v, acc00);
            acc10 = fma(vec4<f32>(a0v.y), b0v, acc10);
            acc20 = fma(vec4<f32>(a0v.z), b0v, acc20);
            acc30 = fma(vec4<f32>(a0v.w), b0v, acc30);
            if (BLOCK_VECS == 2u) {
                acc01 = fma(vec4<f32>(a0v.x), b1v, acc01);
                acc11 = fma(vec4<f32>(a0v.y), b1v, acc11);
                acc21 = fma(vec4<f32>(a0v.z), b1v, acc21);
                acc31 = fma(vec4<f32>(a0v.w), b1v, acc31);
            }
            if (BLOCK_ROWS == 8u) {
                acc40 = fma(vec4<f32>(a1v.x), b0v, acc40);
                acc50 = fma(vec4<f32>(a1v.y), b0v, acc50);
                acc60 = fma(vec4<f32>(a1v.z), b0v, acc60);
                acc70 = fma(vec4<f32>(a1v.w), b0v, acc70);
            }
            if (BLOCK_ROWS == 8u && BLOCK_VECS == 2u) {
                acc41 = fma(vec4<f32>(a1v.x), b1v, acc41);
                acc51 = fma(vec4<f32>(a1v.y), b1v, acc51);
                acc61 = fma(vec4<f32>(a1v.z), b1v, acc61);
                acc71 = fma(vec4<f32>(a1v.w), b1v, acc71);
            }
        }
        workgroupBarrier();
    }

    let entry = bidx % p.batch_inner;
    store_row(c0, block_row(row0, lid.y, 0u), cols, acc00, acc01, entry);
    store_row(c0, block_row(row0, lid.y, 1u), cols, acc10, acc11, entry);
    store_row(c0, block_row(row0, lid.y, 2u), cols, acc20, acc21, entry);
    store_row(c0, block_row(row0, lid.y, 3u), cols, acc30, acc31, entry);
    if (BLOCK_ROWS == 8u) {
        store_row(c0, block_row(row0, lid.y, 4u), cols, acc40, acc41, entry);
        store_row(c0, block_row(row0, lid.y, 5u), cols, acc50, acc51, entry);
        store_row(c0, block_row(row0, lid.y, 6u), cols, acc60, acc61, entry);
        store_row(c0, block_row(row0, lid.y, 7u), cols, acc70, acc71, entry);
    }
}
