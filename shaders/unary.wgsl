// Elementwise functions of one tensor; opcodes mirror `UnaryOp::code` in src/backend.rs.

struct Params {
    n: u32,
    op: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u;

// tanh without the overflow of (e^2x - 1) / (e^2x + 1) for large |x|.
fn safe_tanh(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, v >= 0.0);
}

// pow that agrees with powf for negative bases and integer exponents.
fn signed_pow(v: f32, e: f32) -> f32 {
    if (v >= 0.0) {
        return pow(v, e);
    }
    if (e != floor(e)) {
        return bitcast<f32>(0x7fc00000u);
    }
    let m = pow(-v, e);
    let odd = abs(e - 2.0 * floor(e * 0.5)) == 1.0;
    return select(m, -m, odd);
}

fn apply(v: f32) -> f32 {
    switch p.op {
        case 0u: { return -v; }
        case 1u: { return v * v; }
        case 2u: { return sqrt(v); }
        case 3u: { return exp(v); }
        case 4u: { return log(v); }
        case 5u: { return select(0.0, v, v > 0.0); }
        case 6u: { return select(p.alpha * v, v, v > 0.0); }
        case 7u: { return 1.0 / (1.0 + exp(-v)); }
        case 8u: { return safe_tanh(v); }
        case 9u: { return v + p.alpha; }
        case 10u: { return v * p.alpha; }
        case 11u: { return p.alpha / v; }
        case 12u: { return signed_pow(v, p.alpha); }
        default: { return p.alpha; }
    }
}

@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    y[i] = apply(x[i]);
}

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    y[i] = p.alpha;
}
