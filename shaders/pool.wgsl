// Max, average, adaptive average and adaptive max pooling, forward and backward. Backward passes are gathers:
// each input element sums the gradients of the windows that hold it, in a fixed order. Window
// loops that run in several passes (rows r0..r1 of r_end) resume from what the last pass wrote.

@group(0) @binding(0) var<uniform> p: WindowParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// max pooling's flat h*w argmax per output (as f32): written forward, read backward
@group(0) @binding(3) var<storage, read_write> aux: array<f32>;

// Whether tap value v replaces the running maximum (best, at arg; arg < 0 before the first tap):
// as PyTorch, NaN propagates and ties keep the first maximum.
fn takes_max(v: f32, best: f32, arg: i32) -> bool {
    return v > best || is_nan(v) || arg < 0;
}

@compute @workgroup_size(WG)
fn max_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    var best = bitcast<f32>(0xff800000u); // -inf
    var arg = -1;
    if (p.r0 > 0u) {
        best = dst[i];
        arg = i32(aux[i]);
    }
    for (var kh = p.r0; kh < p.r1; kh++) {
        let ih = tap_input(o.y, kh, p.sh, p.dh, p.pad_top, p.h);
        for (var kw = 0u; kw < p.kw && ih >= 0; kw++) {
            let iw = tap_input(o.x, kw, p.sw, p.dw, p.pad_left, p.w);
            if (iw >= 0) {
                let idx = u32(ih) * p.w + u32(iw);
                let v = src[plane + idx];
                if (takes_max(v, best, arg)) {
                    best = v;
                    arg = i32(idx);
                }
            }
        }
    }
    dst[i] = best;
    aux[i] = f32(arg);
}

@compute @workgroup_size(WG)
fn max_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let me = f32(at.y * p.w + at.x);
    let obase = at.plane * p.oh * p.ow;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var kh = p.r0; kh < p.r1; kh++) {
        let oh = tap_source(at.y, kh, p.pad_top, p.dh, p.sh, p.oh);
        for (var kw = 0u; kw < p.kw && oh >= 0; kw++) {
            let ow = tap_source(at.x, kw, p.pad_left, p.dw, p.sw, p.ow);
            let o = obase + u32(oh) * p.ow + u32(ow);
            if (ow >= 0 && aux[o] == me) {
                acc += src[o];
            }
        }
    }
    dst[i] = acc;
}

struct AvgWindow {
    h0: u32,
    h1: u32,
    w0: u32,
    w1: u32,
    divisor: f32,
}

// PyTorch's avg_pool2d window and divisor (see `avg_window` in src/cpu/pool.rs).
fn avg_window(oh: u32, ow: u32) -> AvgWindow {
    let hs = i32(oh * p.sh) - i32(p.pad_top);
    let ws = i32(ow * p.sw) - i32(p.pad_left);
    let he = min(hs + i32(p.kh), i32(p.h + p.pad_top));
    let we = min(ws + i32(p.kw), i32(p.w + p.pad_left));
    let pool_size = (he - hs) * (we - ws);
    let h0 = u32(max(hs, 0));
    let w0 = u32(max(ws, 0));
    let h1 = max(u32(max(min(he, i32(p.h)), 0)), h0);
    let w1 = max(u32(max(min(we, i32(p.w)), 0)), w0);
    var divisor = f32((h1 - h0) * (w1 - w0));
    if ((p.flags & 2u) != 0u) {
        divisor = f32(p.divisor);
    } else if ((p.flags & 1u) != 0u) {
        divisor = f32(pool_size);
    }
    return AvgWindow(h0, h1, w0, w1, divisor);
}

@compute @workgroup_size(WG)
fn avg_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    let win = avg_window(o.y, o.x);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var ih = min(win.h0 + p.r0, win.h1); ih < min(win.h0 + p.r1, win.h1); ih++) {
        for (var iw = win.w0; iw < win.w1; iw++) {
            acc += src[plane + ih * p.w + iw];
        }
    }
    dst[i] = select(acc, acc / win.divisor, p.r1 == p.r_end);
}

// Outputs [lo, hi) whose window of size k may cover input i.
fn covering(i: u32, k: u32, stride: u32, pad: u32, out: u32) -> vec2<u32> {
    let ip = i + pad;
    var lo = 0u;
    if (ip + 1u > k) {
        lo = (ip + 1u - k + stride - 1u) / stride;
    }
    let hi = min(ip / stride + 1u, out);
    return vec2<u32>(lo, max(hi, lo));
}

@compute @workgroup_size(WG)
fn avg_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let obase = at.plane * p.oh * p.ow;
    let rh = covering(at.y, p.kh, p.sh, p.pad_top, p.oh);
    let rw = covering(at.x, p.kw, p.sw, p.pad_left, p.ow);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var oh = min(rh.x + p.r0, rh.y); oh < min(rh.x + p.r1, rh.y); oh++) {
        for (var ow = rw.x; ow < rw.y; ow++) {
            let win = avg_window(oh, ow);
            if (at.y >= win.h0 && at.y < win.h1 && at.x >= win.w0 && at.x < win.w1) {
                acc += src[obase + oh * p.ow + ow] / win.divisor;
            }
        }
    }
    dst[i] = acc;
}

fn adaptive_start(o: u32, input: u32, out: u32) -> u32 {
    return (o * input) / out;
}

fn adaptive_end(o: u32, input: u32, out: u32) -> u32 {
    return ((o + 1u) * input + out - 1u) / out;
}

@compute @workgroup_size(WG)
fn adaptive_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    let h0 = adaptive_start(o.y, p.h, p.oh);
    let h1 = adaptive_end(o.y, p.h, p.oh);
    let w0 = adaptive_start(o.x, p.w, p.ow);
    let w1 = adaptive_end(o.x, p.w, p.ow);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var ih = min(h0 + p.r0, h1); ih < min(h0 + p.r1, h1); ih++) {
        for (var iw = w0; iw < w1; iw++) {
            acc += src[plane + ih * p.w + iw];
        }
    }
    dst[i] = select(acc, acc / f32((h1 - h0) * (w1 - w0)), p.r1 == p.r_end);
}

@compute @workgroup_size(WG)
fn adaptive_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let obase = at.plane * p.oh * p.ow;
    let oh0 = max((at.y * p.oh) / p.h, 1u) - 1u;
    let oh1 = min(((at.y + 1u) * p.oh + p.h - 1u) / p.h, p.oh);
    let ow0 = max((at.x * p.ow) / p.w, 1u) - 1u;
    let ow1 = min(((at.x + 1u) * p.ow + p.w - 1u) / p.w, p.ow);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var oh = min(oh0 + p.r0, oh1); oh < min(oh0 + p.r1, oh1); oh++) {
        let h0 = adaptive_start(oh, p.h, p.oh);
        let h1 = adaptive_end(oh, p.h, p.oh);
        if (at.y < h0 || at.y >= h1) {
            continue;
        }
        for (var ow = ow0; ow < ow1; ow++) {
            let w0 = adaptive_start(ow, p.w, p.ow);
            let w1 = adaptive_end(ow, p.w, p.ow);
            if (at.x >= w0 && at.x < w1) {
                acc += src[obase + oh * p.ow + ow] / f32((h1 - h0) * (w1 - w0));
            }
        }
    }
    dst[i] = acc;
}

@compute @workgroup_size(WG)
fn adaptive_max_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    let h0 = adaptive_start(o.y, p.h, p.oh);
    let h1 = adaptive_end(o.y, p.h, p.oh);
    let w0 = adaptive_start(o.x, p.w, p.ow);
    let w1 = adaptive_end(o.x, p.w, p.ow);
    var best = bitcast<f32>(0xff800000u); // -inf
    var arg = -1;
    if (p.r0 > 0u) {
        best = dst[i];
        arg = i32(aux[i]);
    }
    for (var ih = min(h0 + p.r0, h1); ih < min(h0 + p.r1, h1); ih++) {
        for (var iw = w0; iw < w1; iw++) {
            let idx = ih * p.w + iw;
            let v = src[plane + idx];
            if (takes_max(v, best, arg)) {
                best = v;
                arg = i32(idx);
            }
        }
    }
    dst[i] = best;
    aux[i] = f32(arg);
}

@compute @workgroup_size(WG)
fn adaptive_max_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let me = f32(at.y * p.w + at.x);
    let obase = at.plane * p.oh * p.ow;
    let oh0 = max((at.y * p.oh) / p.h, 1u) - 1u;
    let oh1 = min(((at.y + 1u) * p.oh + p.h - 1u) / p.h, p.oh);
    let ow0 = max((at.x * p.ow) / p.w, 1u) - 1u;
    let ow1 = min(((at.x + 1u) * p.ow + p.w - 1u) / p.w, p.ow);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    for (var oh = min(oh0 + p.r0, oh1); oh < min(oh0 + p.r1, oh1); oh++) {
        for (var ow = ow0; ow < ow1; ow++) {
            let o = obase + oh * p.ow + ow;
            if (aux[o] == me) {
                acc += src[o];
            }
        }
    }
    dst[i] = acc;
}
