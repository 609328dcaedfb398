// im2col and its adjoint col2im for 2-D convolution. Cols are (c*kh*kw, n*oh*ow): row (c, kh, kw)
// holds that tap of every window, windows in (n, oh, ow) order, so neighbouring invocations touch
// neighbouring addresses. col2im is a gather: every input element sums, in (kh, kw) order, the
// entries that read it, so no atomics are needed and results are bit-reproducible. Kernels whose
// window loop runs in several passes (rows r0..r1 of r_end) resume from what the last pass wrote.

@compute @workgroup_size(WG)
fn im2col(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let windows = p.n * p.oh * p.ow;
    let t = i % windows;
    let row = i / windows;
    let kw = row % p.kw;
    let kh = (row / p.kw) % p.kh;
    let c = row / (p.kw * p.kh);
    let o = pos_in(t, p.oh, p.ow);
    let ih = tap_input(o.y, kh, p.sh, p.dh, p.pad_top, p.h);
    let iw = tap_input(o.x, kw, p.sw, p.dw, p.pad_left, p.w);
    var v = 0.0;
    if (ih >= 0 && iw >= 0) {
        v = src[((o.plane * p.c + c) * p.h + u32(ih)) * p.w + u32(iw)];
    }
    dst[i] = v;
}

@compute @workgroup_size(WG)
fn col2im(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let c = at.plane % p.c;
    let n = at.plane / p.c;
    let windows = p.n * p.oh * p.ow;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var kh = p.r0; kh < p.r1; kh++) {
        let oh = tap_source(at.y, kh, p.pad_top, p.dh, p.sh, p.oh);
        for (var kw = 0u; kw < p.kw && oh >= 0; kw++) {
            let ow = tap_source(at.x, kw, p.pad_left, p.dw, p.sw, p.ow);
            if (ow >= 0) {
                let t = (n * p.oh + u32(oh)) * p.ow + u32(ow);
                acc += src[((c * p.kh + kh) * p.kw + kw) * windows + t];
            }
        }
    }
    dst[i] = acc;
}
