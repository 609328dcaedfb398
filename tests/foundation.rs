//! Tensors, devices, elementwise ops, reductions and matmul: CPU semantics by hand, GPU against
//! CPU on random shapes, and clear errors for bad input.

mod common;

use common::{assert_close, check_op, gpu, randv};
use convshade::{Device, Error, Tensor};
use proptest::prelude::*;

fn cpu() -> Device {
    Device::cpu()
}

#[test]
fn constructors_and_shapes() {
    let d = cpu();
    let t = Tensor::arange(0.0, 6.0, &d).unwrap().reshape([2, 3]).unwrap();
    assert_eq!(t.dims(), &[2, 3]);
    assert_eq!(t.to_vec2().unwrap(), vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]);
    assert_eq!(Tensor::full([2, 2], 7.0, &d).unwrap().to_vec().unwrap(), vec![7.0; 4]);
    let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
    let t = Tensor::from_ndarray(&a, &d).unwrap();
    assert_eq!(t.to_ndarray().unwrap(), a.into_dyn());
    // Seeded random streams are reproducible and differ between seeds.
    let r1 = Tensor::randn([100], 7, &d).unwrap().to_vec().unwrap();
    let r2 = Tensor::randn([100], 7, &d).unwrap().to_vec().unwrap();
    let r3 = Tensor::randn([100], 8, &d).unwrap().to_vec().unwrap();
    assert_eq!(r1, r2);
    assert_ne!(r1, r3);
    let mean = r1.iter().sum::<f32>() / 100.0;
    assert!(mean.abs() < 0.3, "randn mean {mean}");
    let u = Tensor::rand([1000], 1, &d).unwrap().to_vec().unwrap();
    assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
}

#[test]
fn elementwise_semantics_on_cpu() {
    let d = cpu();
    let a = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.0], [2, 2], &d).unwrap();
    let b = Tensor::from_vec(vec![10.0, 20.0], [2], &d).unwrap();
    assert_eq!(a.add(&b).unwrap().to_vec().unwrap(), vec![11.0, 18.0, 13.0, 20.0]);
    let col = Tensor::from_vec(vec![1.0, 2.0], [2, 1], &d).unwrap();
    assert_eq!(a.mul(&col).unwrap().to_vec().unwrap(), vec![1.0, -2.0, 6.0, 0.0]);
    assert_eq!(a.relu().unwrap().to_vec().unwrap(), vec![1.0, 0.0, 3.0, 0.0]);
    assert_eq!(a.neg().unwrap().to_vec().unwrap(), vec![-1.0, 2.0, -3.0, -0.0]);
    assert_eq!(a.square().unwrap().to_vec().unwrap(), vec![1.0, 4.0, 9.0, 0.0]);
    assert_eq!(a.sum_all().unwrap().to_scalar().unwrap(), 2.0);
    assert_eq!(a.sum_axis(0, false).unwrap().to_vec().unwrap(), vec![4.0, -2.0]);
    assert_eq!(a.sum_axis(1, true).unwrap().dims(), &[2, 1]);
    assert_eq!(a.mean_all().unwrap().to_scalar().unwrap(), 0.5);
    let e = Tensor::from_vec(vec![0.0, 1.0], [2], &d).unwrap().exp().unwrap().log().unwrap();
    assert_close(&e.to_vec().unwrap(), &[0.0, 1.0], 0.0, 1e-6, "log(exp)");
    // per-channel operand (1, c, 1, 1) on (n, c, h, w)
    let x = Tensor::ones([2, 3, 2, 2], &d).unwrap();
    let bias = Tensor::from_vec(vec![1.0, 2.0, 3.0], [1, 3, 1, 1], &d).unwrap();
    let y = x.add(&bias).unwrap().to_vec().unwrap();
    assert_eq!(&y[..4], &[2.0; 4]);
    assert_eq!(&y[8..12], &[4.0; 4]);
}

#[test]
fn matmul_semantics_on_cpu() {
    let d = cpu();
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], &d).unwrap();
    let b = Tensor::from_vec(vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [3, 2], &d).unwrap();
    assert_eq!(
        a.matmul(&b).unwrap().to_vec2().unwrap(),
        vec![vec![58.0, 64.0], vec![139.0, 154.0]]
    );
    // a^T a via the transposed-operand path equals the explicit transpose.
    let ata = a.matmul_t(&a, true, false).unwrap();
    let explicit = a.transpose(0, 1).unwrap().matmul(&a).unwrap();
    assert_eq!(ata.to_vec().unwrap(), explicit.to_vec().unwrap());
    assert_eq!(ata.dims(), &[3, 3]);
}

#[test]
fn autograd_matches_hand_derivatives() {
    let d = cpu();
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3], &d).unwrap().requires_grad_();
    // loss = sum(x^2 * 3 + x)  => dloss/dx = 6x + 1
    let loss = x.square().unwrap().mul_scalar(3.0).unwrap().add(&x).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![7.0, 13.0, 19.0]);
    // relu gradient at exactly 0 is 0
    let z = Tensor::from_vec(vec![-1.0, 0.0, 2.0], [3], &d).unwrap().requires_grad_();
    let g = z.relu().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&z).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 1.0]);
}

#[test]
fn gradients_match_finite_differences() {
    let s = vec![3, 4];
    let inputs =
        vec![(s.clone(), randv(12, 1)), (vec![4], randv(4, 2).iter().map(|v| v + 2.0).collect())];
    common::gradcheck(
        &inputs,
        &|t| t[0].mul(&t[1])?.div(&t[1].add_scalar(1.0)?)?.tanh(),
        1e-2,
        2e-2,
    );
    let mm = vec![(vec![2, 3, 4], randv(24, 3)), (vec![4, 5], randv(20, 4))];
    common::gradcheck(&mm, &|t| t[0].matmul(&t[1])?.sigmoid(), 1e-2, 2e-2);
    let p = vec![(vec![2, 3, 4], randv(24, 5))];
    common::gradcheck(&p, &|t| t[0].permute(&[2, 0, 1])?.sum_axis(1, false)?.square(), 1e-2, 2e-2);
}

#[test]
fn bad_input_gives_clear_errors() {
    let d = cpu();
    let msg = |r: convshade::Result<Tensor>| r.unwrap_err().to_string();
    assert!(msg(Tensor::from_vec(vec![1.0; 5], [2, 3], &d)).contains("from_vec"));
    assert!(msg(Tensor::zeros([usize::MAX, 2], &d)).contains("too many elements"));
    let a = Tensor::ones([2, 3], &d).unwrap();
    let b = Tensor::ones([4], &d).unwrap();
    let e = msg(a.add(&b));
    assert!(e.contains("add") && e.contains("[2, 3]") && e.contains("[4]"), "{e}");
    assert!(msg(a.matmul(&a)).contains("inner dimensions"));
    assert!(msg(a.reshape([4, 2])).contains("reshape"));
    assert!(msg(a.sum_axis(2, false)).contains("axis 2"));
    assert!(msg(a.permute(&[0, 0])).contains("permute"));
    assert!(
        msg(Tensor::ones([3], &d).unwrap().to_scalar().map(|_| a.clone())).contains("not a scalar")
    );
    assert!(matches!(Device::from_name("tpu"), Err(Error::Invalid { .. })));
    if let Some(g) = gpu() {
        let bg = Tensor::ones([2, 3], &g).unwrap();
        let e = a.add(&bg).unwrap_err();
        assert!(matches!(e, Error::DeviceMismatch { op: "add", .. }), "{e}");
        assert!(e.to_string().contains("different devices"));
        assert!(matches!(
            a.matmul(&bg.transpose(0, 1).unwrap()),
            Err(Error::DeviceMismatch { .. })
        ));
    }
}

#[test]
fn gpu_roundtrip_and_constructors() {
    let Some(g) = gpu() else { return };
    let v = randv(1000, 3);
    let t = Tensor::from_vec(v.clone(), [10, 100], &g).unwrap();
    assert_eq!(t.to_vec().unwrap(), v);
    assert_eq!(Tensor::full([3, 5], 2.5, &g).unwrap().to_vec().unwrap(), vec![2.5; 15]);
    let back = t.to_device(&Device::cpu()).unwrap();
    assert_eq!(back.to_vec().unwrap(), v);
    // gradients cross devices: d/dx sum(to_cpu(x)^2) = 2x, on the GPU
    let x = t.requires_grad_();
    let grads = x
        .to_device(&Device::cpu())
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = grads.get(&x).unwrap();
    assert!(gx.device().is_gpu());
    assert_eq!(gx.to_vec().unwrap(), v.iter().map(|e| 2.0 * e).collect::<Vec<_>>());
    // buffers return to the pool and are reused without corrupting live tensors
    for i in 0..20 {
        let tmp = Tensor::full([10, 100], i as f32, &g).unwrap();
        assert_eq!(tmp.to_vec().unwrap()[999], i as f32);
    }
    assert_eq!(t.to_vec().unwrap(), v);
}

#[test]
fn gpu_large_elementwise_spans_2d_grid() {
    let Some(g) = gpu() else { return };
    // 70_000 * 256 threads > 65_535 workgroups in x: the dispatch spills into y.
    let n = 65_536 * 256 + 1000;
    let x = Tensor::full([n], 1.5, &g).unwrap();
    let y = x.mul_scalar(2.0).unwrap().add_scalar(1.0).unwrap();
    let v = y.to_vec().unwrap();
    assert!(v.iter().all(|&e| e == 4.0));
    assert_eq!(y.sum_all().unwrap().to_scalar().unwrap(), 4.0 * n as f32);
}

fn dims_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![Just(1usize), 2usize..8, Just(13usize), Just(17usize)],
        1..=max_rank,
    )
    .prop_filter("not too big", |d| d.iter().product::<usize>() <= 20_000)
}

/// `b`'s shape: a broadcastable suffix of `a` with some axes set to 1.
fn broadcast_of(a: &[usize], keep: usize, ones_mask: u32) -> Vec<usize> {
    let keep = keep.min(a.len()).max(1);
    a[a.len() - keep..]
        .iter()
        .enumerate()
        .map(|(i, &d)| if ones_mask >> i & 1 == 1 { 1 } else { d })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn gpu_unary_ops_match_cpu(dims in dims_strategy(4), seed in 0u64..1000) {
        let n: usize = dims.iter().product();
        let v = randv(n, seed);
        let inp = vec![(dims.clone(), v.clone())];
        check_op("relu", &inp, 1e-5, 1e-6, &|t| t[0].relu());
        check_op("leaky_relu", &inp, 1e-5, 1e-6, &|t| t[0].leaky_relu(0.1));
        check_op("sigmoid", &inp, 1e-5, 1e-6, &|t| t[0].sigmoid());
        check_op("tanh", &inp, 1e-5, 1e-6, &|t| t[0].tanh());
        check_op("exp", &inp, 1e-5, 1e-6, &|t| t[0].exp());
        check_op("square/neg/scalars", &inp, 1e-5, 1e-6, &|t| t[0].square()?.neg()?.mul_scalar(3.0)?.add_scalar(0.5));
        let pos = vec![(dims.clone(), v.iter().map(|x| x.abs() + 0.1).collect())];
        check_op("log/sqrt/powf", &pos, 1e-4, 1e-5, &|t| t[0].log()?.add(&t[0].sqrt()?)?.add(&t[0].powf(1.5)?));
    }

    #[test]
    fn gpu_broadcast_binary_ops_match_cpu(dims in dims_strategy(4), keep in 1usize..5, mask in 0u32..16, seed in 0u64..1000) {
        let bd = broadcast_of(&dims, keep, mask);
        let a = randv(dims.iter().product(), seed);
        let b: Vec<f32> = randv(bd.iter().product(), seed + 1).iter().map(|v| v + 3.0).collect();
        let inp = vec![(dims.clone(), a), (bd.clone(), b)];
        check_op("add", &inp, 1e-5, 1e-5, &|t| t[0].add(&t[1]));
        check_op("sub (swapped)", &inp, 1e-5, 1e-5, &|t| t[1].sub(&t[0]));
        check_op("mul", &inp, 1e-5, 1e-5, &|t| t[0].mul(&t[1]));
        check_op("div", &inp, 1e-4, 1e-5, &|t| t[0].div(&t[1]));
    }

    #[test]
    fn gpu_reductions_match_cpu(dims in dims_strategy(4), axis in 0usize..4, seed in 0u64..1000) {
        let axis = axis % dims.len();
        let inp = vec![(dims.clone(), randv(dims.iter().product(), seed))];
        check_op("sum_axis", &inp, 1e-5, 1e-5, &|t| t[0].sum_axis(axis, false));
        check_op("mean_axis keepdim", &inp, 1e-5, 1e-5, &|t| t[0].mean_axis(axis, true));
        check_op("sum_all", &inp, 1e-5, 1e-4, &|t| t[0].sum_all()?.reshape([1]));
    }

    #[test]
    fn gpu_matmul_matches_cpu(
        m in prop_oneof![Just(1usize), 2usize..40, Just(64usize), Just(65usize), Just(130usize)],
        k in prop_oneof![Just(1usize), 2usize..40, Just(16usize), Just(17usize), Just(100usize)],
        n in prop_oneof![Just(1usize), 2usize..40, Just(64usize), Just(67usize), Just(129usize)],
        batch in prop_oneof![Just(0usize), 1usize..4],
        ta in any::<bool>(), tb in any::<bool>(), seed in 0u64..1000,
    ) {
        let shape = |r: usize, c: usize, t: bool| {
            let (r, c) = if t { (c, r) } else { (r, c) };
            if batch == 0 { vec![r, c] } else { vec![batch, r, c] }
        };
        let (sa, sb) = (shape(m, k, ta), shape(k, n, tb));
        let inp = vec![
            (sa.clone(), randv(sa.iter().product(), seed)),
            (sb.clone(), randv(sb.iter().product(), seed + 7)),
        ];
        check_op("matmul", &inp, 1e-4, 1e-4, &|t| t[0].matmul_t(&t[1], ta, tb));
        // a 2-d rhs shared by every batch
        let sb2 = vec![k, n];
        let inp2 = vec![(sa.clone(), inp[0].1.clone()), (sb2.clone(), randv(k * n, seed + 9))];
        check_op("matmul shared rhs", &inp2, 1e-4, 1e-4, &|t| t[0].matmul_t(&t[1], ta, false));
    }

    #[test]
    fn gpu_shape_ops_match_cpu(dims in dims_strategy(4), seed in 0u64..1000, rot in 0usize..4) {
        let r = dims.len();
        let perm: Vec<usize> = (0..r).map(|i| (i + rot) % r).collect();
        let inp = vec![(dims.clone(), randv(dims.iter().product(), seed))];
        check_op("permute", &inp, 0.0, 0.0, &|t| t[0].permute(&perm));
        let axes: Vec<usize> = if r > 1 { vec![r - 1, 0] } else { vec![0] };
        check_op("flip", &inp, 0.0, 0.0, &|t| t[0].flip(&axes));
    }
}

#[test]
fn nan_and_zero_edge_cases_follow_pytorch() {
    for d in std::iter::once(cpu()).chain(gpu()) {
        let x = Tensor::from_vec(vec![f32::NAN, -1.0, 2.0], [3], &d).unwrap().requires_grad_();
        let y = x.relu().unwrap();
        let v = y.to_vec().unwrap();
        assert!(v[0].is_nan() && v[1] == 0.0 && v[2] == 2.0, "{d:?}: {v:?}");
        let g = y.sum_all().unwrap().backward().unwrap();
        let gv = g.get(&x).unwrap().to_vec().unwrap();
        assert_eq!(gv, vec![1.0, 0.0, 1.0], "{d:?}: relu passes the gradient through NaN");
        let z = Tensor::from_vec(vec![0.0, 2.0], [2], &d).unwrap().requires_grad_();
        let p0 = z.powf(0.0).unwrap();
        assert_eq!(p0.to_vec().unwrap(), vec![1.0, 1.0], "{d:?}");
        let g = p0.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&z).unwrap().to_vec().unwrap(), vec![0.0, 0.0], "{d:?}");
        let p1 = z.powf(1.0).unwrap();
        let g = p1.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&z).unwrap().to_vec().unwrap(), vec![1.0, 1.0], "{d:?}");
        assert_eq!(z.powf(-1.0).unwrap().to_vec().unwrap(), vec![f32::INFINITY, 0.5], "{d:?}");
        let cube = Tensor::from_vec(vec![-2.0], [1], &d).unwrap().powf(3.0).unwrap();
        assert_eq!(cube.to_vec().unwrap(), vec![-8.0], "{d:?}");
        let t =
            Tensor::from_vec(vec![1e-8, -3e-5], [2], &d).unwrap().tanh().unwrap().to_vec().unwrap();
        assert_close(&t, &[1e-8, -3e-5], 1e-6, 0.0, "tanh keeps relative precision near 0");
    }
}

#[test]
fn matmul_broadcasts_a_batch_of_one() {
    let a = (vec![1, 2, 3], randv(6, 1));
    let b = (vec![4, 3, 5], randv(60, 2));
    let y = {
        let d = cpu();
        let ta = Tensor::from_vec(a.1.clone(), a.0.clone(), &d).unwrap();
        let tb = Tensor::from_vec(b.1.clone(), b.0.clone(), &d).unwrap();
        ta.matmul(&tb).unwrap()
    };
    assert_eq!(y.dims(), &[4, 2, 5]);
    common::gradcheck(&[a.clone(), b.clone()], &|t| t[0].matmul(&t[1]), 1e-2, 2e-2);
    check_op("batch-1 broadcast matmul", &[a, b], 1e-4, 1e-5, &|t| t[0].matmul(&t[1]));
}

#[test]
fn autograd_edge_cases() {
    let d = cpu();
    // a panic inside no_grad must not leave gradients switched off
    let r = std::panic::catch_unwind(|| convshade::no_grad(|| panic!("inside no_grad")));
    assert!(r.is_err());
    let x = Tensor::ones([2], &d).unwrap().requires_grad_();
    assert!(x.square().unwrap().requires_grad());
    // only leaf gradients are kept; a tensor used twice accumulates both paths
    let y = x.square().unwrap();
    let g = y.add(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(&y).is_none());
    assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![3.0, 3.0]);
    assert_eq!(g.len(), 1);
    let e = Tensor::arange(0.0, 3.0, &d).unwrap().flip(&[0, 0]).unwrap_err().to_string();
    assert!(e.contains("flip") && e.contains("more than once"), "{e}");
}

/// A binary op's backward computes only the gradients of inputs that record one: the other is
/// absent from the store, and the one asked for is still right (d(a/b)/db = -a/b^2).
#[test]
fn binary_backward_computes_only_the_gradients_asked_for() {
    let a = Tensor::from_vec(vec![1.0, -2.0, 3.0, 4.0], [2, 2], &cpu()).unwrap();
    let b = Tensor::from_vec(vec![2.0, 4.0, -1.0, 0.5], [2, 2], &cpu()).unwrap();
    let (av, bv) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    let ga = a.requires_grad_();
    let grads = ga.mul(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&b).is_none());
    assert_eq!(grads.get(&ga).unwrap().to_vec().unwrap(), bv);
    let gb = b.requires_grad_();
    let grads = a.div(&gb).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&a).is_none());
    let want: Vec<f32> = av.iter().zip(&bv).map(|(x, y)| -x / (y * y)).collect();
    assert_close(&grads.get(&gb).unwrap().to_vec().unwrap(), &want, 1e-6, 0.0, "d(a/b)/db");
}

/// `backward_with(up)` gives the gradients of `sum(y * up)`, and refuses a gradient of another
/// shape.
#[test]
fn backward_with_seeds_the_upstream_gradient() {
    let x = Tensor::from_vec(randv(12, 5), [3, 4], &cpu()).unwrap().requires_grad_();
    let up = Tensor::from_vec(randv(12, 6), [3, 4], &cpu()).unwrap();
    let y = x.mul(&x).unwrap();
    let direct = y.backward_with(&up).unwrap();
    let via_sum = y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
    let got = direct.get(&x).unwrap().to_vec().unwrap();
    assert_eq!(got, via_sum.get(&x).unwrap().to_vec().unwrap());
    let want: Vec<f32> =
        (x.to_vec().unwrap().iter().zip(up.to_vec().unwrap())).map(|(a, u)| 2.0 * a * u).collect();
    assert_close(&got, &want, 1e-6, 0.0, "d(x^2)/dx * up");
    let Err(err) = y.backward_with(&Tensor::zeros([4, 3], &cpu()).unwrap()) else {
        panic!("a (4, 3) gradient for a (3, 4) tensor was accepted");
    };
    assert!(err.to_string().contains("backward_with"), "{err}");
}
