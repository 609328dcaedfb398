//! Receptive fields: the analytic recurrence over window layers against hand-computed values
//! (the tutorials' two 3x3 convolutions then a pool), and against autograd's exact region on
//! dilated, strided and padded stacks, on both devices, including a field past the input.

mod common;

use common::gpu;
use convshade::nn::{
    receptive_field_exact, receptive_fields, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU,
    Sequential, Upsample, Window,
};
use convshade::{
    AvgPool2dOptions, Conv2dOptions, Device, MaxPool2dOptions, UpsampleOptions, UpsampleSize,
};

fn conv(k: usize, opts: Conv2dOptions, seed: u64, dev: &Device) -> Conv2d {
    Conv2d::new(2, 2, k, opts, true, seed, dev).unwrap()
}

#[test]
fn the_tutorials_stack_grows_as_they_compute() {
    let dev = Device::cpu();
    // two 3x3 convolutions: 3, then 5; a 2x2 pool: 6, jump 2; another 3x3: 6 + 2 * 2 = 10
    let net = Sequential::new()
        .push(conv(3, Conv2dOptions::new(), 1, &dev))
        .push(ReLU)
        .push(conv(3, Conv2dOptions::new(), 2, &dev))
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(conv(3, Conv2dOptions::new(), 3, &dev));
    let rows = receptive_fields(&net, [1, 2, 16, 16], &dev).unwrap();
    let sizes: Vec<usize> = rows.iter().map(|r| r.size.0).collect();
    assert_eq!(sizes, [3, 3, 5, 6, 10]);
    let jumps: Vec<usize> = rows.iter().map(|r| r.jump.1).collect();
    assert_eq!(jumps, [1, 1, 1, 2, 2]);
    assert_eq!(rows[4].out, Some((4, 4)));
    assert_eq!(rows[0].out, Some((14, 14)));
    assert_eq!(rows[1].window, Window::Pointwise);
    // output (1, 2) of the last layer sees input rows 2..=11 and columns 4..=13
    assert_eq!(rows[4].region((1, 2), (16, 16)), ((2, 11), (4, 13)));
}

/// Analytic and exact regions agree for every output position of `net`; with `dense`, every
/// position of the box affects the output.
fn agree(net: &Sequential, input: [usize; 4], dev: &Device, dense: bool) {
    let rows = receptive_fields(net, input, dev).unwrap();
    let last = rows.last().unwrap();
    let (oh, ow) = last.out.unwrap();
    for i in 0..oh {
        for j in 0..ow {
            let exact = receptive_field_exact(net, input, &[0, 1, i, j], dev, 1).unwrap();
            let (r, c) = last.region((i, j), (input[2], input[3]));
            assert_eq!(
                (exact.rows, exact.cols),
                (Some(r), Some(c)),
                "output ({i}, {j}) on {}",
                dev.name()
            );
            if dense {
                assert_eq!(exact.positions, (r.1 - r.0 + 1) * (c.1 - c.0 + 1));
            }
        }
    }
}

#[test]
fn analytic_and_exact_agree_on_dilated_strided_and_padded_stacks() {
    let mut devices = vec![Device::cpu()];
    devices.extend(gpu());
    for dev in &devices {
        let dilated = Sequential::new()
            .push(conv(3, Conv2dOptions::new().dilation(2), 1, dev))
            .push(conv(3, Conv2dOptions::new().dilation(3), 2, dev));
        agree(&dilated, [1, 2, 17, 15], dev, false);
        // taps {0, 2, 4} then {0, 3, 6}: 9 of the box's 11 rows (and columns) are reached
        let exact = receptive_field_exact(&dilated, [1, 2, 17, 15], &[0, 0, 2, 2], dev, 1).unwrap();
        assert_eq!((exact.rows, exact.positions), (Some((2, 12)), 81));
        let strided = Sequential::new()
            .push(conv(3, Conv2dOptions::new().stride(2).padding(1), 3, dev))
            .push(conv(3, Conv2dOptions::new().padding(1), 4, dev))
            .push(AvgPool2d(AvgPool2dOptions::new(2).stride(1)));
        agree(&strided, [1, 2, 12, 11], dev, true);
        // three padded 3x3s on a 5x5: a field of 7, past the input, clipped to it
        let past = Sequential::new()
            .push(conv(3, Conv2dOptions::new().padding(1), 5, dev))
            .push(conv(3, Conv2dOptions::new().padding(1), 6, dev))
            .push(conv(3, Conv2dOptions::new().padding(1), 7, dev));
        let rows = receptive_fields(&past, [1, 2, 5, 5], dev).unwrap();
        assert_eq!((rows[2].size, rows[2].start), ((7, 7), (-3, -3)));
        assert_eq!(rows[2].region((2, 2), (5, 5)), ((0, 4), (0, 4)));
        agree(&past, [1, 2, 5, 5], dev, true);
    }
}

#[test]
fn global_layers_see_everything_and_opaque_ones_are_errors() {
    let dev = Device::cpu();
    let net = Sequential::new()
        .push(conv(3, Conv2dOptions::new(), 1, &dev))
        .push(Flatten)
        .push(Linear::new(2 * 6 * 6, 3, true, 2, &dev).unwrap());
    let rows = receptive_fields(&net, [1, 2, 8, 8], &dev).unwrap();
    assert!(rows[1].global && rows[2].global && rows[2].out.is_none());
    assert_eq!(rows[2].region((0, 0), (8, 8)), ((0, 7), (0, 7)));
    let exact = receptive_field_exact(&net, [1, 2, 8, 8], &[0, 1], &dev, 1).unwrap();
    assert_eq!((exact.rows, exact.cols, exact.positions), (Some((0, 7)), Some((0, 7)), 64));
    let up =
        Sequential::new().push(Upsample(UpsampleOptions::nearest(UpsampleSize::Scale(2.0, 2.0))));
    let err = receptive_fields(&up, [1, 1, 4, 4], &dev).unwrap_err().to_string();
    assert!(err.contains("receptive_fields") && err.contains("layer 0"), "{err}");
    let err = receptive_field_exact(&net, [1, 2, 8, 8], &[0, 3], &dev, 1).unwrap_err().to_string();
    assert!(err.contains("outside the output"), "{err}");
}
