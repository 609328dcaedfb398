// Assignment into a strided region: y = base, except y[start + i * step] = v[i] per axis over
// the region (slicing's gradient, x[a:b, ::s] = v). One thread per element of y.

@compute @workgroup_size(WG)
fn slice_assign(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n) { return; }
    var rem = i;
    var src = 0u;
    var inner = 1u;
    var inside = true;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let dim = p.dims[d / 4][d % 4];
        let c = rem % dim;
        rem = rem / dim;
        let start = p.start[d / 4][d % 4];
        let step = p.step[d / 4][d % 4];
        let len = p.len[d / 4][d % 4];
        // c - start wraps past u32 when c < start: then the quotient is past len
        let k = (c - start) / step;
        inside = inside && c >= start && (c - start) % step == 0u && k < len;
        src += k * inner;
        inner *= len;
    }
    if (inside) {
        y[i] = v[src];
    } else {
        y[i] = base[i];
    }
}
