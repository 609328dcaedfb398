// F.interpolate: nearest (PyTorch's legacy floor rule) and bilinear, forward and backward.
// Backward passes are gathers over the outputs that read each input, found by binary search
// (source indices are monotone in the output index). Gathers that run in several passes (rows
// r0..r1 of r_end) resume from what the last pass wrote.

fn nearest_src(o: u32, input: u32, scale: f32) -> u32 {
    return min(u32(floor(f32(o) * scale)), input - 1u);
}

// (i0, i1) and lambda1 of bilinear interpolation for output o.
struct Lerp {
    i0: u32,
    i1: u32,
    l0: f32,
    l1: f32,
}

fn bilinear_src(o: u32, input: u32, scale: f32) -> Lerp {
    var s: f32;
    if (p.align_corners == 1u) {
        s = scale * f32(o);
    } else {
        s = max(scale * (f32(o) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(s), input - 1u);
    let i1 = select(i0, i0 + 1u, i0 < input - 1u);
    let l1 = s - f32(i0);
    return Lerp(i0, i1, 1.0 - l1, l1);
}

@compute @workgroup_size(WG)
fn nearest_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let sh = nearest_src(o.y, p.h, p.scale_h);
    let sw = nearest_src(o.x, p.w, p.scale_w);
    dst[i] = src[(o.plane * p.h + sh) * p.w + sw];
}

// First output o in [0, out) whose first source index (nearest, or bilinear's i0) is >= goal.
fn first_reader(goal: u32, input: u32, out: u32, scale: f32, bilinear: bool) -> u32 {
    var lo = 0u;
    var hi = out;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let near = nearest_src(mid, input, scale);
        let s = select(near, bilinear_src(mid, input, scale).i0, bilinear);
        if (s >= goal) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    return lo;
}

@compute @workgroup_size(WG)
fn nearest_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let a0 = first_reader(at.y, p.h, p.oh, p.scale_h, false);
    let a1 = first_reader(at.y + 1u, p.h, p.oh, p.scale_h, false);
    let b0 = first_reader(at.x, p.w, p.ow, p.scale_w, false);
    let b1 = first_reader(at.x + 1u, p.w, p.ow, p.scale_w, false);
    let obase = at.plane * p.oh * p.ow;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var o = min(a0 + p.r0, a1); o < min(a0 + p.r1, a1); o++) {
        for (var q = b0; q < b1; q++) {
            acc += src[obase + o * p.ow + q];
        }
    }
    dst[i] = acc;
}

@compute @workgroup_size(WG)
fn bilinear_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let base = o.plane * p.h * p.w;
    let y = bilinear_src(o.y, p.h, p.scale_h);
    let x = bilinear_src(o.x, p.w, p.scale_w);
    dst[i] = y.l0 * (x.l0 * src[base + y.i0 * p.w + x.i0] + x.l1 * src[base + y.i0 * p.w + x.i1])
           + y.l1 * (x.l0 * src[base + y.i1 * p.w + x.i0] + x.l1 * src[base + y.i1 * p.w + x.i1]);
}

// Weight with which output o reads input i along one axis.
fn bilinear_weight(i: u32, o: u32, input: u32, scale: f32) -> f32 {
    let l = bilinear_src(o, input, scale);
    return select(0.0, l.l0, l.i0 == i) + select(0.0, l.l1, l.i1 == i);
}

@compute @workgroup_size(WG)
fn bilinear_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let a0 = first_reader(max(at.y, 1u) - 1u, p.h, p.oh, p.scale_h, true);
    let a1 = first_reader(at.y + 1u, p.h, p.oh, p.scale_h, true);
    let b0 = first_reader(max(at.x, 1u) - 1u, p.w, p.ow, p.scale_w, true);
    let b1 = first_reader(at.x + 1u, p.w, p.ow, p.scale_w, true);
    let obase = at.plane * p.oh * p.ow;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var o = min(a0 + p.r0, a1); o < min(a0 + p.r1, a1); o++) {
        let wh = bilinear_weight(at.y, o, p.h, p.scale_h);
        if (wh == 0.0) {
            continue;
        }
        for (var q = b0; q < b1; q++) {
            acc += wh * bilinear_weight(at.x, q, p.w, p.scale_w) * src[obase + o * p.ow + q];
        }
    }
    dst[i] = acc;
}
