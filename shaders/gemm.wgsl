// Strided batched matrix product C[b] = A[b] (m, k) x B[b] (k, n).
// Each operand is addressed through its own strides (src/backend/mod.rs `MatLayout`), so transposed
// operands, grouped convolution and per-image products need no copies.
// Implicit-GEMM convolution, the im2col gather inside the tile loads so no column matrix exists
// in memory, over an input x (n, c, h, w) with the window p.win:
// - mode 1 (conv_fwd): B is x's columns; batch entry = (image, group), k = (c, kh, kw) within
//   the group, column = (oh, ow).
// - mode 2 (conv_wgrad): batch entry = group; A is the output gradient (n, d, oh, ow) read with
//   images side by side (k = (image, oh, ow), p.a_image apart), B the transposed columns
//   (column = (c, kh, kw), images p.b_image apart).
// The operands' batch strides (p.a, p.b) locate each entry's first filter and channel.
// A GEMM_TILE^2 output tile per workgroup of T x T threads (T = GEMM_TILE / 4), each thread
// computing a 4x4 block from workgroup-memory tiles of depth GEMM_BK (pipeline constants).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// threads per tile edge, and the tile elements each thread stages per operand
override T: u32 = GEMM_TILE / 4u;
override LOADS: u32 = GEMM_BK * GEMM_TILE / (T * T);

var<workgroup> As: array<f32, GEMM_BK * GEMM_TILE>; // [GEMM_BK][GEMM_TILE]
var<workgroup> Bs: array<f32, GEMM_BK * GEMM_TILE>; // [GEMM_BK][GEMM_TILE]

// Row r of this thread's block of C as the previous K range left it (zeros for the first).
fn c_row(c0: u32, r: u32, col: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (p.k_start == 0u || r >= p.m) {
        return v;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = col + j * T;
        if (c < p.n) {
            v[j] = C[c0 + r * p.c.row_stride + c * p.c.col_stride];
        }
    }
    return v;
}

fn base(mat: Mat, b: u32) -> u32 {
    return mat.offset + (b / p.batch_inner) * mat.batch_outer + (b % p.batch_inner) * mat.batch_inner;
}

// Slot (j, k) of a GEMM_BK x GEMM_TILE staging tile that load e of a workgroup fills:
// neighbouring loads take neighbouring k when the operand is contiguous in k, else neighbouring j.
fn tile_slot(e: u32, k_contiguous: bool) -> vec2<u32> {
    if (k_contiguous) {
        return vec2<u32>(e / GEMM_BK, e % GEMM_BK);
    }
    return vec2<u32>(e % GEMM_TILE, e / GEMM_TILE);
}

// A[r, k] and B[k, c] of this batch entry, 0 outside the matrix or past this pass's K range.
fn a_at(a0: u32, r: u32, k: u32, mode: u32) -> f32 {
    if (r >= p.m || k >= p.k_end) { return 0.0; }
    if (mode == 2u) {
        let ohw = p.win.oh * p.win.ow;
        return A[a0 + (k / ohw) * p.a_image + r * p.a.row_stride + k % ohw];
    }
    return A[a0 + r * p.a.row_stride + k * p.a.col_stride];
}

fn b_at(b0: u32, k: u32, c: u32, mode: u32) -> f32 {
    if (c >= p.n || k >= p.k_end) { return 0.0; }
    if (mode == 1u) {
        return x_at(b0, k, c);
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

// One entry point per operand mode, each calling the tile loop with its mode as a constant:
// the driver's compiler inlines it and drops the other modes' branches from the tile loads.
@compute @workgroup_size(T, T, 1)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    gemm_tile(wid, lid, 0u);
}

@compute @workgroup_size(T, T, 1)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    gemm_tile(wid, lid, 1u);
}

@compute @workgroup_size(T, T, 1)
fn conv_wgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    gemm_tile(wid, lid, 2u);
}

// The output tile of workgroup wid, operands read as `mode` says (0: strided; 1, 2: see the
// top of this file).
fn gemm_tile(wid: vec3<u32>, lid: vec3<u32>, mode: u32) {
    let bidx = wid.z + p.batch_start;
    let a0 = base(p.a, bidx);
    let b0 = base(p.b, bidx);
    let c0 = base(p.c, bidx);
    let row0 = p.row_start + wid.y * GEMM_TILE;
    let col0 = p.col_start + wid.x * GEMM_TILE;
    let tid = lid.y * T + lid.x;

    let col = col0 + lid.x;
    var acc0 = c_row(c0, row0 + lid.y, col);
    var acc1 = c_row(c0, row0 + lid.y + T, col);
    var acc2 = c_row(c0, row0 + lid.y + 2u * T, col);
    var acc3 = c_row(c0, row0 + lid.y + 3u * T, col);

    for (var k0 = p.k_start; k0 < p.k_end; k0 += GEMM_BK) {
        // GEMM_BK * GEMM_TILE elements of each tile, LOADS per thread (a uniform branch picks
        // the slot order that keeps neighbouring threads on neighbouring addresses).
        for (var l = 0u; l < LOADS; l++) {
            let e = tid + l * T * T;
            let at = tile_slot(e, p.a.col_stride == 1u);
            As[at.y * GEMM_TILE + at.x] = a_at(a0, row0 + at.x, k0 + at.y, mode);
            let bt = tile_slot(e, p.b.col_stride != 1u);
            Bs[bt.y * GEMM_TILE + bt.x] = b_at(b0, k0 + bt.y, col0 + bt.x, mode);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GEMM_BK; kk++) {
            let ob = kk * GEMM_TILE + lid.x;
            let bvec = vec4<f32>(Bs[ob], Bs[ob + T], Bs[ob + 2u * T], Bs[ob + 3u * T]);
            let oa = kk * GEMM_TILE + lid.y;
            acc0 = fma(vec4<f32>(As[oa]), bvec, acc0);
            acc1 = fma(vec4<f32>(As[oa + T]), bvec, acc1);
            acc2 = fma(vec4<f32>(As[oa + 2u * T]), bvec, acc2);
            acc3 = fma(vec4<f32>(As[oa + 3u * T]), bvec, acc3);
        }
        workgroupBarrier();
    }

    // Thread (ty, tx) owns rows ty + 16i and columns tx + 16j: neighbouring threads write
    // neighbouring columns.
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + i * T;
        if (r >= p.m) {
            continue;
        }
        let v = accs[i];
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + j * T;
            if (c < p.n) {
                C[c0 + r * p.c.row_stride + c * p.c.col_stride] = v[j];
            }
        }
    }
}
