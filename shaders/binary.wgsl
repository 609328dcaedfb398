// Elementwise functions of two tensors with broadcasting. The BINARY_* opcodes are generated from
// `BINARY_OPCODES` in src/backend/opcodes.rs; an opcode without a case gives NaN.

fn apply(u: f32, v: f32) -> f32 {
    switch p.op {
        case BINARY_ADD: { return u + v; }
        case BINARY_SUB: { return u - v; }
        case BINARY_MUL: { return u * v; }
        case BINARY_DIV: { return u / v; }
        case BINARY_RELU_BACKWARD: { return select(v, 0.0, u <= 0.0 && !is_nan(u)); }
        case BINARY_LEAKY_RELU_BACKWARD: { return select(v * p.alpha, v, u > 0.0); }
        case BINARY_SIGMOID_BACKWARD: { return v * u * (1.0 - u); }
        case BINARY_TANH_BACKWARD: { return v * (1.0 - u * u); }
        // NaN checked apart: a compiler may assume none when comparing
        case BINARY_EQ: { return select(0.0, 1.0, u == v && !is_nan(u)); }
        case BINARY_MAX_HIT: { return select(0.0, 1.0, (u == v && !is_nan(u)) || (is_nan(u) && is_nan(v))); }
        default: { return nan(); }
    }
}

@compute @workgroup_size(WG)
fn binary(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n) { return; }
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

// The plain case as vec4s (n and both operands whole vec4s): four elements a thread.
@compute @workgroup_size(WG)
fn binary4(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n / 4u) { return; }
    let u = a4[i];
    let v = b4[i];
    y4[i] = vec4(apply(u.x, v.x), apply(u.y, v.y), apply(u.z, v.z), apply(u.w, v.w));
}
