//! Work past one storage binding is split, not refused. The binding is lowered to 4 KiB (1,024
//! elements) through `GpuOptions`, so tensors just past it stay small: every op family runs on
//! tensors stored in parts, forward and backward, and must match the CPU.

mod common;

use common::{close, gpu, randv, run_op};
use convshade::gpu::GpuOptions;
use convshade::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm2d, conv2d, conv_transpose2d,
    max_pool2d, pad, upsample, AvgPool2dOptions, BatchNormOptions, Conv2dOptions,
    ConvTranspose2dOptions, Device, MaxPool2dOptions, PadMode, Result, Tensor, UpsampleOptions,
    UpsampleSize,
};

/// Elements in one binding of the split device.
const BINDING: usize = 1024;

fn split_gpu() -> Option<Device> {
    gpu()?;
    let dev = Device::gpu_with(GpuOptions {
        max_storage_binding: Some((BINDING * 4) as u64),
        ..Default::default()
    })
    .unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    assert_eq!(ctx.limits().max_storage_buffer_binding_size, 4096);
    Some(dev)
}

type Op<'a> = dyn Fn(&[Tensor]) -> Result<Tensor> + 'a;

/// `f` on the CPU and on the split device, output and every input gradient compared. At least
/// one input or the output must be past one binding, or the case tests nothing.
fn same(dev: &Device, name: &str, inputs: &[(Vec<usize>, Vec<f32>)], f: &Op<'_>) {
    let (yc, gc) = run_op(&Device::cpu(), inputs, f);
    let biggest = inputs.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    assert!(biggest.max(yc.elem_count()) > BINDING, "{name}: nothing past one binding");
    let (yg, gg) = run_op(dev, inputs, f);
    close(&yg, &yc, 1e-4, 1e-4, &format!("{name}: forward"));
    for (i, (a, b)) in gg.iter().zip(&gc).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => close(a, b, 1e-4, 1e-4, &format!("{name}: grad {i}")),
            (None, None) => {}
            _ => panic!("{name}: gradient of input {i} on one device only"),
        }
    }
}

fn input(shape: &[usize], seed: u64) -> (Vec<usize>, Vec<f32>) {
    (shape.to_vec(), randv(shape.iter().product(), seed))
}

#[test]
fn elementwise_ops_and_broadcasts_past_one_binding() {
    let Some(d) = split_gpu() else { return };
    // 2,257 elements: three parts, the last one short
    let x = input(&[37, 61], 1);
    same(&d, "relu", std::slice::from_ref(&x), &|t| t[0].relu());
    same(&d, "tanh", std::slice::from_ref(&x), &|t| t[0].tanh());
    same(&d, "mul", &[x.clone(), input(&[37, 61], 2)], &|t| t[0].mul(&t[1]));
    // a row and a column broadcast, and a scalar
    let ins = [x.clone(), input(&[1, 61], 3), input(&[37, 1], 4)];
    same(&d, "broadcast add", &ins, &|t| t[0].mul(&t[1])?.add(&t[2]));
    same(&d, "scalar", &[x.clone(), input(&[1], 5)], &|t| t[0].sub(&t[1]));
    // a broadcast in the middle axis of a 3-d output
    let ins = [input(&[5, 1, 300], 6), input(&[5, 7, 300], 7)];
    same(&d, "middle broadcast", &ins, &|t| t[0].add(&t[1]));
    // a tensor whose every row is past one binding
    same(&d, "long rows", &[input(&[3, 2100], 8), input(&[2100], 9)], &|t| {
        t[0].div(&t[1].add_scalar(3.0)?)
    });
}

#[test]
fn reductions_past_one_binding_take_every_path() {
    let Some(d) = split_gpu() else { return };
    // outer rows that fit: (40, 50) along 1
    same(&d, "sum rows", &[input(&[40, 50], 1)], &|t| t[0].sum_axis(1, false));
    // the whole reduced axis past a binding: partial sums, reduced again
    same(&d, "sum all", &[input(&[5000], 2)], &|t| t[0].sum_all());
    same(&d, "mean all", &[input(&[70, 70], 3)], &|t| t[0].mean_all());
    same(&d, "max axis 1", &[input(&[2, 3000], 4)], &|t| t[0].max_axis(1, false));
    // inner past half a binding: column blocks
    same(&d, "sum axis 0", &[input(&[3, 1500], 5)], &|t| t[0].sum_axis(0, true));
    same(&d, "max axis 0", &[input(&[3, 1500], 6)], &|t| t[0].max_axis(0, false));
    same(&d, "mean middle", &[input(&[4, 30, 20], 7)], &|t| t[0].mean_axis(1, false));
    // a NaN propagates through the split max
    let mut v = randv(3000, 8);
    v[2500] = f32::NAN;
    let x = Tensor::from_vec(v, [3000], &d).unwrap();
    let m = x.max_axis(0, false).unwrap().to_vec().unwrap();
    assert!(m[0].is_nan(), "max of a split tensor holding NaN: {m:?}");
}

#[test]
fn layout_copies_past_one_binding() {
    let Some(d) = split_gpu() else { return };
    let x = input(&[2, 3, 40, 30], 1);
    same(&d, "permute", std::slice::from_ref(&x), &|t| t[0].permute(&[3, 1, 0, 2]));
    same(&d, "transpose", &[input(&[50, 60], 2)], &|t| t[0].transpose(0, 1));
    same(&d, "flip", std::slice::from_ref(&x), &|t| t[0].flip(&[0, 3]));
    same(&d, "broadcast_to", &[input(&[1, 3, 1, 30], 3)], &|t| t[0].broadcast_to([4, 3, 40, 30]));
}

#[test]
fn matmul_past_one_binding_splits_rows_columns_and_k() {
    let Some(d) = split_gpu() else { return };
    let mm: &Op = &|t| t[0].matmul(&t[1]);
    same(&d, "rows and columns", &[input(&[70, 40], 1), input(&[40, 50], 2)], mm);
    // every row of A and every column of B past one binding: K is split and summed
    same(&d, "long k", &[input(&[3, 3000], 3), input(&[3000, 4], 4)], mm);
    same(&d, "batched", &[input(&[6, 20, 30], 5), input(&[6, 30, 25], 6)], mm);
    same(&d, "broadcast batch", &[input(&[6, 20, 30], 7), input(&[30, 25], 8)], mm);
    same(&d, "transposed", &[input(&[40, 70], 9), input(&[50, 40], 10)], &|t| {
        t[0].transpose(0, 1)?.matmul(&t[1].transpose(0, 1)?)
    });
}

#[test]
fn convolutions_past_one_binding_split_the_batch() {
    let Some(d) = split_gpu() else { return };
    let opts = Conv2dOptions::new().padding(1);
    let ins = [input(&[5, 2, 16, 16], 1), input(&[3, 2, 3, 3], 2), input(&[3], 3)];
    same(&d, "conv2d", &ins, &|t| conv2d(&t[0], &t[1], t.get(2), &opts));
    let grouped = Conv2dOptions::new().stride(2).groups(2);
    let ins = [input(&[6, 4, 12, 12], 4), input(&[4, 2, 3, 3], 5)];
    same(&d, "grouped conv2d", &ins, &|t| conv2d(&t[0], &t[1], None, &grouped));
    let depthwise = Conv2dOptions::new().padding(1).groups(3);
    let ins = [input(&[5, 3, 10, 10], 6), input(&[6, 1, 3, 3], 7)];
    same(&d, "depthwise", &ins, &|t| conv2d(&t[0], &t[1], None, &depthwise));
    let up = ConvTranspose2dOptions::new().stride(2);
    let ins = [input(&[4, 3, 8, 8], 8), input(&[3, 2, 2, 2], 9)];
    same(&d, "conv_transpose2d", &ins, &|t| conv_transpose2d(&t[0], &t[1], None, &up));
}

#[test]
fn slices_and_assignments_past_one_binding() {
    let Some(dev) = split_gpu() else { return };
    use convshade::AxisSlice;
    // rows of 1500: each row past a binding, cut again along its own axis
    let wide = [input(&[3, 1500], 21), input(&[2, 498], 22)];
    let s = [AxisSlice::new(0, 3, 2), AxisSlice::new(7, 1500, 3)];
    same(&dev, "slice_assign wide rows", &wide, &|x| x[0].slice_assign(&s, &x[1]));
    same(&dev, "slice wide rows", &wide[..1], &|x| x[0].slice(&s));
    // many short rows: runs of rows, the untouched ones copied whole
    let tall = [input(&[600, 5], 23), input(&[200, 2], 24)];
    let s = [AxisSlice::new(100, 500, 2), AxisSlice::new(1, 5, 2)];
    same(&dev, "slice_assign tall", &tall, &|x| x[0].slice_assign(&s, &x[1]));
}

#[test]
fn pools_upsampling_and_padding_past_one_binding() {
    let Some(d) = split_gpu() else { return };
    let x = input(&[6, 3, 12, 12], 1);
    let mp = MaxPool2dOptions::new(2);
    same(&d, "max_pool2d", std::slice::from_ref(&x), &|t| max_pool2d(&t[0], &mp));
    let ap = AvgPool2dOptions::new(3).stride(2).padding(1);
    same(&d, "avg_pool2d", std::slice::from_ref(&x), &|t| avg_pool2d(&t[0], &ap));
    same(&d, "adaptive avg", std::slice::from_ref(&x), &|t| adaptive_avg_pool2d(&t[0], (5, 7)));
    same(&d, "adaptive max", std::slice::from_ref(&x), &|t| adaptive_max_pool2d(&t[0], (5, 7)));
    let near = UpsampleOptions::nearest(UpsampleSize::Size(20, 20));
    let small = input(&[4, 2, 10, 10], 2);
    same(&d, "nearest", std::slice::from_ref(&small), &|t| upsample(&t[0], &near));
    let bil = UpsampleOptions::bilinear(UpsampleSize::Size(19, 21), false);
    same(&d, "bilinear", &[small], &|t| upsample(&t[0], &bil));
    same(&d, "reflect pad", std::slice::from_ref(&x), &|t| {
        pad(&t[0], &[2, 1, 3, 0], PadMode::Reflect)
    });
    // one image of 3 x 24 x 24 = 1,728 elements, past the binding: split by plane
    let image = input(&[1, 3, 24, 24], 3);
    same(&d, "max_pool2d of one image", std::slice::from_ref(&image), &|t| max_pool2d(&t[0], &mp));
    same(&d, "adaptive avg of one image", std::slice::from_ref(&image), &|t| {
        adaptive_avg_pool2d(&t[0], (5, 7))
    });
    let half = UpsampleOptions::bilinear(UpsampleSize::Size(30, 20), true);
    same(&d, "bilinear of one image", std::slice::from_ref(&image), &|t| upsample(&t[0], &half));
}

#[test]
fn batch_norm_past_one_binding() {
    let Some(d) = split_gpu() else { return };
    let bn: &Op = &|t| {
        let dev = t[0].device();
        let (rm, rv) = (Tensor::zeros([3], &dev)?, Tensor::ones([3], &dev)?);
        let opts = BatchNormOptions::default();
        Ok(batch_norm2d(&t[0], &rm, &rv, Some(&t[1]), Some(&t[2]), &opts)?.output)
    };
    let ins = [input(&[6, 3, 10, 10], 1), input(&[3], 2), input(&[3], 3)];
    same(&d, "batch_norm2d", &ins, bn);
    // images of 3 x 24 x 24 = 1,728 elements: runs of channels
    let ins = [input(&[2, 3, 24, 24], 4), input(&[3], 5), input(&[3], 6)];
    same(&d, "batch_norm2d of images past a binding", &ins, bn);
}

#[test]
fn training_with_tensors_in_parts_matches_the_cpu() {
    let Some(d) = split_gpu() else { return };
    // the small CNN's batch activations are past 1,024 elements: every step runs split
    let (wc, lc) = common::train_small_cnn(&Device::cpu(), 5, 3);
    let (wg, lg) = common::train_small_cnn(&d, 5, 3);
    common::assert_close(&lg, &lc, 1e-3, 1e-4, "losses");
    for (i, (a, b)) in wg.iter().zip(&wc).enumerate() {
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&u| f32::from_bits(u)).collect(),
            b.iter().map(|&u| f32::from_bits(u)).collect(),
        );
        common::assert_close(&a, &b, 1e-3, 1e-4, &format!("weight {i}"));
    }
}

#[test]
fn convolutions_of_one_image_past_one_binding_run_in_row_bands() {
    let Some(d) = split_gpu() else { return };
    // 2 x 30 x 30 = 1,800 elements per image: bands of output rows
    let opts = Conv2dOptions::new().padding(1);
    let ins = [input(&[2, 2, 30, 30], 1), input(&[3, 2, 3, 3], 2), input(&[3], 3)];
    same(&d, "banded conv2d", &ins, &|t| conv2d(&t[0], &t[1], t.get(2), &opts));
    let odd = Conv2dOptions::new().stride(2).padding((2, 1)).dilation(2);
    let ins = [input(&[1, 3, 25, 27], 4), input(&[4, 3, 3, 3], 5)];
    same(&d, "banded strided dilated", &ins, &|t| conv2d(&t[0], &t[1], None, &odd));
    let grouped = Conv2dOptions::new().padding(1).groups(2);
    let ins = [input(&[1, 4, 20, 20], 6), input(&[4, 2, 3, 3], 7)];
    same(&d, "banded grouped", &ins, &|t| conv2d(&t[0], &t[1], None, &grouped));
    let depthwise = Conv2dOptions::new().padding(1).groups(3);
    let ins = [input(&[1, 3, 24, 24], 8), input(&[6, 1, 3, 3], 9)];
    same(&d, "banded depthwise", &ins, &|t| conv2d(&t[0], &t[1], None, &depthwise));
    // a transposed convolution's output image of 2 x 40 x 40: its forward is an input gradient
    let up = ConvTranspose2dOptions::new().stride(2);
    let ins = [input(&[1, 3, 20, 20], 10), input(&[3, 2, 2, 2], 11)];
    same(&d, "banded conv_transpose2d", &ins, &|t| conv_transpose2d(&t[0], &t[1], None, &up));
}

#[test]
fn a_piece_that_cannot_be_split_is_a_clear_error() {
    let Some(d) = split_gpu() else { return };
    // one output row of a 5x5 window reads 8 channels x 5 rows x 40 = 1,600 input elements
    let x = Tensor::zeros([1, 8, 30, 40], &d).unwrap();
    let w = Tensor::zeros([1, 8, 5, 5], &d).unwrap();
    let e = conv2d(&x, &w, None, &Conv2dOptions::new()).unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("conv2d: one indivisible piece of this op needs 1600 elements"), "{m}");
    // and the device still works
    let y = x.add_scalar(1.0).unwrap().sum_all().unwrap();
    assert_eq!(y.to_scalar().unwrap(), 9600.0);
}

/// 2^31 elements (8 GiB) at the adapter's own binding size: run with `CONVSHADE_HUGE=1` on a
/// machine with the memory (about 10 GiB free); skipped otherwise.
#[test]
fn two_to_the_31_elements_where_memory_allows() {
    if std::env::var("CONVSHADE_HUGE").as_deref() != Ok("1") {
        eprintln!("skipped: set CONVSHADE_HUGE=1 to run 2^31 elements");
        return;
    }
    let Some(d) = gpu() else { return };
    let n = 1usize << 31;
    let x = Tensor::full([n], 0.5, &d).unwrap();
    // halves sum exactly in float32 while every partial sum stays below 2^24
    assert_eq!(x.sum_all().unwrap().to_scalar().unwrap(), (n / 2) as f32);
    let rows = x.reshape([1 << 16, 1 << 15]).unwrap();
    let r = rows.sum_axis(1, false).unwrap().to_vec().unwrap();
    assert_eq!(r.len(), 1 << 16);
    assert!(r.iter().all(|&v| v == (1 << 14) as f32));
    let m = x.add_scalar(1.0).unwrap().max_axis(0, false).unwrap();
    assert_eq!(m.to_scalar().unwrap(), 1.5);
}
