// Batch norm's per-channel primitives over (n, c, hw), as src/cpu/channel.rs: channel_dot, a
// workgroup per channel whose threads stride over the channel's n*hw elements before a fixed
// tree adds them (passes over the elements resume from what the last one wrote), and
// channel_combine, a thread per element.

// out[ch] = sum over the channel's elements of (x - a[ch]) * (v or x - a[ch]); this pass adds
// element rows [r0, r1) of WG elements each.
@compute @workgroup_size(WG)
fn channel_dot(th: Thread) {
    let ch = group_index(th);
    let valid = ch < p.c;
    let count = p.n * p.hw;
    let has_v = (p.flags & 1u) != 0u;
    var acc = 0.0;
    if (valid) {
        let m = a[ch];
        for (var r = p.r0; r < p.r1; r++) {
            let e = r * WG + th.lid;
            if (e < count) {
                let at = ((e / p.hw) * p.c + ch) * p.hw + e % p.hw;
                let d = x[at] - m;
                acc += d * select(d, v[at], has_v);
            }
        }
    }
    let sum = workgroup_sum(th.lid, acc);
    if (valid && th.lid == 0u) {
        out[ch] = select(0.0, out[ch], p.r0 > 0u) + sum;
    }
}

// out = a[ch] * x + b[ch] * v + k[ch] (flag 1); else a[ch] * x + k[ch], then + v (flag 2: a
// residual) and a ReLU (flag 4) as the unary op's: NaN stays NaN, -0 becomes 0.
@compute @workgroup_size(WG)
fn channel_combine(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let ch = (i / p.hw) % p.c;
    if ((p.flags & 1u) != 0u) {
        out[i] = a[ch] * x[i] + b[ch] * v[i] + k[ch];
        return;
    }
    var y = a[ch] * x[i] + k[ch];
    if ((p.flags & 2u) != 0u) {
        y = y + v[i];
    }
    if ((p.flags & 4u) != 0u && y <= 0.0 && !is_nan(y)) {
        y = 0.0;
    }
    out[i] = y;
}
