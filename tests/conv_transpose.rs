//! conv_transpose2d against its scatter definition computed here in f64 (stride, padding,
//! output_padding, dilation, groups, bias), numerical gradients, GPU against CPU, and errors.

mod common;

use common::{assert_close, check_op, gpu, gradcheck, randv};
use convshade::nn::{ConvTranspose2d, Module};
use convshade::{conv_transpose2d, ConvTranspose2dOptions, Device, Tensor};

type Case = (&'static str, [usize; 4], [usize; 4], ConvTranspose2dOptions);

fn cases() -> Vec<Case> {
    let o = ConvTranspose2dOptions::new;
    vec![
        ("plain", [2, 3, 4, 5], [3, 2, 3, 3], o()),
        (
            "stride 2, padding 1, output_padding 1",
            [1, 2, 3, 4],
            [2, 3, 3, 2],
            o().stride((2, 2)).padding((1, 1)).output_padding((1, 1)),
        ),
        (
            "groups 2, dilation, asymmetric",
            [2, 4, 3, 3],
            [4, 1, 2, 3],
            o().stride((2, 3)).padding((0, 1)).output_padding((1, 0)).dilation((2, 1)).groups(2),
        ),
        (
            "output_padding below the dilation",
            [1, 1, 3, 3],
            [1, 1, 2, 2],
            o().dilation((3, 3)).output_padding((2, 2)),
        ),
    ]
}

/// The scatter definition: every input element adds `x * w[tap]` at `i * s - p + k * d`.
fn reference(
    x: &[f32], xd: [usize; 4], w: &[f32], wd: [usize; 4], b: &[f32], o: &ConvTranspose2dOptions,
) -> (Vec<f32>, [usize; 4]) {
    let [n, ci, h, wi] = xd;
    let [_, cgo, kh, kw] = wd;
    let g = o.groups;
    let (cgi, co) = (ci / g, cgo * g);
    let oh =
        (h - 1) * o.stride.0 + o.dilation.0 * (kh - 1) + o.output_padding.0 + 1 - 2 * o.padding.0;
    let ow =
        (wi - 1) * o.stride.1 + o.dilation.1 * (kw - 1) + o.output_padding.1 + 1 - 2 * o.padding.1;
    let mut y = vec![0.0f64; n * co * oh * ow];
    for b_ in 0..n {
        for c in 0..ci {
            let grp = c / cgi;
            for i in 0..h {
                for j in 0..wi {
                    let xv = x[((b_ * ci + c) * h + i) * wi + j] as f64;
                    for q in 0..cgo {
                        for a in 0..kh {
                            for e in 0..kw {
                                let r = (i * o.stride.0 + a * o.dilation.0) as isize
                                    - o.padding.0 as isize;
                                let s = (j * o.stride.1 + e * o.dilation.1) as isize
                                    - o.padding.1 as isize;
                                if r < 0 || s < 0 || r >= oh as isize || s >= ow as isize {
                                    continue;
                                }
                                let oc = grp * cgo + q;
                                y[((b_ * co + oc) * oh + r as usize) * ow + s as usize] +=
                                    xv * w[((c * cgo + q) * kh + a) * kw + e] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    let y = y.iter().enumerate().map(|(k, v)| (v + b[k / (oh * ow) % co] as f64) as f32).collect();
    (y, [n, co, oh, ow])
}

#[test]
fn conv_transpose2d_matches_its_definition_on_each_device() {
    for dev in std::iter::once(Device::cpu()).chain(gpu()) {
        for (name, xd, wd, o) in cases() {
            let co = wd[1] * o.groups;
            let (x, w, b) =
                (randv(xd.iter().product(), 1), randv(wd.iter().product(), 2), randv(co, 3));
            let (want, dims) = reference(&x, xd, &w, wd, &b, &o);
            let t =
                |v: &[f32], d: &[usize]| Tensor::from_vec(v.to_vec(), d.to_vec(), &dev).unwrap();
            let y = conv_transpose2d(&t(&x, &xd), &t(&w, &wd), Some(&t(&b, &[co])), &o).unwrap();
            assert_eq!(y.dims(), dims, "{dev:?} {name}");
            assert_close(&y.to_vec().unwrap(), &want, 1e-5, 1e-5, &format!("{dev:?} {name}"));
        }
    }
}

#[test]
fn gradients_are_right_and_the_gpu_agrees() {
    for (name, xd, wd, o) in cases() {
        let co = wd[1] * o.groups;
        let inputs = vec![
            (xd.to_vec(), randv(xd.iter().product(), 4)),
            (wd.to_vec(), randv(wd.iter().product(), 5)),
            (vec![co], randv(co, 6)),
        ];
        let f = move |t: &[Tensor]| conv_transpose2d(&t[0], &t[1], Some(&t[2]), &o)?.square();
        gradcheck(&inputs, &f, 1e-3, 2e-2);
        check_op(name, &inputs, 1e-4, 1e-5, &f);
    }
}

#[test]
fn bad_arguments_are_errors() {
    let cpu = Device::cpu();
    let x = Tensor::zeros([1, 2, 3, 3], &cpu).unwrap();
    let w = Tensor::zeros([2, 1, 3, 3], &cpu).unwrap();
    let o = ConvTranspose2dOptions::new().stride((2, 2)).output_padding((2, 0));
    let e = conv_transpose2d(&x, &w, None, &o).unwrap_err().to_string();
    assert!(e.starts_with("conv_transpose2d: output_padding"), "{e}");
    let w3 = Tensor::zeros([3, 1, 3, 3], &cpu).unwrap();
    let e =
        conv_transpose2d(&x, &w3, None, &ConvTranspose2dOptions::new()).unwrap_err().to_string();
    assert!(e.contains("input has 2"), "{e}");
    let big_pad = ConvTranspose2dOptions::new().padding((5, 5));
    assert!(conv_transpose2d(&x, &w, None, &big_pad).is_err());
    let b = Tensor::zeros([2], &cpu).unwrap();
    let e =
        conv_transpose2d(&x, &w, Some(&b), &ConvTranspose2dOptions::new()).unwrap_err().to_string();
    assert!(e.contains("bias must have shape [1]"), "{e}");
}

#[test]
fn the_layer_is_the_op_with_its_parameters() {
    let cpu = Device::cpu();
    let o = ConvTranspose2dOptions::new().stride((2, 2)).groups(2);
    let layer = ConvTranspose2d::new(4, 6, (3, 3), o, true, 7, &cpu).unwrap();
    assert_eq!(layer.weight.as_tensor().dims(), [4, 3, 3, 3]);
    let keys: Vec<String> = layer.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["weight", "bias"]);
    // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3 * 3 * 3
    let bound = 1.0 / 27f32.sqrt();
    assert!(layer.weight.as_tensor().to_vec().unwrap().iter().all(|v| v.abs() <= bound));
    let x = Tensor::from_vec(randv(2 * 4 * 3 * 3, 8), [2, 4, 3, 3], &cpu).unwrap();
    let b = layer.bias.as_ref().unwrap().as_tensor();
    let want = conv_transpose2d(&x, &layer.weight.as_tensor(), Some(&b), &o).unwrap();
    assert_eq!(layer.forward(&x).unwrap().to_vec().unwrap(), want.to_vec().unwrap());
    assert_eq!(want.dims(), [2, 6, 7, 7]);
    assert!(ConvTranspose2d::new(3, 6, (3, 3), o, true, 7, &cpu).is_err());
}
