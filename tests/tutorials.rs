//! The numbers the classic conv-net tutorials publish, reproduced on every device. Values not
//! printed by the tutorials themselves were computed with PyTorch's `F.conv2d` (torch 2.15).

mod common;

use convshade::{conv2d, corr2d, one_hot, Conv2dOptions, Device, Padding, Result, Tensor, Var};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

fn m(rows: &[&[f32]], d: &Device) -> Tensor {
    let (r, c) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), [r, c], d).unwrap()
}

#[test]
fn a_conv_layer_adds_its_bias() {
    // corr2d(arange(9), arange(4)) + bias 1
    for d in devices() {
        let x = Tensor::arange(0.0, 9.0, &d).unwrap().reshape([1, 1, 3, 3]).unwrap();
        let k = Tensor::arange(0.0, 4.0, &d).unwrap().reshape([1, 1, 2, 2]).unwrap();
        let b = Tensor::ones([1], &d).unwrap();
        let y = conv2d(&x, &k, Some(&b), &Conv2dOptions::default()).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![20.0, 26.0, 38.0, 44.0], "{d:?}");
    }
}

#[test]
fn vertical_horizontal_and_diagonal_edges() {
    for d in devices() {
        // vertical: columns 2..6 black, kernel [2, -2]
        let mut img = vec![1.0f32; 48];
        for r in 0..6 {
            for c in 2..6 {
                img[r * 8 + c] = 0.0;
            }
        }
        let x = Tensor::from_vec(img, [6, 8], &d).unwrap();
        let y = corr2d(&x, &m(&[&[2.0, -2.0]], &d)).unwrap().to_vec2().unwrap();
        assert!(y.iter().all(|r| r == &[0.0, 2.0, 0.0, 0.0, 0.0, -2.0, 0.0]), "{d:?}");
        // horizontal: rows 2..4 black, kernel [[2], [-2]]
        let mut img = vec![1.0f32; 48];
        img[16..32].iter_mut().for_each(|v| *v = 0.0);
        let x = Tensor::from_vec(img, [6, 8], &d).unwrap();
        let y = corr2d(&x, &m(&[&[2.0], &[-2.0]], &d)).unwrap().to_vec2().unwrap();
        let want = [0.0, 2.0, 0.0, -2.0, 0.0];
        for (row, w) in y.iter().zip(want) {
            assert_eq!(row, &vec![w; 8], "{d:?}");
        }
        // diagonal: eye(5) with [[2, -2], [2, -2]]
        let mut eye = vec![0.0f32; 25];
        (0..5).for_each(|i| eye[i * 6] = 1.0);
        let x = Tensor::from_vec(eye, [5, 5], &d).unwrap();
        let y = corr2d(&x, &m(&[&[2.0, -2.0], &[2.0, -2.0]], &d)).unwrap();
        assert_eq!(
            y.to_vec2().unwrap(),
            vec![
                vec![0.0, 2.0, 0.0, 0.0],
                vec![-2.0, 0.0, 2.0, 0.0],
                vec![0.0, -2.0, 0.0, 2.0],
                vec![0.0, 0.0, -2.0, 0.0]
            ]
        );
    }
}

#[test]
fn a_5x5_image_and_a_2x2_kernel() {
    for d in devices() {
        let x = m(
            &[
                &[2.0, 1.0, 0.0, 2.0, 3.0],
                &[9.0, 5.0, 4.0, 2.0, 0.0],
                &[2.0, 3.0, 4.0, 5.0, 6.0],
                &[1.0, 2.0, 3.0, 1.0, 0.0],
                &[0.0, 4.0, 4.0, 2.0, 8.0],
            ],
            &d,
        );
        let k = m(&[&[0.0, 1.0], &[2.0, 3.0]], &d);
        let y = corr2d(&x, &k).unwrap().to_vec().unwrap();
        let want = [34., 22., 16., 7., 18., 22., 25., 28., 11., 17., 14., 8., 14., 23., 15., 28.];
        assert_eq!(y, want.to_vec(), "{d:?}");
    }
}

#[test]
fn learning_a_2_minus_2_kernel() {
    // The MXNet tutorial learns [2, -2] in 10 steps of lr 3e-2 and ends at [1.98, -1.97].
    for d in devices() {
        let mut img = vec![1.0f32; 48];
        for r in 0..6 {
            for c in 2..6 {
                img[r * 8 + c] = 0.0;
            }
        }
        let x = Tensor::from_vec(img, [1, 1, 6, 8], &d).unwrap();
        let k = Tensor::from_vec(vec![2.0, -2.0], [1, 1, 1, 2], &d).unwrap();
        let y = conv2d(&x, &k, None, &Conv2dOptions::default()).unwrap();
        let w = Var::new(&Tensor::rand([1, 1, 1, 2], 7, &d).unwrap().sub_scalar(0.5).unwrap());
        let mut last = f32::INFINITY;
        for _ in 0..10 {
            let loss = conv2d(&x, &w.as_tensor(), None, &Conv2dOptions::default())
                .unwrap()
                .sub(&y)
                .unwrap()
                .square()
                .unwrap()
                .sum_all()
                .unwrap();
            let g = loss.backward().unwrap();
            let step = g.get_var(&w).unwrap().mul_scalar(3e-2).unwrap();
            w.set(&w.as_tensor().sub(&step).unwrap()).unwrap();
            last = loss.to_scalar().unwrap();
        }
        let k = w.as_tensor().to_vec().unwrap();
        assert!((k[0] - 2.0).abs() < 0.1 && (k[1] + 2.0).abs() < 0.1, "{d:?}: {k:?}");
        assert!(last < 0.5, "{d:?}: final loss {last}");
    }
}

#[test]
fn multiple_input_and_output_channels() {
    for d in devices() {
        let x = Tensor::from_vec(
            vec![0., 1., 2., 3., 4., 5., 6., 7., 8., 1., 2., 3., 4., 5., 6., 7., 8., 9.],
            [1, 2, 3, 3],
            &d,
        )
        .unwrap();
        let k = Tensor::from_vec(vec![0., 1., 2., 3., 1., 2., 3., 4.], [1, 2, 2, 2], &d).unwrap();
        // sum over input channels of the per-channel cross-correlations
        let y = conv2d(&x, &k, None, &Conv2dOptions::default()).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![56.0, 72.0, 104.0, 120.0], "{d:?}");
        // three output channels: K, K + 1, K + 2
        let k3 = Tensor::from_vec(
            [
                k.to_vec().unwrap(),
                k.add_scalar(1.0).unwrap().to_vec().unwrap(),
                k.add_scalar(2.0).unwrap().to_vec().unwrap(),
            ]
            .concat(),
            [3, 2, 2, 2],
            &d,
        )
        .unwrap();
        let y = conv2d(&x, &k3, None, &Conv2dOptions::default()).unwrap();
        assert_eq!(
            y.to_vec().unwrap(),
            vec![56., 72., 104., 120., 76., 100., 148., 172., 96., 128., 192., 224.],
            "{d:?}"
        );
        // a 1x1 convolution is a matrix product over channels
        let x = Tensor::randn([1, 3, 3, 3], 1, &d).unwrap();
        let k = Tensor::randn([2, 3, 1, 1], 2, &d).unwrap();
        let y = conv2d(&x, &k, None, &Conv2dOptions::default()).unwrap();
        let mm = k.reshape([2, 3]).unwrap().matmul(&x.reshape([3, 9]).unwrap()).unwrap();
        common::close(&y.reshape([2, 9]).unwrap(), &mm, 1e-5, 1e-6, "1x1 conv");
    }
}

#[test]
fn padding_and_stride_shapes() -> Result<()> {
    let d = Device::cpu();
    let x = Tensor::rand([1, 1, 8, 8], 0, &d)?;
    let shape = |k: (usize, usize), p: (usize, usize), s: (usize, usize)| -> Result<Vec<usize>> {
        let w = Tensor::rand([1, 1, k.0, k.1], 1, &d)?;
        let o = Conv2dOptions::new().padding(Padding::from(p)).stride(s);
        Ok(conv2d(&x, &w, None, &o)?.dims()[2..].to_vec())
    };
    assert_eq!(shape((3, 3), (1, 1), (1, 1))?, vec![8, 8]);
    assert_eq!(shape((5, 3), (2, 1), (1, 1))?, vec![8, 8]);
    assert_eq!(shape((3, 3), (1, 1), (2, 2))?, vec![4, 4]);
    assert_eq!(shape((3, 5), (0, 1), (3, 4))?, vec![2, 2]);
    Ok(())
}

#[test]
fn a_lenet_style_network_runs_forward_and_backward_on_every_device() {
    use convshade::nn::{AvgPool2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential, Sigmoid};
    let mut losses = vec![];
    for d in devices() {
        // LeNet: conv 5x5 pad 2 -> sigmoid -> avg pool -> conv 5x5 -> sigmoid -> avg pool -> linear
        let net = Sequential::new()
            .push(Conv2d::new(1, 6, 5, Conv2dOptions::new().padding(2), true, 1, &d).unwrap())
            .push(Sigmoid)
            .push(AvgPool2d(convshade::AvgPool2dOptions::new(2)))
            .push(Conv2d::new(6, 16, 5, Conv2dOptions::new(), true, 2, &d).unwrap())
            .push(Sigmoid)
            .push(AvgPool2d(convshade::AvgPool2dOptions::new(2)))
            .push(Flatten)
            .push(Linear::new(16 * 5 * 5, 120, true, 3, &d).unwrap())
            .push(ReLU)
            .push(Linear::new(120, 10, true, 4, &d).unwrap());
        let x = Tensor::rand([2, 1, 28, 28], 5, &d).unwrap();
        let logits = net.forward(&x).unwrap();
        assert_eq!(logits.dims(), &[2, 10]);
        let loss = convshade::cross_entropy(&logits, &one_hot(&[3, 7], 10, &d).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for p in net.parameters() {
            let g = grads.get_var(&p).expect("every parameter gets a gradient");
            assert_eq!(g.dims(), p.as_tensor().dims());
        }
        losses.push(loss.to_scalar().unwrap());
    }
    // same seeds, same network: every device computes the same loss
    for l in &losses[1..] {
        assert!((l - losses[0]).abs() < 1e-4, "{losses:?}");
    }
}

#[test]
fn learning_the_edge_kernel_by_gradient_descent() {
    for dev in devices() {
        let mut img = vec![1.0f32; 48];
        for r in 0..6 {
            for c in 2..6 {
                img[r * 8 + c] = 0.0;
            }
        }
        let x = Tensor::from_vec(img, [1, 1, 6, 8], &dev).unwrap();
        let k = Tensor::from_vec(vec![1.0, -1.0], [1, 1, 1, 2], &dev).unwrap();
        let target = conv2d(&x, &k, None, &Conv2dOptions::default()).unwrap();
        let kernel =
            Var::new(&Tensor::rand([1, 1, 1, 2], 42, &dev).unwrap().sub_scalar(0.5).unwrap());
        let mut losses = vec![];
        for _ in 0..10 {
            let pred = conv2d(&x, &kernel.as_tensor(), None, &Conv2dOptions::default()).unwrap();
            let loss = pred.sub(&target).unwrap().square().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let step = grads.get_var(&kernel).unwrap().mul_scalar(3e-2).unwrap();
            kernel.set(&kernel.as_tensor().sub(&step).unwrap()).unwrap();
            losses.push(loss.to_scalar().unwrap());
        }
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{dev:?}: loss not decreasing: {losses:?}");
        let learned = kernel.as_tensor().to_vec().unwrap();
        assert!(
            (learned[0] - 1.0).abs() < 0.05 && (learned[1] + 1.0).abs() < 0.05,
            "{dev:?}: {learned:?}"
        );
    }
}
