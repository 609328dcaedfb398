// Elementwise functions of two tensors with broadcasting; opcodes mirror `BinaryOp::code`.

struct Params {
    n: u32,
    op: u32,
    alpha: f32,
    rank: u32,
    plain: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
    // up to 8 dims, outermost first; strides are 0 on broadcast dims
    dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u;

// NaN test on the bits: drivers may fold float comparisons with NaN (GLSL promises nothing).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}


fn apply(u: f32, v: f32) -> f32 {
    switch p.op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return select(v, 0.0, u <= 0.0 && !is_nan(u)); }
        case 5u: { return select(v * p.alpha, v, u > 0.0); }
        case 6u: { return v * u * (1.0 - u); }
        default: { return v * (1.0 - u * u); }
    }
}

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    if (p.plain == 1u) {
        y[i] = apply(a[i], b[i]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let dim = p.dims[d / 4][d % 4];
        let idx = rem % dim;
        rem = rem / dim;
        ia += idx * p.a_strides[d / 4][d % 4];
        ib += idx * p.b_strides[d / 4][d % 4];
    }
    y[i] = apply(a[ia], b[ib]);
}
