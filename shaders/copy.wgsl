// Contiguous copy of a strided view: out[i0..ik] = x[offset + sum(ij * stride_j)].

@compute @workgroup_size(WG)
fn copy_strided(th: Thread) {
    let i = thread_index(th);
    if (i >= p.n) { return; }
    var rem = i;
    var src = p.offset;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let dim = p.dims[d / 4][d % 4];
        src += (rem % dim) * p.strides[d / 4][d % 4];
        rem = rem / dim;
    }
    y[i] = x[src];
}
