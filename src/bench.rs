//! The benchmark suite: the same op cases on each device, timed with a device sync before the
//! clock is read, reported as time, GFLOP/s and GB/s.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{
    avg_pool2d, conv2d, max_pool2d, upsample, AvgPool2dOptions, Conv2dOptions, Device,
    MaxPool2dOptions, Result, Tensor, UpsampleOptions, UpsampleSize,
};

/// The timed part of a case: runs the op once.
pub type BenchOp = Box<dyn Fn() -> Result<()>>;
/// Builds a case's inputs on a device and returns its op.
type BuildFn = Box<dyn Fn(&Device) -> Result<BenchOp>>;

/// One op at one size.
pub struct BenchCase {
    pub name: String,
    /// Floating-point operations of one run (0 for data movement ops).
    pub flops: f64,
    /// Bytes read and written by one run (a lower bound: inputs once, outputs once).
    pub bytes: f64,
    /// Builds the inputs on a device and returns the op to time.
    build: BuildFn,
}

/// A measurement of one case on one device.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub case: String,
    pub device: String,
    pub iterations: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub gflops: f64,
    pub gbps: f64,
}

/// How long and how often to run each case.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Stop once this much time was spent on a case (after at least `min_iters`).
    pub budget: Duration,
    pub min_iters: usize,
    pub max_iters: usize,
    /// Smaller sizes, for software adapters and quick looks.
    pub quick: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            budget: Duration::from_millis(500),
            min_iters: 3,
            max_iters: 200,
            quick: false,
        }
    }
}

fn dims_name(d: &[usize]) -> String {
    d.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn rand4(d: [usize; 4], seed: u64, dev: &Device) -> Result<Tensor> {
    Tensor::randn(d, seed, dev)
}

/// `name` followed by the input shape, so quick and full runs are told apart.
fn conv_case(
    name: &str,
    x: [usize; 4],
    w: [usize; 4],
    opts: Conv2dOptions,
    backward: bool,
) -> BenchCase {
    let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
    let (d, _, kh, kw) = (w[0], w[1], w[2], w[3]);
    // conv2d's own geometry; an invalid case fails when run, with conv2d's error
    let (oh, ow) = crate::ops::conv::geometry("bench", (n, c, h, wd), (kh, kw), &opts)
        .map_or((0, 0), |g| (g.oh, g.ow));
    let fwd = 2.0 * (n * d * oh * ow * (c / opts.groups) * kh * kw) as f64;
    let bytes = 4.0 * (n * c * h * wd + d * (c / opts.groups) * kh * kw + n * d * oh * ow) as f64;
    BenchCase {
        name: format!("{name} {n}x{c}x{h}x{wd}"),
        flops: if backward { 3.0 * fwd } else { fwd },
        bytes: if backward { 3.0 * bytes } else { bytes },
        build: Box::new(move |dev| {
            let xt = rand4(x, 1, dev)?;
            let wt = rand4(w, 2, dev)?;
            let xt = if backward { xt.requires_grad_() } else { xt };
            let wt = if backward { wt.requires_grad_() } else { wt };
            Ok(Box::new(move || {
                let y = conv2d(&xt, &wt, None, &opts)?;
                if backward {
                    y.sum_all()?.backward()?;
                }
                Ok(())
            }))
        }),
    }
}

/// The cases, sized for a real device or (`quick`) for a software adapter.
pub fn cases(quick: bool) -> Vec<BenchCase> {
    let mut v = matmul_cases(quick);
    v.extend(conv_cases(quick));
    v.extend(pool_and_map_cases(quick));
    v
}

/// The full size, or the small one for `--quick`.
fn sizer(quick: bool) -> impl Fn(usize, usize) -> usize {
    move |full, small| if quick { small } else { full }
}

fn matmul_cases(quick: bool) -> Vec<BenchCase> {
    let s = sizer(quick);
    let mut v = Vec::new();
    for m in [s(512, 128), s(1024, 256), s(2048, 384)] {
        v.push(BenchCase {
            name: format!("matmul {m}x{m}x{m}"),
            flops: 2.0 * (m * m * m) as f64,
            bytes: 12.0 * (m * m) as f64,
            build: Box::new(move |dev| {
                let a = Tensor::randn([m, m], 1, dev)?;
                let b = Tensor::randn([m, m], 2, dev)?;
                Ok(Box::new(move || a.matmul(&b).map(|_| ())))
            }),
        });
    }
    v
}

fn conv_cases(quick: bool) -> Vec<BenchCase> {
    let s = sizer(quick);
    let (n, side) = (s(32, 4), s(56, 28));
    let same = Conv2dOptions::new().padding(1);
    // (name, input, weight, options, with backward)
    let table = [
        (
            "3x3 64->64",
            [n, 64, side, side],
            [64, 64, 3, 3],
            same,
            false,
        ),
        (
            "3x3 64->64",
            [n, 64, side, side],
            [64, 64, 3, 3],
            same,
            true,
        ),
        (
            "7x7/2 3->64",
            [n.min(8), 3, s(224, 64), s(224, 64)],
            [64, 3, 7, 7],
            Conv2dOptions::new().stride(2).padding(3),
            false,
        ),
        (
            "dw 3x3 128",
            [n, 128, side, side],
            [128, 1, 3, 3],
            same.groups(128),
            false,
        ),
        (
            "5x5 1->6",
            [s(256, 32), 1, 28, 28],
            [6, 1, 5, 5],
            Conv2dOptions::new().padding(2),
            true,
        ),
    ];
    table
        .into_iter()
        .map(|(name, x, w, opts, bwd)| {
            let pass = if bwd { "fwd+bwd" } else { "fwd" };
            conv_case(&format!("conv2d {name} {pass}"), x, w, opts, bwd)
        })
        .collect()
}

fn pool_and_map_cases(quick: bool) -> Vec<BenchCase> {
    let s = sizer(quick);
    let n = s(32, 4);
    let mut v = Vec::new();
    let pool_dims = [n, 64, s(112, 56), s(112, 56)];
    let pool_elems = pool_dims.iter().product::<usize>() as f64;
    v.push(BenchCase {
        name: format!("max_pool2d 3x3/2 {}", dims_name(&pool_dims)),
        flops: 0.0,
        bytes: 4.0 * pool_elems * 1.25,
        build: Box::new(move |dev| {
            let x = rand4(pool_dims, 3, dev)?;
            let o = MaxPool2dOptions::new(3).stride(2).padding(1);
            Ok(Box::new(move || max_pool2d(&x, &o).map(|_| ())))
        }),
    });
    v.push(BenchCase {
        name: format!("avg_pool2d 2x2/2 {}", dims_name(&pool_dims)),
        flops: pool_elems,
        bytes: 4.0 * pool_elems * 1.25,
        build: Box::new(move |dev| {
            let x = rand4(pool_dims, 4, dev)?;
            let o = AvgPool2dOptions::new(2);
            Ok(Box::new(move || avg_pool2d(&x, &o).map(|_| ())))
        }),
    });
    let up_dims = [n, 64, s(56, 28), s(56, 28)];
    let up_out = pool_dims.iter().product::<usize>() as f64 * 4.0;
    v.push(BenchCase {
        name: format!("bilinear x2 {}", dims_name(&up_dims)),
        flops: 7.0 * up_out / 4.0,
        bytes: 4.0 * (up_out / 4.0 + up_out / 16.0),
        build: Box::new(move |dev| {
            let x = rand4(up_dims, 5, dev)?;
            let o = UpsampleOptions::bilinear(UpsampleSize::Scale(2.0, 2.0), false);
            Ok(Box::new(move || upsample(&x, &o).map(|_| ())))
        }),
    });
    let relu_n = s(1 << 24, 1 << 20);
    v.push(BenchCase {
        name: format!("relu {relu_n}"),
        flops: relu_n as f64,
        bytes: 8.0 * relu_n as f64,
        build: Box::new(move |dev| {
            let x = Tensor::randn([relu_n], 6, dev)?;
            Ok(Box::new(move || x.relu().map(|_| ())))
        }),
    });
    v
}

/// Runs one case on one device: a warm-up run, then timed runs each ended by a device sync.
pub fn run_case(case: &BenchCase, dev: &Device, cfg: &BenchConfig) -> Result<BenchResult> {
    let op = (case.build)(dev)?;
    op()?;
    dev.sync()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < cfg.min_iters.max(1)
        || (start.elapsed() < cfg.budget && times.len() < cfg.max_iters)
    {
        let t0 = Instant::now();
        op()?;
        dev.sync()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    Ok(BenchResult {
        case: case.name.clone(),
        device: dev.name(),
        iterations: times.len(),
        median_ms: median * 1e3,
        min_ms: times[0] * 1e3,
        gflops: case.flops / median / 1e9,
        gbps: case.bytes / median / 1e9,
    })
}

/// Cases whose name contains `filter` on every device; `on_result` sees each result as it comes.
pub fn run(
    devices: &[Device],
    cfg: &BenchConfig,
    filter: Option<&str>,
    mut on_result: impl FnMut(&BenchResult),
) -> Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    for case in cases(cfg.quick) {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        for dev in devices {
            let r = run_case(&case, dev, cfg)?;
            on_result(&r);
            out.push(r);
        }
    }
    Ok(out)
}

/// One aligned line of the results table.
pub fn format_row(r: &BenchResult) -> String {
    format!(
        "{:<40} {:<28} {:>10.3} ms {:>9.2} GFLOP/s {:>8.2} GB/s",
        r.case,
        truncate(&r.device, 28),
        r.median_ms,
        r.gflops,
        r.gbps
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}
