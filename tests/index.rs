//! Indexing: slices with steps read and assigned, narrow, select, unsqueeze, squeeze, cat and
//! stack; values against hand-computed ones, gradients numerically, the GPU against the CPU
//! bit for bit (a copy changes no value), and the errors.

mod common;

use common::{check_op, gpu, gradcheck, randv};
use convshade::{cat, stack, AxisSlice, Device, Error, Tensor};

fn t(v: &[f32], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape.to_vec(), dev).unwrap()
}

fn arange(n: usize, shape: &[usize], dev: &Device) -> Tensor {
    t(&(0..n).map(|i| i as f32).collect::<Vec<_>>(), shape, dev)
}

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

#[test]
fn slices_with_steps_read_the_right_elements() {
    for dev in devices() {
        let x = arange(24, &[4, 6], &dev);
        // x[1:4:2, 0:6:3]
        let y = x.slice(&[AxisSlice::new(1, 4, 2), AxisSlice::new(0, 6, 3)]).unwrap();
        assert_eq!(y.dims(), &[2, 2]);
        assert_eq!(y.to_vec().unwrap(), vec![6.0, 9.0, 18.0, 21.0]);
        // x[:, 2:5]: the rows keep their shape
        let y = x.slice(&[AxisSlice::full(4), AxisSlice::range(2, 5)]).unwrap();
        assert_eq!(y.to_vec2().unwrap()[3], vec![20.0, 21.0, 22.0]);
        // x[3:3] is empty, as in PyTorch
        assert_eq!(x.slice(&[AxisSlice::range(3, 3)]).unwrap().dims(), &[0, 6]);
        assert_eq!(x.select(1, 4).unwrap().to_vec().unwrap(), vec![4.0, 10.0, 16.0, 22.0]);
        assert_eq!(
            x.narrow(0, 2, 1).unwrap().to_vec().unwrap(),
            (12..18).map(|v| v as f32).collect::<Vec<_>>()
        );
    }
}

#[test]
fn assigning_into_a_slice_is_the_tutorials_x_colon_2_to_6_equals_0() {
    for dev in devices() {
        // X = ones(6, 8); X[:, 2:6] = 0
        let x = Tensor::ones([6, 8], &dev).unwrap();
        let zero = Tensor::zeros([1], &dev).unwrap();
        let y = x.slice_assign(&[AxisSlice::full(6), AxisSlice::range(2, 6)], &zero).unwrap();
        for row in y.to_vec2().unwrap() {
            assert_eq!(row, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        }
        // y[i, j] = value, one element at a time (the corr2d loop)
        let mut z = Tensor::zeros([2, 2], &dev).unwrap();
        for (i, j, v) in [(0, 0, 19.0), (0, 1, 25.0), (1, 0, 37.0), (1, 1, 43.0)] {
            let s = [AxisSlice::range(i, i + 1), AxisSlice::range(j, j + 1)];
            z = z.slice_assign(&s, &t(&[v], &[], &dev)).unwrap();
        }
        assert_eq!(z.to_vec().unwrap(), vec![19.0, 25.0, 37.0, 43.0]);
    }
}

#[test]
fn gradients_flow_through_slices_and_assignments() {
    let x = (vec![3, 5, 4], randv(60, 1));
    let v = (vec![2, 4], randv(8, 2));
    let sl = [AxisSlice::new(0, 3, 2), AxisSlice::new(1, 5, 3)];
    gradcheck(std::slice::from_ref(&x), &|xs| xs[0].slice(&sl), 1e-2, 1e-2);
    // value (2, 4) broadcast over the region (2, 2, 4)
    gradcheck(&[x.clone(), v.clone()], &|xs| xs[0].slice_assign(&sl, &xs[1]), 1e-2, 1e-2);
    check_op("slice", std::slice::from_ref(&x), 0.0, 0.0, &|xs| xs[0].slice(&sl));
    check_op("slice_assign", &[x.clone(), v], 0.0, 0.0, &|xs| xs[0].slice_assign(&sl, &xs[1]));
    // a region ending in whole axes is one merged axis; a step on the last axis is not
    let tail = [AxisSlice::range(1, 3)];
    check_op("slice_assign rows", &[x.clone(), (vec![5, 4], randv(20, 3))], 0.0, 0.0, &|xs| {
        xs[0].slice_assign(&tail, &xs[1])
    });
    let last = [AxisSlice::full(3), AxisSlice::full(5), AxisSlice::new(1, 4, 2)];
    check_op("slice last axis", &[x], 1e-6, 0.0, &|xs| xs[0].slice(&last)?.exp());
}

#[test]
fn cat_and_stack_join_and_split_gradients() {
    let a = (vec![2, 3], randv(6, 4));
    let b = (vec![2, 1], randv(2, 5));
    let c = (vec![2, 2], randv(4, 6));
    gradcheck(
        &[a.clone(), b.clone(), c.clone()],
        &|xs| cat(&[&xs[0], &xs[1], &xs[2]], 1),
        1e-2,
        1e-2,
    );
    check_op("cat", &[a.clone(), b, c], 0.0, 0.0, &|xs| cat(&[&xs[0], &xs[1], &xs[2]], 1));
    // along the first axis: the parts' elements one after another
    let rows = [(vec![1, 3], randv(3, 8)), (vec![3, 3], randv(9, 9)), (vec![0, 3], vec![])];
    gradcheck(&rows[..2], &|xs| cat(&[&xs[0], &xs[1]], 0), 1e-2, 1e-2);
    check_op("cat rows", &rows, 0.0, 0.0, &|xs| cat(&[&xs[0], &xs[1], &xs[2]], 0));
    let a2 = (vec![2, 3], randv(6, 7));
    gradcheck(&[a.clone(), a2.clone()], &|xs| stack(&[&xs[0], &xs[1]], 1), 1e-2, 1e-2);
    let cpu = Device::cpu();
    let x = arange(4, &[2, 2], &cpu);
    let s = stack(&[&x, &x.mul_scalar(10.0).unwrap()], 0).unwrap();
    assert_eq!(s.dims(), &[2, 2, 2]);
    assert_eq!(s.to_vec().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 0.0, 10.0, 20.0, 30.0]);
    let c = cat(&[&x, &x], 0).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]);
    assert_eq!(x.unsqueeze(2).unwrap().dims(), &[2, 2, 1]);
    assert_eq!(x.unsqueeze(2).unwrap().squeeze(2).unwrap().dims(), &[2, 2]);
    assert_eq!(x.squeeze(0).unwrap().dims(), &[2, 2]);
}

#[test]
fn bad_indices_are_errors_naming_the_op() {
    let x = arange(12, &[3, 4], &Device::cpu());
    let bad = |r: convshade::Result<Tensor>, op: &str| match r {
        Err(Error::Invalid { op: o, .. }) => assert_eq!(o, op),
        other => panic!("{op}: expected Invalid, got {other:?}"),
    };
    bad(x.slice(&[AxisSlice::range(2, 5)]), "slice");
    bad(x.slice(&[AxisSlice { start: 0, len: 1, step: 0 }]), "slice");
    bad(x.slice(&[AxisSlice::full(3), AxisSlice::full(4), AxisSlice::full(1)]), "slice");
    bad(
        x.slice_assign(&[AxisSlice::range(0, 2)], &Tensor::zeros([3], &Device::cpu()).unwrap()),
        "broadcast_to",
    );
    bad(x.select(0, 3), "select");
    bad(x.unsqueeze(3), "unsqueeze");
    bad(cat(&[&x, &arange(3, &[3, 1], &Device::cpu())], 0), "cat");
    bad(cat(&[], 0), "cat");
    bad(stack(&[&x, &x.reshape([4, 3]).unwrap()], 0), "stack");
    if let Some(g) = gpu() {
        let y = arange(12, &[3, 4], &g);
        match x.slice_assign(&[AxisSlice::range(0, 1)], &y.narrow(0, 0, 1).unwrap()) {
            Err(Error::DeviceMismatch { op, .. }) => assert_eq!(op, "slice_assign"),
            other => panic!("expected DeviceMismatch, got {other:?}"),
        }
    }
}
