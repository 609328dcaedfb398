//! Reductions through subgroup operations, where the adapter has them, against the plain
//! workgroup tree (`GpuOptions::no_subgroups`) and the CPU: sums and maxima over long axes, in
//! several passes, with NaN and infinities; and bit-reproducible run to run.

mod common;

use common::{assert_close, gpu, randv};
use convshade::gpu::GpuOptions;
use convshade::{Device, Tensor};

/// (outer, len, inner) shapes reduced over `len`: one workgroup pass, several chunks (a loop
/// cap of 160 makes them 16,384 long), strided inner.
const SHAPES: [[usize; 3]; 4] = [[1, 300, 1], [3, 5000, 2], [2, 40000, 1], [1, 128, 7]];

fn contexts() -> Option<[(Device, bool); 2]> {
    gpu()?;
    let ctx = |no_subgroups| {
        let dev = Device::gpu_with(GpuOptions {
            no_subgroups,
            loop_cap: Some(160),
            ..Default::default()
        })
        .unwrap();
        let Device::Gpu(c) = &dev else { unreachable!("a GPU context") };
        let used = c.uses_subgroups();
        (dev, used)
    };
    Some([ctx(false), ctx(true)])
}

fn reductions(t: &Tensor) -> Vec<Vec<f32>> {
    vec![
        t.sum_axis(1, false).unwrap().to_vec().unwrap(),
        t.max_axis(1, false).unwrap().to_vec().unwrap(),
    ]
}

#[test]
fn subgroup_reductions_match_the_plain_tree_and_the_cpu() {
    let Some([(sub, used), (plain, plain_used)]) = contexts() else {
        return;
    };
    assert!(!plain_used, "no_subgroups must turn subgroup operations off");
    if !used {
        eprintln!("!!! this adapter has no subgroup operations: only the plain path ran !!!");
    }
    for (i, &[o, l, n]) in SHAPES.iter().enumerate() {
        let mut v = randv(o * l * n, 40 + i as u64);
        // a NaN in one row, +inf in another: max propagates NaN, sums carry both
        if o > 1 {
            v[l * n + 3] = f32::NAN;
            v[5] = f32::INFINITY;
        }
        let want = reductions(&Tensor::from_vec(v.clone(), [o, l, n], &Device::cpu()).unwrap());
        for dev in [&sub, &plain] {
            let x = Tensor::from_vec(v.clone(), [o, l, n], dev).unwrap();
            let got = reductions(&x);
            for (g, w) in got.iter().zip(&want) {
                // NaN where the CPU has NaN, the rest close
                for (a, b) in g.iter().zip(w) {
                    assert_eq!(a.is_nan(), b.is_nan(), "{dev:?} {o}x{l}x{n}: {a} vs {b}");
                }
                let finite = |v: &[f32]| {
                    v.iter().map(|x| if x.is_nan() { 0.0 } else { *x }).collect::<Vec<_>>()
                };
                assert_close(&finite(g), &finite(w), 1e-4, 1e-3, &format!("{dev:?} {o}x{l}x{n}"));
            }
            // the same bits on a second run
            assert_eq!(
                got.concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                reductions(&x).concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{dev:?} {o}x{l}x{n}: run to run"
            );
        }
    }
}
