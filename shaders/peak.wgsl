// The adapter's attainable f32 FMA rate (`convshade bench --peak`): every invocation runs
// CHAINS independent vec4 FMA chains for `trips` rounds, and writes a value that depends on all
// of them, so no round can be dropped.

@compute @workgroup_size(WG)
fn fma_peak(th: Thread) {
    let i = thread_index(th);
    let m = vec4<f32>(0.999999);
    let c = vec4<f32>(1e-6);
    var a0 = vec4<f32>(f32(i) * 1e-9, 1.0, 2.0, 3.0);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var k = 0u; k < p.trips; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    dst[i] = s.x + s.y + s.z + s.w;
}
