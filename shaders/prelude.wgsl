// Prepended to every module by the loader (src/gpu/runtime/kernel.rs), after what it generates: the
// opcode constants (from the tables in src/backend/opcodes.rs) and the module's uniform
// structs (from their Rust declarations, src/gpu/runtime/uniforms.rs). The sizes are pipeline constants
// that Rust sets (`kernel::constants`); they have no defaults, so a pipeline without them fails
// to build.

// Threads per workgroup of every one-dimensional kernel.
override WG: u32;
// GEMM tiling (src/gpu/runtime/tiles.rs): threads per workgroup along columns and rows, the K depth
// of the tiles staged in workgroup memory, and each thread's block of C: BLOCK_ROWS rows (8 or 4)
// by BLOCK_VECS vec4s (2 or 1).
override GEMM_TX: u32;
override GEMM_TY: u32;
override GEMM_BK: u32;
override BLOCK_ROWS: u32;
override BLOCK_VECS: u32;

// Where an invocation of a one-dimensional kernel is: every such entry point takes one.
struct Thread {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// Flat index of a workgroup in a 1-, 2- or 3-d grid (the host spills x into y and z).
fn group_index(t: Thread) -> u32 {
    return (t.wid.z * t.nwg.y + t.wid.y) * t.nwg.x + t.wid.x;
}

// Flat index of a thread in a grid of WG-thread workgroups.
fn thread_index(t: Thread) -> u32 {
    return group_index(t) * WG + t.lid;
}

// Where flat index i of an (planes, h, w) array is: x fastest.
struct Pos {
    plane: u32,
    y: u32,
    x: u32,
}

fn pos_in(i: u32, h: u32, w: u32) -> Pos {
    return Pos(i / (w * h), (i / w) % h, i % w);
}

// NaN test on the bits: drivers may fold float comparisons with NaN (GLSL promises nothing).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// The quiet NaN and infinity, bitcast at run time: WGSL makes a NaN or infinity from a constant
// expression an error (browsers refuse the module).
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;

fn nan() -> f32 {
    return bitcast<f32>(NAN_BITS);
}

fn inf() -> f32 {
    return bitcast<f32>(INF_BITS);
}

// Input position that output o's tap k reads, or -1 in the padding:
// o * stride + k * dilation - pad.
fn tap_input(o: u32, k: u32, stride: u32, dil: u32, pad: u32, len: u32) -> i32 {
    let t = i32(o * stride + k * dil) - i32(pad);
    return select(-1, t, t >= 0 && t < i32(len));
}

// Output position whose tap k reads input i, or -1: o * stride + k * dilation - pad == i.
fn tap_source(i: u32, k: u32, pad: u32, dil: u32, stride: u32, out: u32) -> i32 {
    let t = i32(i + pad) - i32(k * dil);
    if (t < 0 || u32(t) % stride != 0u) {
        return -1;
    }
    let o = u32(t) / stride;
    return select(-1, i32(o), o < out);
}

var<workgroup> tree: array<f32, WG>;

// The sum of every thread's v in the workgroup by a fixed tree (the same order on every run),
// returned to every thread. Call it once per entry point, from uniform control flow.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            tree[lid] += tree[lid + s];
        }
        workgroupBarrier();
    }
    return tree[0];
}
