//! The public op API driven with arbitrary shapes and arguments (zero and oversized kernels,
//! strides, paddings and dilations, mismatched shapes, bad labels and settings, non-finite
//! values). Every call must return `Ok` or a clear `Err` naming its op, never panic; forward and
//! backward results on the GPU must equal the CPU's; the two devices must agree on which calls
//! are refused. Each call runs again on a GPU device with 64-element bindings, where most
//! tensors are split, with the same results. `FUZZ_CASES` sets the number of calls per op family
//! (default 64).

mod common;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::{assert_close, gpu};
use convshade::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm2d, conv2d, conv_transpose2d,
    cross_entropy_labels, im2row, max_pool2d, mse_loss_with, pad, row2im, upsample,
    AvgPool2dOptions, BatchNormOptions, Conv2dOptions, ConvTranspose2dOptions, CrossEntropyOptions,
    Device, MaxPool2dOptions, PadMode, PaddingMode, Reduction, Result, Tensor, UpsampleOptions,
    UpsampleSize,
};

/// One fuzzed call: its description, input shapes and values, and the op over the inputs.
struct Call {
    what: String,
    inputs: Vec<(Vec<usize>, Vec<f32>)>,
    op: Box<Op>,
}

type Op = dyn Fn(&[Tensor]) -> Result<Tensor>;

/// A shape; now and then with an empty (zero-sized) dimension.
fn dims(rng: &mut ChaCha8Rng, rank: usize, max: usize) -> Vec<usize> {
    let empty = rng.random_range(0..8) == 0;
    let mut d: Vec<usize> = (0..rank).map(|_| rng.random_range(1..=max)).collect();
    if empty {
        d[rng.random_range(0..rank)] = 0;
    }
    d
}

/// A shape of random rank in `ranks`.
fn ranked(rng: &mut ChaCha8Rng, ranks: std::ops::RangeInclusive<usize>, max: usize) -> Vec<usize> {
    let r = rng.random_range(ranks);
    dims(rng, r, max)
}

/// Values in [-3, 3) with, for data (not weights), rare NaN, infinity and -0.0. (NaN or
/// infinite weights make the GPU's implicit GEMMs, which multiply padding taps by zero, give NaN
/// where a transposed convolution's output has no tap at all and PyTorch's scatter gives 0.)
fn values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.random_range(0..40) {
            // rare special values: the ops must pass them through, not fall over
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -0.0,
            _ => rng.random_range(-3.0..3.0),
        })
        .collect()
}

fn input(rng: &mut ChaCha8Rng, shape: Vec<usize>) -> (Vec<usize>, Vec<f32>) {
    let n = shape.iter().product();
    (shape, values(rng, n))
}

/// Weights: finite values.
fn weight(rng: &mut ChaCha8Rng, shape: Vec<usize>) -> (Vec<usize>, Vec<f32>) {
    let n = shape.iter().product();
    (shape, (0..n).map(|_| rng.random_range(-3.0..3.0)).collect())
}

/// A window argument in `lo..=hi`, now and then 0 or far too large.
fn small(rng: &mut ChaCha8Rng, max: usize) -> usize {
    match rng.random_range(0..16) {
        0 => 0,
        1 => 9,
        _ => rng.random_range(1..=max),
    }
}

fn pair(rng: &mut ChaCha8Rng, lo: usize, hi: usize) -> (usize, usize) {
    let one = |rng: &mut ChaCha8Rng| match rng.random_range(0..20) {
        0 => 0,
        1 => 9,
        _ => rng.random_range(lo..=hi),
    };
    let a = one(rng);
    (a, if rng.random_bool(0.7) { a } else { one(rng) })
}

/// A call of op family `family` drawn from `seed`.
fn call(family: usize, seed: u64) -> Call {
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    // (n, c, h, w), now and then another rank
    let x4 = |rng: &mut ChaCha8Rng| {
        if rng.random_range(0..12) == 0 {
            return ranked(rng, 2..=5, 6);
        }
        let zero =
            |rng: &mut ChaCha8Rng, d: usize| if rng.random_range(0..16) == 0 { 0 } else { d };
        let n = rng.random_range(1..=3);
        let (n, c) = (zero(rng, n), rng.random_range(1..=4));
        vec![n, c, rng.random_range(2..=8), rng.random_range(2..=8)]
    };
    // mostly 1, sometimes 2 or 3, rarely 0
    let groups_of = |rng: &mut ChaCha8Rng| match rng.random_range(0..12) {
        0 => 0,
        1..=3 => 2,
        4 => 3,
        _ => 1,
    };
    match family {
        0 => {
            let mut xs = x4(rng);
            let groups = groups_of(rng);
            if xs.len() == 4 && rng.random_range(0..10) > 0 {
                xs[1] = groups.max(1) * rng.random_range(1..=2);
            }
            let c = xs.get(1).copied().unwrap_or(1);
            let ws = vec![
                rng.random_range(1..=3) * groups.max(1),
                (c / groups.max(1)).max(1) + usize::from(rng.random_range(0..12) == 0),
                small(rng, 3),
                small(rng, 3),
            ];
            let mode = [
                PaddingMode::Zeros,
                PaddingMode::Reflect,
                PaddingMode::Replicate,
                PaddingMode::Circular,
            ][rng.random_range(0..4)];
            let opts = Conv2dOptions::new()
                .stride(pair(rng, 1, 3))
                .padding(pair(rng, 0, 2))
                .dilation(pair(rng, 1, 2))
                .groups(groups)
                .padding_mode(mode);
            let bias = rng.random_bool(0.5);
            let d = ws[0];
            let mut inputs = vec![input(rng, xs), weight(rng, ws)];
            if bias {
                inputs.push(weight(rng, vec![d]));
            }
            Call {
                what: format!("conv2d {opts:?}"),
                inputs,
                op: Box::new(move |t| conv2d(&t[0], &t[1], t.get(2), &opts)),
            }
        }
        1 => {
            let mut xs = x4(rng);
            let groups = groups_of(rng);
            if xs.len() == 4 && rng.random_range(0..10) > 0 {
                xs[1] = groups.max(1) * rng.random_range(1..=2);
            }
            let c = xs.get(1).copied().unwrap_or(1);
            let ws = vec![c, rng.random_range(1..=3), small(rng, 3), small(rng, 3)];
            let opts = ConvTranspose2dOptions::new()
                .stride(pair(rng, 1, 3))
                .padding(pair(rng, 0, 2))
                .output_padding(pair(rng, 0, 2))
                .dilation(pair(rng, 1, 2))
                .groups(groups);
            Call {
                what: format!("conv_transpose2d {opts:?}"),
                inputs: vec![input(rng, xs), weight(rng, ws)],
                op: Box::new(move |t| conv_transpose2d(&t[0], &t[1], None, &opts)),
            }
        }
        2 => {
            let xs = x4(rng);
            let k = pair(rng, 1, 4);
            let max = rng.random_bool(0.5);
            let (s, p, d, ceil) =
                (pair(rng, 1, 3), pair(rng, 0, 2), pair(rng, 1, 2), rng.random_bool(0.5));
            let (incl, div) = (rng.random_bool(0.5), small(rng, 3));
            Call {
                what: format!("pool max {max} k {k:?} s {s:?} p {p:?} d {d:?} ceil {ceil} incl {incl} div {div}"),
                inputs: vec![input(rng, xs)],
                op: Box::new(move |t| {
                    if max {
                        let o = MaxPool2dOptions::new(k).stride(s).padding(p).dilation(d).ceil_mode(ceil);
                        max_pool2d(&t[0], &o)
                    } else {
                        let mut o = AvgPool2dOptions::new(k).stride(s).padding(p).ceil_mode(ceil).count_include_pad(incl);
                        if div != 1 {
                            o = o.divisor_override(div);
                        }
                        avg_pool2d(&t[0], &o)
                    }
                }),
            }
        }
        3 => {
            let xs = x4(rng);
            let out = pair(rng, 1, 7);
            let which = rng.random_range(0..4);
            let align = rng.random_bool(0.5);
            Call {
                what: format!("adaptive/upsample {which} to {out:?} align {align}"),
                inputs: vec![input(rng, xs)],
                op: Box::new(move |t| match which {
                    0 => adaptive_avg_pool2d(&t[0], out),
                    1 => adaptive_max_pool2d(&t[0], out),
                    2 => {
                        upsample(&t[0], &UpsampleOptions::nearest(UpsampleSize::Size(out.0, out.1)))
                    }
                    _ => upsample(
                        &t[0],
                        &UpsampleOptions::bilinear(UpsampleSize::Size(out.0, out.1), align),
                    ),
                }),
            }
        }
        4 => {
            let xs = ranked(rng, 1..=5, 5);
            let n = [4, 4, 4, 2, 2, 0, 1, 3, 5][rng.random_range(0..9)];
            // mostly small widths; now and then negative or past the input
            let widths: Vec<isize> = (0..n)
                .map(|_| match rng.random_range(0..10) {
                    0 => rng.random_range(-3i64..=-1) as isize,
                    1 => rng.random_range(4i64..=8) as isize,
                    _ => rng.random_range(0i64..=2) as isize,
                })
                .collect();
            let mode =
                [PadMode::Constant(1.5), PadMode::Reflect, PadMode::Replicate, PadMode::Circular]
                    [rng.random_range(0..4)];
            Call {
                what: format!("pad {widths:?} {mode:?}"),
                inputs: vec![input(rng, xs)],
                op: Box::new(move |t| pad(&t[0], &widths, mode)),
            }
        }
        5 => {
            let a = ranked(rng, 1..=3, 5);
            let mut b = ranked(rng, 1..=3, 5);
            if rng.random_bool(0.7) && b.len() >= 2 {
                // usually compatible
                let bl = b.len();
                b[bl - 2] = *a.last().unwrap();
            }
            Call {
                what: format!("matmul {a:?} x {b:?}"),
                inputs: vec![input(rng, a), input(rng, b)],
                op: Box::new(|t| t[0].matmul(&t[1])),
            }
        }
        6 => {
            let xs = x4(rng);
            let (k, s, p, d) = (pair(rng, 1, 3), pair(rng, 1, 2), pair(rng, 0, 2), pair(rng, 1, 2));
            let back = rng.random_bool(0.5);
            let shape4 = (
                xs[0],
                xs.get(1).copied().unwrap_or(1),
                xs.get(2).copied().unwrap_or(1),
                xs.get(3).copied().unwrap_or(1),
            );
            let rows = vec![rng.random_range(1..=40), rng.random_range(1..=20)];
            Call {
                what: format!("im2row/row2im {back} k {k:?} s {s:?} p {p:?} d {d:?}"),
                inputs: vec![input(rng, if back { rows } else { xs })],
                op: Box::new(move |t| {
                    if back {
                        row2im(&t[0], shape4, k, s, p, d)
                    } else {
                        im2row(&t[0], k, s, p, d)
                    }
                }),
            }
        }
        7 => {
            let xs = ranked(rng, 1..=4, 6);
            let rank = xs.len();
            let kind = rng.random_range(0..3);
            let target = ranked(rng, 1..=4, 6);
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.swap(0, rng.random_range(0..rank));
            if rng.random_range(0..6) == 0 {
                perm[0] = rank; // out of range
            }
            Call {
                what: format!("layout {kind} {xs:?} -> {target:?} perm {perm:?}"),
                inputs: vec![input(rng, xs)],
                op: Box::new(move |t| match kind {
                    0 => t[0].reshape(target.clone()),
                    1 => t[0].permute(&perm),
                    _ => t[0].broadcast_to(target.clone()),
                }),
            }
        }
        8 => {
            let (n, c) = (rng.random_range(1..=5), rng.random_range(1..=5));
            let labels: Vec<usize> = (0..n + usize::from(rng.random_range(0..8) == 0))
                .map(|_| rng.random_range(0..=c))
                .collect();
            let smoothing = [0.0, 0.1, 1.0, -0.5, 1.5, f32::NAN][rng.random_range(0..6)];
            let sum = rng.random_bool(0.5);
            let mse = rng.random_bool(0.3);
            let other = if rng.random_bool(0.8) { vec![n, c] } else { dims(rng, 2, 5) };
            Call {
                what: format!("loss mse {mse} labels {labels:?} smoothing {smoothing} sum {sum}"),
                inputs: vec![input(rng, vec![n, c]), input(rng, other)],
                op: Box::new(move |t| {
                    let reduction = if sum { Reduction::Sum } else { Reduction::Mean };
                    if mse {
                        return mse_loss_with(&t[0], &t[1], reduction);
                    }
                    let opts = CrossEntropyOptions { label_smoothing: smoothing, reduction };
                    cross_entropy_labels(&t[0], &labels, opts)
                }),
            }
        }
        9 => volume(rng),
        _ => {
            let xs = x4(rng);
            let c = if rng.random_range(0..8) == 0 { 7 } else { xs.get(1).copied().unwrap_or(1) };
            let opts = BatchNormOptions {
                training: rng.random_bool(0.5),
                momentum: [0.1, 0.0, 1.0, f32::NAN][rng.random_range(0..4)],
                eps: [1e-5, 0.0, -1.0, 1e-3][rng.random_range(0..4)],
            };
            let stats: Vec<f32> = (0..c).map(|_| rng.random_range(0.5..2.0)).collect();
            Call {
                what: format!("batch_norm2d {opts:?} c {c}"),
                inputs: vec![input(rng, xs), (vec![c], stats.clone()), (vec![c], stats)],
                op: Box::new(move |t| {
                    let dev = t[0].device();
                    let rm = Tensor::zeros([t[1].dims()[0]], &dev)?;
                    Ok(batch_norm2d(&t[0], &rm, &t[1].detach(), Some(&t[1]), Some(&t[2]), &opts)?
                        .output)
                }),
            }
        }
    }
}

const FAMILIES: usize = 11;

/// A volume op `(n, c, d, h, w)` with arbitrary per-axis arguments (now and then another rank).
fn volume(rng: &mut ChaCha8Rng) -> Call {
    use convshade::{
        adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, conv3d, conv_transpose3d, max_pool3d,
        upsample3d, AvgPool3dOptions, Conv3dOptions, ConvTranspose3dOptions, MaxPool3dOptions,
        Padding3d, Upsample3dMode, Upsample3dSize,
    };
    let mut xs = vec![rng.random_range(0..=2), rng.random_range(1..=3)];
    xs.extend((0..3).map(|_| rng.random_range(1..=5)));
    if rng.random_range(0..10) == 0 {
        xs = ranked(rng, 3..=6, 4);
    }
    let c = xs.get(1).copied().unwrap_or(1);
    let t3 = |rng: &mut ChaCha8Rng, lo: usize, hi: usize| {
        (rng.random_range(lo..=hi), rng.random_range(lo..=hi), rng.random_range(lo..=hi))
    };
    let (k, s, p, d) = (t3(rng, 0, 3), t3(rng, 0, 2), t3(rng, 0, 2), t3(rng, 0, 2));
    let which = rng.random_range(0..7);
    let what = format!("volume op {which} x {xs:?} k {k:?} s {s:?} p {p:?} d {d:?}");
    let ceil = rng.random_bool(0.3);
    let mode =
        [PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular]
            [rng.random_range(0..4)];
    let (kd, kh, kw) = (k.0.max(1), k.1.max(1), k.2.max(1));
    let w_conv = weight(rng, vec![2, c, kd, kh, kw]);
    let w_t = weight(rng, vec![c, 2, kd, kh, kw]);
    let inputs = match which {
        0 => vec![input(rng, xs), w_conv],
        1 => vec![input(rng, xs), w_t],
        _ => vec![input(rng, xs)],
    };
    Call {
        what,
        inputs,
        op: Box::new(move |t| match which {
            0 => {
                let padding =
                    if odd_depth_and_height(k) { Padding3d::Same } else { Padding3d::Explicit(p) };
                let o = Conv3dOptions {
                    stride: s,
                    padding,
                    dilation: d,
                    groups: 1,
                    padding_mode: mode,
                };
                conv3d(&t[0], &t[1], None, &o)
            }
            1 => {
                let o = ConvTranspose3dOptions {
                    stride: s,
                    padding: p,
                    output_padding: (0, 0, 0),
                    dilation: d,
                    groups: 1,
                };
                conv_transpose3d(&t[0], &t[1], None, &o)
            }
            2 => max_pool3d(
                &t[0],
                &MaxPool3dOptions {
                    kernel: k,
                    stride: Some(s),
                    padding: p,
                    dilation: d,
                    ceil_mode: ceil,
                },
            ),
            3 => avg_pool3d(
                &t[0],
                &AvgPool3dOptions {
                    stride: Some(s),
                    padding: p,
                    ceil_mode: ceil,
                    ..AvgPool3dOptions::new(k)
                },
            ),
            4 => adaptive_avg_pool3d(&t[0], k),
            5 => adaptive_max_pool3d(&t[0], k),
            _ => upsample3d(
                &t[0],
                Upsample3dMode::Trilinear { align_corners: ceil },
                Upsample3dSize::Size(k.0, k.1, k.2),
            ),
        }),
    }
}

/// `padding="same"` for some kernels, an even width among them (chosen from the kernel, not
/// the generator, so the closure keeps none).
fn odd_depth_and_height(k: (usize, usize, usize)) -> bool {
    k.0 % 2 == 1 && k.1 % 2 == 1 && k.2.is_multiple_of(2)
}

/// Forward and every input gradient, or the `Err`'s text.
type Outcome = convshade::Result<Vec<Vec<f32>>>;

/// The call's [`Outcome`] on `dev` (upstream gradient: a fixed ramp).
fn run(call: &Call, dev: &Device) -> Outcome {
    let xs: Vec<Tensor> = call
        .inputs
        .iter()
        .map(|(s, v)| Tensor::from_vec(v.clone(), s.clone(), dev).map(|t| t.requires_grad_()))
        .collect::<Result<_>>()?;
    let y = (call.op)(&xs)?;
    let ramp: Vec<f32> = (0..y.elem_count()).map(|i| (i % 7) as f32 - 3.0).collect();
    let up = Tensor::from_vec(ramp, y.dims().to_vec(), dev)?;
    let grads = y.backward_with(&up)?;
    let mut out = vec![y.to_vec()?];
    for x in &xs {
        if let Some(g) = grads.get(x) {
            out.push(g.to_vec()?);
        }
    }
    Ok(out)
}

fn check(family: usize, seed: u64) {
    let c = call(family, seed);
    let cpu = run(&c, &Device::cpu());
    if let Err(e) = &cpu {
        // a clear refusal names its op: "op: what was wrong"
        let e = e.to_string();
        let (op, msg) = e.split_once(": ").unwrap_or(("", ""));
        assert!(
            !op.is_empty() && !op.contains(' ') && !msg.is_empty(),
            "{}: unclear error {e:?}",
            c.what
        );
    }
    let Some(dev) = gpu() else { return };
    agree(&c, &cpu, &run(&c, &dev), false);
    if let Some(split) = split_gpu() {
        agree(&c, &cpu, &run(&c, split), true);
    }
}

/// Elements in one binding of the split device (the least `max_storage_binding` allows): most
/// fuzzed tensors are past it.
const SPLIT_BINDING: usize = 64;

/// A second GPU device whose bindings hold 64 elements, so the ops run split into pieces.
fn split_gpu() -> Option<&'static Device> {
    static SPLIT: std::sync::OnceLock<Option<Device>> = std::sync::OnceLock::new();
    let opts = || convshade::gpu::GpuOptions {
        max_storage_binding: Some(SPLIT_BINDING as u64 * 4),
        ..Default::default()
    };
    let make = || gpu().map(|_| Device::gpu_with(opts()).unwrap());
    SPLIT.get_or_init(make).as_ref()
}

/// A GPU run agrees with the CPU's: the same values, or both refused. On the split device, a
/// call may also be refused because one piece of it cannot be split to fit a binding.
fn agree(c: &Call, cpu: &Outcome, on_gpu: &Outcome, split: bool) {
    if let (true, Ok(_), Err(convshade::Error::TooLarge { .. })) = (split, cpu, on_gpu) {
        return;
    }
    match (cpu, on_gpu) {
        (Ok(a), Ok(b)) => {
            let what = &c.what;
            assert_eq!(a.len(), b.len(), "{what}: gradients on one device only");
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                let array = format!("{what} (array {i}, split {split})");
                assert_close(b, a, 1e-3, 1e-4, &array);
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("{}: the devices disagree (split {split}): cpu {a:?}, gpu {b:?}", c.what),
    }
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() * FAMILIES as u32, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn every_call_is_ok_and_agrees_or_is_a_clear_error(family in 0..FAMILIES, seed in any::<u64>()) {
        check(family, seed);
    }
}

/// Per family, how many of `seeds` seeded calls succeed on `dev` with `keep(call, outputs)`.
fn ok_counts(dev: &Device, seeds: u64, keep: impl Fn(&Call, &[Vec<f32>]) -> bool) -> Vec<usize> {
    let ok = |family, seed| {
        let c = call(family, seed);
        matches!(run(&c, dev), Ok(out) if keep(&c, &out))
    };
    (0..FAMILIES).map(|family| (0..seeds).filter(|&seed| ok(family, seed)).count()).collect()
}

/// The fuzzed calls reach the ops' work, not only their argument checks: per family, at least a
/// fifth of 200 seeded calls succeed on the CPU, and at least one is refused.
#[test]
fn fuzzed_calls_run_the_ops_and_their_refusals() {
    let counts = ok_counts(&Device::cpu(), 200, |_, _| true);
    eprintln!("calls of 200 that succeed, by family: {counts:?}");
    assert!(counts.iter().all(|c| (40..200).contains(c)), "{counts:?}");
}

/// The split device runs fuzzed calls on tensors past its binding, not only refusals: in every
/// family but the losses, of 100 seeded calls, some with an array past 64 elements succeed
/// there.
#[test]
fn fuzzed_calls_run_split_on_small_bindings() {
    let Some(split) = split_gpu() else { return };
    let big = |v: &[f32]| v.len() > SPLIT_BINDING;
    let counts = ok_counts(split, 100, |c, out| {
        c.inputs.iter().any(|(_, v)| big(v)) || out.iter().any(|a| big(a))
    });
    eprintln!("calls of 100 run split, by family: {counts:?}");
    // the loss family's arrays hold at most 30 elements: they never need splitting
    let mut split_families = counts.iter().enumerate().filter(|&(f, _)| f != 8);
    assert!(split_families.all(|(_, &c)| c > 0), "{counts:?}");
}
