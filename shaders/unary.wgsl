// Elementwise functions of one tensor. The UNARY_* opcodes are generated from `UNARY_OPCODES`
// in src/backend/opcodes.rs; an opcode without a case gives NaN.

// tanh without the overflow of (e^2x - 1) / (e^2x + 1) for large |x|, and without its
// cancellation for tiny |x| (a Taylor polynomial there).
fn safe_tanh(v: f32) -> f32 {
    let a = abs(v);
    if (a < 0.0625) {
        let v2 = v * v;
        return v * (1.0 - v2 * (1.0 / 3.0 - v2 * (2.0 / 15.0)));
    }
    let e = exp(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, v >= 0.0);
}

// pow that agrees with powf: x^0 = 1, 0^e = 0 or inf, negative bases with integer exponents.
// (WGSL's pow is undefined for x <= 0.)
fn signed_pow(v: f32, e: f32) -> f32 {
    if (e == 0.0) {
        return 1.0;
    }
    if (v == 0.0) {
        return select(inf(), 0.0, e > 0.0);
    }
    if (v > 0.0) {
        return pow(v, e);
    }
    if (e != floor(e)) {
        return nan();
    }
    let m = pow(-v, e);
    let odd = abs(e - 2.0 * floor(e * 0.5)) == 1.0;
    return select(m, -m, odd);
}

// The error function, as `erf` in src/backend/opcodes.rs: a rational approximation on [-4, 4].
fn erf(v: f32) -> f32 {
    if (is_nan(v)) {
        return v;
    }
    let x = clamp(v, -4.0, 4.0);
    let x2 = x * x;
    var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08;
    p = x2 * p + -2.10102402082508e-06;
    p = x2 * p + -5.69250639462346e-05;
    p = x2 * p + -7.34990630326855e-04;
    p = x2 * p + -2.95459980854025e-03;
    p = x2 * p + -1.60960333262415e-02;
    p = x * p;
    var q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04;
    q = x2 * q + -1.68282697438203e-03;
    q = x2 * q + -7.37332916720468e-03;
    q = x2 * q + -1.42647390514189e-02;
    return p / q;
}

fn apply(v: f32) -> f32 {
    switch p.op {
        case UNARY_NEG: { return -v; }
        case UNARY_SQUARE: { return v * v; }
        case UNARY_SQRT: { return sqrt(v); }
        case UNARY_EXP: { return exp(v); }
        case UNARY_LOG: { return log(v); }
        case UNARY_RELU: { return select(v, 0.0, v <= 0.0 && !is_nan(v)); }
        case UNARY_LEAKY_RELU: { return select(p.alpha * v, v, v > 0.0); }
        case UNARY_SIGMOID: { return 1.0 / (1.0 + exp(-v)); }
        case UNARY_TANH: { return safe_tanh(v); }
        case UNARY_ADD_SCALAR: { return v + p.alpha; }
        case UNARY_MUL_SCALAR: { return v * p.alpha; }
        case UNARY_POW_SCALAR: { return signed_pow(v, p.alpha); }
        case UNARY_ERF: { return erf(v); }
        default: { return nan(); }
    }
}

@compute @workgroup_size(WG)
fn unary(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n) { return; }
    y[i] = apply(x[i]);
}

@compute @workgroup_size(WG)
fn fill(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n) { return; }
    y[i] = p.alpha;
}
