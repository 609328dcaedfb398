// Padding of the last two axes (F.pad with four widths), forward and backward. The backward pass
// is a gather: each input sums the outputs that read it, in raster order, in passes over its
// reader rows (r0..r1) that resume from what the last pass wrote. Mirrors src/backend/pad.rs.

const REFLECT: u32 = 1u;
const REPLICATE: u32 = 2u;
const CIRCULAR: u32 = 3u;

// The input index output o reads along an axis of n, or -1 where the constant fills it.
fn pad_source(o: u32, before: i32, n: u32) -> i32 {
    let ni = i32(n);
    var s = i32(o) - before;
    if (p.kind == REFLECT) {
        if (s < 0) {
            s = -s;
        } else if (s >= ni) {
            s = 2 * (ni - 1) - s;
        }
    } else if (p.kind == REPLICATE) {
        s = clamp(s, 0, ni - 1);
    } else if (p.kind == CIRCULAR) {
        if (s < 0) {
            s += ni;
        } else if (s >= ni) {
            s -= ni;
        }
    }
    return select(-1, s, s >= 0 && s < ni);
}

@compute @workgroup_size(WG)
fn pad_fwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let o = pos_in(i, p.oh, p.ow);
    let sy = pad_source(o.y, p.top, p.h);
    let sx = pad_source(o.x, p.left, p.w);
    var v = p.value;
    if (sy >= 0 && sx >= 0) {
        v = src[(o.plane * p.h + u32(sy)) * p.w + u32(sx)];
    }
    dst[i] = v;
}

// [lo, hi) of [0, out), or (0, 0) when empty.
fn clip(lo: i32, hi: i32, out: u32) -> vec2<u32> {
    let a = max(lo, 0);
    let b = min(hi, i32(out));
    return select(vec2<u32>(0u), vec2<u32>(u32(a), u32(b)), a < b);
}

// The output reading input position s (before folding).
fn one(s: i32, before: i32, out: u32) -> vec2<u32> {
    return clip(s + before, s + before + 1, out);
}

// The outputs reading input i along an axis: up to three ascending ranges.
fn pad_readers(i: u32, before: i32, n: u32, out: u32) -> array<vec2<u32>, 3> {
    let ii = i32(i);
    let ni = i32(n);
    let none = vec2<u32>(0u);
    if (p.kind == REFLECT) {
        let left = select(none, one(-ii, before, out), ii > 0);
        let right = select(none, one(2 * (ni - 1) - ii, before, out), ii < ni - 1);
        return array<vec2<u32>, 3>(left, one(ii, before, out), right);
    }
    if (p.kind == REPLICATE) {
        let lo = select(ii + before, 0, ii == 0);
        let hi = select(ii + before + 1, i32(out), ii == ni - 1);
        return array<vec2<u32>, 3>(clip(lo, hi, out), none, none);
    }
    if (p.kind == CIRCULAR) {
        return array<vec2<u32>, 3>(
            one(ii - ni, before, out),
            one(ii, before, out),
            one(ii + ni, before, out),
        );
    }
    return array<vec2<u32>, 3>(one(ii, before, out), none, none);
}

@compute @workgroup_size(WG)
fn pad_bwd(th: Thread) {
    let i = thread_index(th);
    if (i >= p.total) { return; }
    let at = pos_in(i, p.h, p.w);
    var ry = pad_readers(at.y, p.top, p.h, p.oh);
    var rx = pad_readers(at.x, p.left, p.w, p.ow);
    let base = at.plane * p.oh * p.ow;
    var acc = select(0.0, dst[i], p.r0 > 0u);
    // reader rows in the segments before this one
    var k = 0u;
    for (var s = 0u; s < 3u; s++) {
        let seg = ry[s];
        let len = seg.y - seg.x;
        // this pass's rows [r0, r1) of the segment's [k, k + len)
        let lo = seg.x + min(max(p.r0, k) - k, len);
        let hi = seg.x + min(max(p.r1, k) - k, len);
        for (var y = lo; y < hi; y++) {
            for (var t = 0u; t < 3u; t++) {
                for (var x = rx[t].x; x < rx[t].y; x++) {
                    acc += src[base + y * p.ow + x];
                }
            }
        }
        k += len;
    }
    dst[i] = acc;
}
