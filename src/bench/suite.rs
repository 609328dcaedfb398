//! The standard suite (float32, NCHW). Names and shapes are fixed: the CLI, the JSON, the
//! README and `tools/bench_torch.py` all use exactly these.

use super::BenchOp;
use crate::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use crate::{
    avg_pool2d, batch_norm2d, conv2d, cross_entropy, max_pool2d, no_grad, one_hot,
    AvgPool2dOptions, BatchNormOptions, Conv2dOptions, Device, MaxPool2dOptions, Optimizer, Result,
    Sgd, Tensor, Var,
};

/// Builds a case's inputs on a device and returns its op.
type BuildFn = Box<dyn Fn(&Device) -> Result<BenchOp>>;

/// One case of the suite.
pub struct BenchCase {
    /// The case's name, as the CLI, the JSON and the README use it.
    pub name: String,
    /// Floating-point operations of one run; `None` for data-movement ops (pooling).
    pub flops: Option<f64>,
    /// Bytes a run must read and write at the least; `None` except for pooling (bound by
    /// memory, read against the copy bandwidth).
    pub bytes: Option<f64>,
    /// Builds the inputs on a device and returns the op to time.
    pub build: BuildFn,
    /// Skipped on software adapters, which would take minutes per run (gemm_4096).
    pub hardware_only: bool,
}

/// A convolution of the suite: input (n, c, h, w), d filters of (kh, kw).
struct ConvShape {
    x: [usize; 4],
    d: usize,
    k: (usize, usize),
    opts: Conv2dOptions,
}

fn conv_shapes() -> [(&'static str, ConvShape); 5] {
    let same = Conv2dOptions::new().padding(1);
    let conv = |x, d, k, opts| ConvShape { x, d, k, opts };
    [
        ("S1", conv([1, 1, 6, 8], 1, (1, 2), Conv2dOptions::new())),
        ("S2", conv([64, 1, 28, 28], 32, (3, 3), same)),
        ("S3", conv([64, 32, 14, 14], 64, (3, 3), same)),
        ("S4", conv([8, 64, 56, 56], 64, (3, 3), same)),
        ("S5", conv([8, 3, 224, 224], 64, (7, 7), Conv2dOptions::new().stride(2).padding(3))),
    ]
}

/// Every case, in the order they run and print.
pub fn suite() -> Vec<BenchCase> {
    let mut v = vec![
        gemm("gemm_256", 256, 256, 256),
        gemm("gemm_512", 512, 512, 512),
        gemm("gemm_1024", 1024, 1024, 1024),
        BenchCase { hardware_only: true, ..gemm("gemm_4096", 4096, 4096, 4096) },
        gemm("gemm_im2row", 3136, 576, 64),
    ];
    for (name, s) in conv_shapes() {
        v.push(conv_case(name, &s, false));
        v.push(conv_case(name, &s, true));
    }
    for backward in [false, true] {
        v.push(pool_case("max_pool", [64, 32, 28, 28], backward));
        v.push(pool_case("avg_pool", [8, 64, 56, 56], backward));
    }
    for backward in [false, true] {
        v.push(batch_norm_case(BATCH_NORM, backward));
    }
    v.push(net_case(true));
    v.push(net_case(false));
    v.extend(super::volume::cases());
    v
}

pub(super) fn suffix(backward: bool) -> &'static str {
    if backward {
        "fwd_bwd"
    } else {
        "fwd"
    }
}

/// `(m, k) x (k, n)`.
fn gemm(name: &str, m: usize, k: usize, n: usize) -> BenchCase {
    BenchCase {
        name: name.into(),
        flops: Some(2.0 * (m * k * n) as f64),
        bytes: None,
        hardware_only: false,
        build: Box::new(move |dev| {
            let a = Tensor::randn([m, k], 1, dev)?;
            let b = Tensor::randn([k, n], 2, dev)?;
            Ok(Box::new(move || a.matmul(&b).map(drop)))
        }),
    }
}

/// `y = conv2d(x, w, b)`; with `backward`, the gradients of x, w and b for a random upstream
/// gradient `up` (`y.backward_with(up)`, as PyTorch's `y.backward(up)`).
fn conv_case(shape: &str, s: &ConvShape, backward: bool) -> BenchCase {
    let [n, c, h, w] = s.x;
    let (d, (kh, kw), opts) = (s.d, s.k, s.opts);
    // conv2d's own geometry; an invalid shape fails when run, with conv2d's error
    let (oh, ow) = crate::ops::conv::geometry("bench", (n, c, h, w), (kh, kw), &opts)
        .map_or((0, 0), |g| (g.oh, g.ow));
    let fwd = 2.0 * (n * d * oh * ow * c * kh * kw) as f64;
    BenchCase {
        name: format!("conv_{shape}_{}", suffix(backward)),
        // the input and weight gradients are one product each, as large as the forward
        flops: Some(if backward { 3.0 * fwd } else { fwd }),
        bytes: None,
        hardware_only: false,
        build: Box::new(move |dev| {
            let [x, wt, b] = inputs(
                [
                    Tensor::randn([n, c, h, w], 1, dev)?,
                    Tensor::randn([d, c, kh, kw], 2, dev)?,
                    Tensor::randn([d], 3, dev)?,
                ],
                backward,
            );
            let up = Tensor::randn([n, d, oh, ow], 4, dev)?;
            Ok(Box::new(move || {
                let y = conv2d(&x.get(), &wt.get(), Some(&b.get()), &opts)?;
                if backward {
                    y.backward_with(&up)?;
                }
                Ok(())
            }))
        }),
    }
}

/// A case's input: a plain tensor for a forward case, a gradient-tracking variable for a
/// backward one (as PyTorch's side runs forward cases under `no_grad`).
pub(super) enum Input {
    Plain(Tensor),
    Tracked(Var),
}

impl Input {
    pub(super) fn get(&self) -> Tensor {
        match self {
            Input::Plain(t) => t.clone(),
            Input::Tracked(v) => v.as_tensor(),
        }
    }
}

pub(super) fn inputs<const N: usize>(ts: [Tensor; N], backward: bool) -> [Input; N] {
    ts.map(|t| match backward {
        true => Input::Tracked(Var::new(&t)),
        false => Input::Plain(t),
    })
}

/// The least traffic of a pooling run, in bytes of f32: the forward reads the input and writes
/// the output (max pooling also its indices); the backward reads the upstream gradient (and the
/// indices) and writes the input gradient. Both pools here halve each side.
pub fn pool_bytes(kind: &str, [n, c, h, w]: [usize; 4], backward: bool) -> f64 {
    let (input, output) = ((n * c * h * w) as f64, (n * c * h.div_ceil(2) * w.div_ceil(2)) as f64);
    let indices = if kind == "max_pool" { output } else { 0.0 };
    let fwd = input + output + indices;
    let bwd = if backward { output + indices + input } else { 0.0 };
    4.0 * (fwd + bwd)
}

/// max_pool: 2x2 stride 2; avg_pool: 3x3 stride 2 pad 1.
fn pool_case(kind: &'static str, dims: [usize; 4], backward: bool) -> BenchCase {
    BenchCase {
        name: format!("{kind}_{}", suffix(backward)),
        flops: None,
        bytes: Some(pool_bytes(kind, dims, backward)),
        hardware_only: false,
        build: Box::new(move |dev| {
            let [x] = inputs([Tensor::randn(dims, 1, dev)?], backward);
            let pool = move |x: &Tensor| match kind {
                "max_pool" => max_pool2d(x, &MaxPool2dOptions::new(2)),
                _ => avg_pool2d(x, &AvgPool2dOptions::new(3).stride(2).padding(1)),
            };
            let out = no_grad(|| pool(&x.get()))?.dims().to_vec();
            let up = Tensor::randn(out, 2, dev)?;
            Ok(Box::new(move || {
                let y = pool(&x.get())?;
                if backward {
                    y.backward_with(&up)?;
                }
                Ok(())
            }))
        }),
    }
}

/// batch_norm's input: the first stage of a small CNN.
const BATCH_NORM: [usize; 4] = [64, 32, 28, 28];

/// Bytes of f32 a training-mode batch norm moves as counted here: the forward reads the input
/// for the statistics and again for the output, which it writes; the backward reads the upstream
/// gradient and the input for its sums, and both again for the input gradient, which it writes.
pub fn batch_norm_bytes([n, c, h, w]: [usize; 4], backward: bool) -> f64 {
    let len = (n * c * h * w) as f64;
    4.0 * len * if backward { 8.0 } else { 3.0 }
}

/// `F.batch_norm` in training mode with an affine transform; with `backward`, the gradients of
/// the input, weight and bias for a random upstream gradient.
fn batch_norm_case(dims: [usize; 4], backward: bool) -> BenchCase {
    BenchCase {
        name: format!("batch_norm_{}", suffix(backward)),
        flops: None,
        bytes: Some(batch_norm_bytes(dims, backward)),
        hardware_only: false,
        build: Box::new(move |dev| {
            let c = dims[1];
            let [x, wt, b] = inputs(
                [
                    Tensor::randn(dims, 1, dev)?,
                    Tensor::randn([c], 2, dev)?,
                    Tensor::randn([c], 3, dev)?,
                ],
                backward,
            );
            let (rm, rv) = (Tensor::zeros([c], dev)?, Tensor::ones([c], dev)?);
            let opts = BatchNormOptions { training: true, ..BatchNormOptions::default() };
            let up = Tensor::randn(dims, 4, dev)?;
            Ok(Box::new(move || {
                let (wt, b) = (wt.get(), b.get());
                let y = batch_norm2d(&x.get(), &rm, &rv, Some(&wt), Some(&b), &opts)?.output;
                if backward {
                    y.backward_with(&up)?;
                }
                Ok(())
            }))
        }),
    }
}

/// The suite's CNN: conv(1->32, 3x3, p1)-relu-maxpool2-conv(32->64, 3x3, p1)-relu-maxpool2-
/// flatten-linear(3136->10).
pub fn bench_net(dev: &Device) -> Result<Sequential> {
    let same = Conv2dOptions::new().padding(1);
    Ok(Sequential::new()
        .push(Conv2d::new(1, 32, 3, same, true, 1, dev)?)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Conv2d::new(32, 64, 3, same, true, 2, dev)?)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Flatten)
        .push(Linear::new(3136, 10, true, 3, dev)?))
}

/// `train_step`: one SGD step (lr 0.01) with softmax cross-entropy on a batch of 64 28x28
/// images; `infer_step`: the forward pass without gradients.
fn net_case(train: bool) -> BenchCase {
    const BATCH: usize = 64;
    let fwd = 2.0 * BATCH as f64 * (32.0 * 784.0 * 9.0 + 64.0 * 196.0 * 32.0 * 9.0 + 3136.0 * 10.0);
    BenchCase {
        name: if train { "train_step" } else { "infer_step" }.into(),
        // backward: an input and a weight gradient product per layer (none into the images)
        flops: Some(if train { 3.0 * fwd } else { fwd }),
        bytes: None,
        hardware_only: false,
        build: Box::new(move |dev| {
            let net = bench_net(dev)?;
            let x = Tensor::randn([BATCH, 1, 28, 28], 4, dev)?;
            let labels: Vec<usize> = (0..BATCH).map(|i| (i * 7 + 3) % 10).collect();
            let targets = one_hot(&labels, 10, dev)?;
            let mut sgd = Sgd::new(net.parameters(), 0.01)?;
            Ok(Box::new(move || {
                if !train {
                    return no_grad(|| net.forward(&x)).map(drop);
                }
                let loss = cross_entropy(&net.forward(&x)?, &targets)?;
                sgd.step(&loss.backward()?)
            }))
        }),
    }
}
