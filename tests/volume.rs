//! Volumes: the layers' shapes and state-dict keys, gradients numerically, a small 3-d network
//! forward and backward on the GPU against the CPU, empty batches, and errors naming the op.
//! (Values against PyTorch: the conformance suite's volume cases.)

mod common;

use common::{check_op, gradcheck, randv};
use convshade::nn::{
    AdaptiveAvgPool3d, BatchNorm3d, Conv3d, ConvTranspose3d, Flatten, Linear, MaxPool3d, Module,
    ReLU, Sequential, Upsample3d,
};
use convshade::{
    avg_pool3d, conv3d, conv_transpose3d, max_pool3d, max_pool3d_with_indices, upsample3d,
    AvgPool3dOptions, Conv3dOptions, ConvTranspose3dOptions, Device, Error, MaxPool3dOptions,
    Padding3d, Tensor, Upsample3dMode, Upsample3dSize,
};

fn input(shape: &[usize], seed: u64) -> (Vec<usize>, Vec<f32>) {
    (shape.to_vec(), randv(shape.iter().product(), seed))
}

#[test]
fn layers_have_pytorchs_shapes_and_keys() {
    let dev = Device::cpu();
    let padded = Conv3dOptions { padding: Padding3d::Explicit((1, 1, 1)), ..Default::default() };
    let conv = Conv3d::new(2, 4, (3, 3, 3), padded, true, 1, &dev).unwrap();
    let keys: Vec<String> = conv.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["weight", "bias"]);
    assert_eq!(conv.weight.as_tensor().dims(), &[4, 2, 3, 3, 3]);
    let x = Tensor::rand([2, 2, 4, 6, 6], 3, &dev).unwrap();
    assert_eq!(conv.forward(&x).unwrap().dims(), &[2, 4, 4, 6, 6]);
    let up = ConvTranspose3d::new(
        2,
        3,
        (2, 2, 2),
        ConvTranspose3dOptions { stride: (2, 2, 2), ..Default::default() },
        false,
        2,
        &dev,
    )
    .unwrap();
    assert_eq!(up.weight.as_tensor().dims(), &[2, 3, 2, 2, 2]);
    assert_eq!(up.forward(&x).unwrap().dims(), &[2, 3, 8, 12, 12]);
    let bn = BatchNorm3d::new(2, &dev).unwrap();
    let keys: Vec<String> = bn.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
    assert_eq!(
        MaxPool3d(MaxPool3dOptions::new((2, 2, 2))).forward(&x).unwrap().dims(),
        &[2, 2, 2, 3, 3]
    );
    assert_eq!(AdaptiveAvgPool3d((1, 2, 3)).forward(&x).unwrap().dims(), &[2, 2, 1, 2, 3]);
    let tri = Upsample3d(
        Upsample3dMode::Trilinear { align_corners: false },
        Upsample3dSize::Scale(2.0, 1.5, 0.5),
    );
    assert_eq!(tri.forward(&x).unwrap().dims(), &[2, 2, 8, 9, 3]);
}

#[test]
fn gradients_match_finite_differences() {
    let x = input(&[1, 2, 4, 5, 4], 1);
    let w = input(&[3, 2, 2, 3, 2], 2);
    let b = input(&[3], 3);
    let opts = Conv3dOptions {
        stride: (2, 1, 1),
        padding: Padding3d::Explicit((1, 1, 0)),
        dilation: (1, 1, 2),
        ..Default::default()
    };
    gradcheck(
        &[x.clone(), w.clone(), b],
        &|t| conv3d(&t[0], &t[1], Some(&t[2]), &opts),
        1e-2,
        2e-2,
    );
    let wt = input(&[2, 3, 2, 2, 3], 4);
    let topts = ConvTranspose3dOptions {
        stride: (2, 1, 2),
        padding: (1, 0, 1),
        output_padding: (1, 0, 0),
        ..Default::default()
    };
    gradcheck(&[x.clone(), wt], &|t| conv_transpose3d(&t[0], &t[1], None, &topts), 1e-2, 2e-2);
    let pool = AvgPool3dOptions {
        stride: Some((1, 2, 1)),
        padding: (1, 1, 0),
        count_include_pad: false,
        ceil_mode: true,
        ..AvgPool3dOptions::new((2, 3, 2))
    };
    gradcheck(std::slice::from_ref(&x), &|t| avg_pool3d(&t[0], &pool), 1e-2, 2e-2);
    let tri = Upsample3dMode::Trilinear { align_corners: true };
    gradcheck(&[x], &|t| upsample3d(&t[0], tri, Upsample3dSize::Size(6, 7, 3)), 1e-2, 2e-2);
}

#[test]
fn a_small_volume_network_on_the_gpu_matches_the_cpu() {
    let x = input(&[2, 1, 6, 8, 8], 5);
    let net = |dev: &Device| {
        let same = Conv3dOptions { padding: Padding3d::Same, ..Default::default() };
        let up = ConvTranspose3dOptions { stride: (2, 1, 1), ..Default::default() };
        Sequential::new()
            .push(Conv3d::new(1, 4, (3, 3, 3), same, true, 7, dev).unwrap())
            .push(BatchNorm3d::new(4, dev).unwrap())
            .push(ReLU)
            .push(MaxPool3d(MaxPool3dOptions::new((2, 2, 2))))
            .push(Upsample3d(Upsample3dMode::Nearest, Upsample3dSize::Scale(2.0, 1.0, 1.0)))
            // (2, 4, 6, 4, 4) -> (2, 2, 13, 5, 5)
            .push(ConvTranspose3d::new(4, 2, (3, 2, 2), up, true, 9, dev).unwrap())
            .push(Flatten)
            .push(Linear::new(2 * 13 * 5 * 5, 3, true, 8, dev).unwrap())
    };
    check_op("a 3-d network", &[x], 1e-4, 1e-5, &|t| net(&t[0].device()).forward(&t[0]));
}

#[test]
fn empty_batches_and_bad_arguments() {
    let dev = Device::cpu();
    let w = Tensor::rand([3, 2, 3, 3, 3], 1, &dev).unwrap();
    let empty = Tensor::zeros([0, 2, 4, 4, 4], &dev).unwrap();
    assert_eq!(
        conv3d(&empty, &w, None, &Conv3dOptions::default()).unwrap().dims(),
        &[0, 3, 2, 2, 2]
    );
    let bad = |r: convshade::Result<Tensor>, op: &str| match r {
        Err(Error::Invalid { op: o, .. }) => assert_eq!(o, op),
        other => panic!("{op}: expected Invalid, got {other:?}"),
    };
    let flat = Tensor::rand([1, 2, 4, 4], 2, &dev).unwrap();
    bad(conv3d(&flat, &w, None, &Conv3dOptions::default()), "conv3d");
    let x = Tensor::rand([1, 2, 4, 4, 4], 3, &dev).unwrap();
    let same_s2 =
        Conv3dOptions { padding: Padding3d::Same, stride: (2, 2, 2), ..Default::default() };
    bad(conv3d(&x, &w, None, &same_s2), "conv3d");
    bad(
        conv3d(
            &x,
            &Tensor::rand([3, 5, 3, 3, 3], 1, &dev).unwrap(),
            None,
            &Conv3dOptions::default(),
        ),
        "conv3d",
    );
    let big_pad = MaxPool3dOptions { padding: (2, 0, 0), ..MaxPool3dOptions::new((2, 2, 2)) };
    bad(max_pool3d(&x, &big_pad), "max_pool3d");
    bad(BatchNorm3d::new(2, &dev).unwrap().forward(&flat), "BatchNorm3d");
    bad(upsample3d(&flat, Upsample3dMode::Nearest, Upsample3dSize::Size(2, 2, 2)), "upsample3d");
}

/// An empty volume whose padding alone makes an output: with no depth, the output is the bias
/// and the backward runs, giving a zero weight gradient and the bias's count; with no rows, a
/// 2-d convolution has nothing to slide over and it is an `Err` naming conv3d. On every device
/// (the CPU's own kernels leave both to the composition).
#[test]
fn empty_volumes_padded_into_an_output() {
    let mut devices = vec![Device::cpu()];
    devices.extend(common::gpu());
    for dev in &devices {
        let w = Tensor::ones([2, 1, 1, 1, 1], dev).unwrap().requires_grad_();
        let b = Tensor::from_vec(vec![0.5, -1.5], [2], dev).unwrap().requires_grad_();
        let x = Tensor::zeros([1, 1, 0, 3, 3], dev).unwrap().requires_grad_();
        let opts = Conv3dOptions { padding: Padding3d::Explicit((1, 0, 0)), ..Default::default() };
        let y = conv3d(&x, &w, Some(&b), &opts).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2, 3, 3], "{dev:?}");
        let want: Vec<f32> = [0.5f32, -1.5].iter().flat_map(|&v| vec![v; 18]).collect();
        assert_eq!(y.to_vec().unwrap(), want, "{dev:?}");
        let grads = y.sum_all().unwrap().backward().unwrap();
        // an empty input's gradient is empty, where one is recorded at all
        if let Some(gx) = grads.get(&x) {
            assert_eq!(gx.dims(), x.dims(), "{dev:?}");
        }
        assert_eq!(grads.get(&w).unwrap().to_vec().unwrap(), vec![0.0; 2]);
        assert_eq!(grads.get(&b).unwrap().to_vec().unwrap(), vec![18.0; 2]);
        let rowless = Tensor::zeros([1, 1, 2, 0, 3], dev).unwrap();
        let opts = Conv3dOptions { padding: Padding3d::Explicit((0, 1, 0)), ..Default::default() };
        match conv3d(&rowless, &w, Some(&b), &opts) {
            Err(Error::Invalid { op, .. }) => assert_eq!(op, "conv3d"),
            other => panic!("{dev:?}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn max_pool3d_indices_point_at_the_maxima() {
    let mut devices = vec![Device::cpu()];
    devices.extend(common::gpu());
    for dev in &devices {
        let (shape, v) = input(&[2, 3, 5, 6, 7], 9);
        let x = Tensor::from_vec(v.clone(), shape, dev).unwrap();
        let o = MaxPool3dOptions {
            stride: Some((2, 1, 2)),
            padding: (1, 1, 0),
            dilation: (1, 2, 1),
            ceil_mode: true,
            ..MaxPool3dOptions::new((3, 2, 2))
        };
        let (y, idx) = max_pool3d_with_indices(&x, &o).unwrap();
        assert_eq!(y.to_vec().unwrap(), max_pool3d(&x, &o).unwrap().to_vec().unwrap());
        let (yv, iv) = (y.to_vec().unwrap(), idx.to_vec().unwrap());
        let per_out = yv.len() / 6; // outputs per (n, c) volume
        for (at, (&m, &i)) in yv.iter().zip(&iv).enumerate() {
            let volume = at / per_out;
            assert_eq!(v[volume * 5 * 6 * 7 + i as usize], m, "output {at} on {}", dev.name());
        }
    }
}
