// Max, average, adaptive average and adaptive max pooling, forward and backward. Backward passes
// are gathers: each input element sums the gradients of the windows that hold it, in a fixed
// order. Window loops that run in several passes (rows r0..r1 of r_end) resume from what the last
// pass wrote.

// A rectangle [h0, h1) x [w0, w1): a window of input rows and columns, or a range of outputs.
struct Rect {
    h0: u32,
    h1: u32,
    w0: u32,
    w1: u32,
}

// This pass's rows of the range [lo, hi) that a loop walks from lo: [lo + r0, lo + r1), clipped.
fn pass_rows(lo: u32, hi: u32) -> vec2<u32> {
    return vec2<u32>(min(lo + p.r0, hi), min(lo + p.r1, hi));
}

// The running maximum of a window and its flat index (arg < 0 before the first tap), resumed
// from what the last pass wrote.
struct Best {
    v: f32,
    arg: i32,
}

fn best_so_far(i: u32) -> Best {
    if (p.r0 > 0u) {
        return Best(dst[i], i32(aux[i]));
    }
    return Best(-inf(), -1);
}

// The maximum after tap value v at flat index idx: as PyTorch, NaN propagates and ties keep the
// first maximum.
fn offer(b: Best, v: f32, idx: u32) -> Best {
    if (v > b.v || is_nan(v) || b.arg < 0) {
        return Best(v, i32(idx));
    }
    return b;
}

fn keep(i: u32, b: Best) {
    dst[i] = b.v;
    aux[i] = f32(b.arg);
}

@compute @workgroup_size(WG)
fn max_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    var best = best_so_far(i);
    for (var kh = p.r0; kh < p.r1; kh++) {
        let ih = tap_input(o.y, kh, p.sh, p.dh, p.pad_top, p.h);
        for (var kw = 0u; kw < p.kw && ih >= 0; kw++) {
            let iw = tap_input(o.x, kw, p.sw, p.dw, p.pad_left, p.w);
            if (iw >= 0) {
                let idx = u32(ih) * p.w + u32(iw);
                best = offer(best, src[plane + idx], idx);
            }
        }
    }
    keep(i, best);
}

// max_fwd where the windows tile the input (see max_bwd_tiled): every tap is inside it.
@compute @workgroup_size(WG)
fn max_fwd_tiled(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    var best = best_so_far(i);
    for (var kh = p.r0; kh < p.r1; kh++) {
        let row = (o.y * p.sh + kh) * p.w + o.x * p.sw;
        for (var kw = 0u; kw < p.kw; kw++) {
            best = offer(best, src[plane + row + kw], row + kw);
        }
    }
    keep(i, best);
}

// The one output along an axis whose window can hold input i, when windows do not overlap
// (extent (k - 1) * dil + 1 at most the stride), or -1 where none does.
fn sole_window(i: u32, k: u32, stride: u32, dil: u32, pad: u32, out: u32) -> i32 {
    let ip = i + pad;
    let o = ip / stride;
    let off = ip - o * stride;
    if (o >= out || off % dil != 0u || off / dil >= k) {
        return -1;
    }
    return i32(o);
}

@compute @workgroup_size(WG)
fn max_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let me = f32(at.y * p.w + at.x);
    let obase = at.plane * p.oh * p.ow;
    let apart = (p.kh - 1u) * p.dh < p.sh && (p.kw - 1u) * p.dw < p.sw;
    if (apart && p.r0 == 0u && p.r1 >= p.kh) {
        // windows apart (2x2 stride 2, say): an input is in one window at most, found without
        // a loop
        let oh = sole_window(at.y, p.kh, p.sh, p.dh, p.pad_top, p.oh);
        let ow = sole_window(at.x, p.kw, p.sw, p.dw, p.pad_left, p.ow);
        var g = 0.0;
        if (oh >= 0 && ow >= 0) {
            let o = obase + u32(oh) * p.ow + u32(ow);
            if (aux[o] == me) {
                // added to 0 as the loop below does (-0 becomes 0)
                g += src[o];
            }
        }
        dst[i] = g;
        return;
    }
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

// Windows that tile the input (kernel = stride, no dilation or padding, nothing left over): each
// input is in exactly one window, so a thread per window reads its gradient and argmax once and
// writes its inputs' gradients, the same values max_bwd gathers. Passes split the window's rows.
@compute @workgroup_size(WG)
fn max_bwd_tiled(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let plane = o.plane * p.h * p.w;
    let arg = aux[i];
    // added to 0 as max_bwd does (-0 becomes 0)
    var g = 0.0;
    g += src[i];
    for (var kh = p.r0; kh < p.r1; kh++) {
        let row = (o.y * p.sh + kh) * p.w + o.x * p.sw;
        for (var kw = 0u; kw < p.kw; kw++) {
            dst[plane + row + kw] = select(0.0, g, f32(row + kw) == arg);
        }
    }
}

struct AvgWindow {
    r: Rect,
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
    return AvgWindow(Rect(h0, h1, w0, w1), divisor);
}

// The sum over window r of plane `plane`, this pass's rows of it added to acc.
fn window_sum(acc0: f32, plane: u32, r: Rect) -> f32 {
    var acc = acc0;
    let rows = pass_rows(r.h0, r.h1);
    for (var ih = rows.x; ih < rows.y; ih++) {
        for (var iw = r.w0; iw < r.w1; iw++) {
            acc += src[plane + ih * p.w + iw];
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn avg_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let win = avg_window(o.y, o.x);
    let acc = window_sum(select(0.0, dst[i], p.r0 > 0u), o.plane * p.h * p.w, win.r);
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

fn inside(at: Pos, r: Rect) -> bool {
    return at.y >= r.h0 && at.y < r.h1 && at.x >= r.w0 && at.x < r.w1;
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
    let rows = pass_rows(rh.x, rh.y);
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = rw.x; ow < rw.y; ow++) {
            let win = avg_window(oh, ow);
            if (inside(at, win.r)) {
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

// PyTorch's adaptive window of output (oh, ow): [floor(o*in/out), ceil((o+1)*in/out)) per axis.
fn adaptive_window(oh: u32, ow: u32) -> Rect {
    let h = vec2<u32>(adaptive_start(oh, p.h, p.oh), adaptive_end(oh, p.h, p.oh));
    return Rect(h.x, h.y, adaptive_start(ow, p.w, p.ow), adaptive_end(ow, p.w, p.ow));
}

// The outputs whose adaptive windows may hold input at: one extra each side of the estimate.
fn adaptive_covering(at: Pos) -> Rect {
    let oh0 = max((at.y * p.oh) / p.h, 1u) - 1u;
    let oh1 = min(((at.y + 1u) * p.oh + p.h - 1u) / p.h, p.oh);
    let ow0 = max((at.x * p.ow) / p.w, 1u) - 1u;
    let ow1 = min(((at.x + 1u) * p.ow + p.w - 1u) / p.w, p.ow);
    return Rect(oh0, oh1, ow0, ow1);
}

@compute @workgroup_size(WG)
fn adaptive_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let win = adaptive_window(o.y, o.x);
    let acc = window_sum(select(0.0, dst[i], p.r0 > 0u), o.plane * p.h * p.w, win);
    let count = f32((win.h1 - win.h0) * (win.w1 - win.w0));
    dst[i] = select(acc, acc / count, p.r1 == p.r_end);
}

@compute @workgroup_size(WG)
fn adaptive_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let obase = at.plane * p.oh * p.ow;
    let outs = adaptive_covering(at);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    let rows = pass_rows(outs.h0, outs.h1);
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = outs.w0; ow < outs.w1; ow++) {
            let win = adaptive_window(oh, ow);
            if (inside(at, win)) {
                acc += src[obase + oh * p.ow + ow] / f32((win.h1 - win.h0) * (win.w1 - win.w0));
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
    let win = adaptive_window(o.y, o.x);
    var best = best_so_far(i);
    let rows = pass_rows(win.h0, win.h1);
    for (var ih = rows.x; ih < rows.y; ih++) {
        for (var iw = win.w0; iw < win.w1; iw++) {
            let idx = ih * p.w + iw;
            best = offer(best, src[plane + idx], idx);
        }
    }
    keep(i, best);
}

@compute @workgroup_size(WG)
fn adaptive_max_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    let me = f32(at.y * p.w + at.x);
    let outs = adaptive_covering(at);
    var acc = select(0.0, dst[i], p.r0 > 0u);
    let rows = pass_rows(outs.h0, outs.h1);
    let obase = at.plane * p.oh * p.ow;
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = outs.w0; ow < outs.w1; ow++) {
            let o = obase + oh * p.ow + ow;
            if (aux[o] == me) {
                acc += src[o];
            }
        }
    }
    dst[i] = acc;
}
