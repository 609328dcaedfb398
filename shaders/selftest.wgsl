// Canaries run when a GPU context is created, each checked against the same computation on the
// host: the things drivers have got wrong (loops cut short, barriers in loops, multi-dimensional
// grids, bindings at an offset). Integer arithmetic, so the expected values are exact.

// One loop of `trips` iterations: the most any kernel runs per invocation.
@compute @workgroup_size(WG)
fn canary_loop(@builtin(local_invocation_index) lid: u32) {
    var acc = lid;
    for (var k = 0u; k < p.trips; k++) {
        acc = acc * 1664525u + 1013904223u + k;
    }
    dst[lid] = acc;
}

var<workgroup> ring: array<u32, WG>;

// `rounds` rounds of exchange through workgroup memory, two barriers per round.
@compute @workgroup_size(WG)
fn canary_barrier(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    var v = wid.x * WG + lid;
    for (var r = 0u; r < p.rounds; r++) {
        ring[lid] = v;
        workgroupBarrier();
        v = v * 31u + ring[(lid + r + 1u) % WG];
        workgroupBarrier();
    }
    dst[wid.x * WG + lid] = v;
}

// Every invocation of a 2-d or 3-d grid writes its coordinates at its flattened index.
@compute @workgroup_size(WG)
fn canary_grid(th: Thread) {
    // (p.n is 0: every kernel's layout starts with the uniform at binding 0)
    let w = th.wid;
    let n = th.nwg;
    dst[thread_index(th)] = (th.lid | (w.x << 8u) | (w.y << 12u) | (w.z << 16u)
        | (n.x << 20u) | (n.y << 24u) | (n.z << 28u)) + p.n;
}

// Reads a binding that starts at a non-zero offset of its buffer.
@compute @workgroup_size(WG)
fn canary_offset(@builtin(local_invocation_index) lid: u32) {
    if (lid < p.n) {
        dst[lid] = src[lid] * 3u + 7u;
    }
}
