// Sum of the middle axis of (outer, len, inner) -> (outer, inner), always in the same order so
// results are bit-reproducible.

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG_REDUCE: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

// One workgroup per output: threads stride over the axis, then a fixed tree.
@compute @workgroup_size(256)
fn sum_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let o = (wid.z * nwg.y + wid.y) * nwg.x + wid.x;
    let valid = o < p.outer * p.inner;
    var acc = 0.0;
    if (valid) {
        let base = (o / p.inner) * p.len * p.inner + o % p.inner;
        for (var k = lid; k < p.len; k += WG_REDUCE) {
            acc += x[base + k * p.inner];
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = WG_REDUCE / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (valid && lid == 0u) {
        y[o] = partial[0];
    }
}

override WG: u32 = 256u;

// One thread per output: for short axes.
@compute @workgroup_size(WG)
fn sum_narrow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let o = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    if (o >= p.outer * p.inner) {
        return;
    }
    let base = (o / p.inner) * p.len * p.inner + o % p.inner;
    var acc = 0.0;
    for (var k = 0u; k < p.len; k++) {
        acc += x[base + k * p.inner];
    }
    y[o] = acc;
}
