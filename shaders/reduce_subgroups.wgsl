// sum_wide (reduce.wgsl, compiled in front of this) with the workgroup's tree of 8 barriers
// replaced by subgroup shuffles, for adapters with `Features::SUBGROUP`: a fixed butterfly in
// each subgroup, then the subgroups' results combined in order after one barrier. The order
// depends on the shape and the adapter's subgroup size alone, so results are bit-reproducible on
// an adapter (not bit-equal to the plain tree's).
//
// naga takes the subgroup built-ins without an `enable` directive, from a device with the
// feature; on adapters without it this module is never compiled and the plain sum_wide runs.

// one slot per subgroup (wgpu guarantees subgroups of at least 4 invocations)
var<workgroup> by_subgroup: array<f32, WG / 4u>;

@compute @workgroup_size(WG)
fn sum_wide_subgroups(
    th: Thread,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) lanes: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) sgs: u32,
) {
    let o = group_index(th);
    let valid = o < p.outer * p.chunks * p.inner;
    var acc = chunk_share(o, th.lid);
    // every lane ends with its subgroup's result (a + b = b + a exactly, so lanes agree)
    for (var m = 1u; m < lanes; m = m * 2u) {
        acc = combine(acc, subgroupShuffleXor(acc, m));
    }
    if (lane == 0u) {
        by_subgroup[sg] = acc;
    }
    workgroupBarrier();
    if (valid && th.lid == 0u) {
        var r = by_subgroup[0];
        for (var s = 1u; s < sgs; s++) {
            r = combine(r, by_subgroup[s]);
        }
        y[o] = r;
    }
}
