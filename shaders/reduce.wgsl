// Sum or maximum of the middle axis of (outer, len, inner) -> (outer, inner), always in the same
// order so results are bit-reproducible. The REDUCE_* opcodes are generated from `REDUCE_OPCODES`
// in src/backend/opcodes.rs; an opcode without a case gives NaN.

fn identity() -> f32 {
    switch p.op {
        case REDUCE_SUM: { return 0.0; }
        case REDUCE_MAX: { return -inf(); }
        default: { return nan(); }
    }
}

// As ReduceOp::combine: NaN propagates through max.
fn combine(acc: f32, v: f32) -> f32 {
    switch p.op {
        case REDUCE_SUM: { return acc + v; }
        case REDUCE_MAX: { return select(acc, v, v > acc || is_nan(v)); }
        default: { return nan(); }
    }
}

var<workgroup> partial: array<f32, WG>;

// (outer, len, inner) -> (outer, chunks, inner): one workgroup per chunk of `chunk` axis
// elements, threads striding over it, then a fixed tree. The host bounds `chunk / WG` by the
// loop budget and reduces the chunks in further passes.
// Thread `lid`'s share of output `o`'s chunk (the identity past the outputs).
fn chunk_share(o: u32, lid: u32) -> f32 {
    var acc = identity();
    if (o < p.outer * p.chunks * p.inner) {
        let inner = o % p.inner;
        let ch = (o / p.inner) % p.chunks;
        let out = o / (p.inner * p.chunks);
        let base = out * p.len * p.inner + inner;
        let end = min(p.len, (ch + 1u) * p.chunk);
        for (var k = ch * p.chunk + lid; k < end; k += WG) {
            acc = combine(acc, x[base + k * p.inner]);
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn sum_wide(th: Thread) {
    let o = group_index(th);
    let valid = o < p.outer * p.chunks * p.inner;
    partial[th.lid] = chunk_share(o, th.lid);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (th.lid < s) {
            partial[th.lid] = combine(partial[th.lid], partial[th.lid + s]);
        }
        workgroupBarrier();
    }
    if (valid && th.lid == 0u) {
        y[o] = partial[0];
    }
}

// One thread per output: for short axes.
@compute @workgroup_size(WG)
fn sum_narrow(th: Thread) {
    let o = thread_index(th);
    if (o >= p.outer * p.inner) {
        return;
    }
    let base = (o / p.inner) * p.len * p.inner + o % p.inner;
    var acc = identity();
    for (var k = 0u; k < p.len; k++) {
        acc = combine(acc, x[base + k * p.inner]);
    }
    y[o] = acc;
}
