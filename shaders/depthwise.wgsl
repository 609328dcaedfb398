// Depthwise convolution (groups = c, mult filters per channel) without im2col, forward and both
// gradients. The gathers resume, from their second pass on (rows r0..r1), from what the last
// pass wrote.

// Forward: src = x (n, c, h, w), aux = w (c*mult, 1, kh, kw), dst = (n, c*mult, oh, ow).
@compute @workgroup_size(WG)
fn dw_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    // o.plane = (n, dd); channel dd reads input channel dd / mult
    let dd = o.plane % (p.c * p.mult);
    let plane = (o.plane / (p.c * p.mult) * p.c + dd / p.mult) * p.h * p.w;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var kh = p.r0; kh < p.r1; kh++) {
        let ih = tap_input(o.y, kh, p.sh, p.dh, p.pad_top, p.h);
        for (var kw = 0u; kw < p.kw && ih >= 0; kw++) {
            let iw = tap_input(o.x, kw, p.sw, p.dw, p.pad_left, p.w);
            if (iw >= 0) {
                acc += src[plane + u32(ih) * p.w + u32(iw)] * aux[(dd * p.kh + kh) * p.kw + kw];
            }
        }
    }
    dst[i] = acc;
}

// Input gradient, a gather: src = grad (n, c*mult, oh, ow), aux = w, dst = (n, c, h, w); each
// element sums over (m, kh, kw) in that order.
@compute @workgroup_size(WG)
fn dw_bwd_input(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    // at.plane = (n, c); channel c feeds output channels c*mult .. c*mult + mult
    let c = at.plane % p.c;
    let n = at.plane / p.c;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    // rows are (m, kh) pairs in that order
    for (var r = p.r0; r < p.r1; r++) {
        let kh = r % p.kh;
        let dd = c * p.mult + r / p.kh;
        let go = (n * p.c * p.mult + dd) * p.oh * p.ow;
        let oh = tap_source(at.y, kh, p.pad_top, p.dh, p.sh, p.oh);
        for (var kw = 0u; kw < p.kw && oh >= 0; kw++) {
            let ow = tap_source(at.x, kw, p.pad_left, p.dw, p.sw, p.ow);
            if (ow >= 0) {
                acc += src[go + u32(oh) * p.ow + u32(ow)] * aux[(dd * p.kh + kh) * p.kw + kw];
            }
        }
    }
    dst[i] = acc;
}

// Weight gradient: one workgroup per weight (dd, kh, kw) and chunk of r0 windows, threads
// striding over the chunk's (n, oh, ow), then a fixed tree. src = x, aux = grad
// (n, c*mult, oh, ow), dst = (c*mult*kh*kw, r1 chunks), summed over the chunks by the host.
@compute @workgroup_size(WG)
fn dw_bwd_weight(th: Thread) {
    let g = group_index(th);
    let valid = g < p.total;
    let d = p.c * p.mult;
    var acc = 0.0;
    if (valid) {
        let o = g / p.r1;
        let ch = g % p.r1;
        let kw = o % p.kw;
        let kh = (o / p.kw) % p.kh;
        let dd = o / (p.kw * p.kh);
        let end = min(p.n * p.oh * p.ow, (ch + 1u) * p.r0);
        for (var t = ch * p.r0 + th.lid; t < end; t += WG) {
            let w = pos_in(t, p.oh, p.ow);
            let ih = tap_input(w.y, kh, p.sh, p.dh, p.pad_top, p.h);
            let iw = tap_input(w.x, kw, p.sw, p.dw, p.pad_left, p.w);
            if (ih >= 0 && iw >= 0) {
                let xv = src[((w.plane * p.c + dd / p.mult) * p.h + u32(ih)) * p.w + u32(iw)];
                acc += xv * aux[((w.plane * d + dd) * p.oh + w.y) * p.ow + w.x];
            }
        }
    }
    let sum = workgroup_sum(th.lid, acc);
    if (valid && th.lid == 0u) {
        dst[g] = sum;
    }
}
