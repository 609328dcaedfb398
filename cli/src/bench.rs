//! `convshade bench`: runs the suite with a progress bar, then prints the table and writes the
//! JSON report and the chart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use comfy_table::{presets::ASCII_MARKDOWN, Cell, CellAlignment, Table};
use convshade::bench::{self, peak, report::Peaks, BenchConfig, Report};
use convshade::gpu::GpuOptions;
use convshade::{Device, Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Devices to run on: cpu, gpu, or all available.
    #[arg(long, default_value = "all", value_parser = ["cpu", "gpu", "all"])]
    device: String,
    /// Only cases whose name matches this regular expression.
    #[arg(long)]
    filter: Option<String>,
    /// Print the suite's case names and exit.
    #[arg(long)]
    list: bool,
    /// Fewer samples and a smaller time budget per case (for CI and quick looks).
    #[arg(long)]
    quick: bool,
    /// Measure each device's attainable f32 GFLOP/s first (FMA loops on every core; a WGSL
    /// FMA kernel on the adapter), and read the results as a fraction of it.
    #[arg(long)]
    peak: bool,
    /// Write the report as JSON (the schema tools/bench_torch.py writes too).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Another engine's JSON report: adds its time ratio to the table and its bars to the chart.
    #[arg(long)]
    compare: Vec<PathBuf>,
    /// Draw an SVG bar chart of time per case (log scale): one bar per device and engine.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Bind at most this many bytes of one tensor on the GPU (`GpuOptions::max_storage_binding`):
    /// the suite's larger tensors are then stored in parts and their ops split, which measures
    /// what splitting costs.
    #[arg(long)]
    max_binding: Option<u64>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), msg: e.to_string() }
}

/// `--filter` as a regular expression.
fn filter(op: &'static str, f: Option<&str>) -> Result<Option<regex::Regex>> {
    f.map(|f| {
        regex::Regex::new(f).map_err(|e| Error::Invalid {
            op,
            msg: format!("--filter is not a regular expression: {e}"),
        })
    })
    .transpose()
}

/// `convshade tune`: every case of the suite (that `filter` keeps) run once on a GPU context
/// that times the GEMM's tilings on first use; prints what was chosen.
pub(crate) fn tune(f: Option<&str>) -> Result<()> {
    let filter = filter("tune", f)?;
    let opts =
        GpuOptions { tuning: Some(convshade::gpu::Tuning::OnFirstUse), ..Default::default() };
    let dev = Device::gpu_with(opts)?;
    let Device::Gpu(ctx) = &dev else { return Ok(()) };
    let software = ctx.adapter().is_software;
    let cases: Vec<_> = bench::suite()
        .into_iter()
        .filter(|c| filter.as_ref().is_none_or(|f| f.is_match(&c.name)))
        .filter(|c| !(software && c.hardware_only))
        .collect();
    let bar = ProgressBar::new(cases.len() as u64);
    for case in cases {
        bar.set_message(case.name.clone());
        let mut op = (case.build)(&dev)?;
        op()?;
        dev.sync()?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{} ({})", ctx.adapter().name, ctx.adapter().backend);
    crate::print_tuning(ctx);
    Ok(())
}

pub(crate) fn bench(args: &BenchArgs) -> Result<i32> {
    let filter = filter("bench", args.filter.as_deref())?;
    let keep = |name: &str| filter.as_ref().is_none_or(|f| f.is_match(name));
    if args.list {
        for case in bench::suite().iter().filter(|c| keep(&c.name)) {
            println!("{}", case.name);
        }
        return Ok(0);
    }
    if let Some(p) = &args.plot {
        crate::plot::check_path(p)?;
    }
    let others = args
        .compare
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| io_err(p, e))?;
            Report::from_json(&text, &p.display().to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    let mut devices = crate::devices(&args.device)?;
    if let Some(bytes) = args.max_binding {
        for d in devices.iter_mut().filter(|d| matches!(d, Device::Gpu(_))) {
            *d = Device::gpu_with(GpuOptions {
                max_storage_binding: Some(bytes),
                ..Default::default()
            })?;
        }
    }
    let cfg = if args.quick { BenchConfig::quick() } else { BenchConfig::full() };
    let (peaks, copy) = if args.peak {
        measure_peaks(&devices, args.quick)?
    } else {
        (Peaks::default(), Peaks::default())
    };
    let total = bench::suite().iter().filter(|c| keep(&c.name)).count() * devices.len();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results = bench::run(&devices, &cfg, keep, |case, dev| {
        bar.set_message(format!("{case} on {}", bench::device_kind(dev)));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let mut report = Report::new(&devices, peaks, results?);
    report.peak_copy_gbps = copy;
    println!("{}", table(&report, &others));
    if let Some(a) = &report.adapter {
        println!("gpu: {} ({}, {})", a.name, a.backend, a.driver);
    }
    let h = &report.host;
    println!("cpu: {} ({} threads, {})", h.cpu, h.cores, h.simd);
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json()).map_err(|e| io_err(path, e))?;
    }
    if let Some(path) = &args.plot {
        crate::plot::draw(path, &report, &others)?;
    }
    Ok(0)
}

/// The FMA peak of every device, and the host's copy bandwidth.
fn measure_peaks(devices: &[convshade::Device], quick: bool) -> Result<(Peaks, Peaks)> {
    let time = Duration::from_millis(if quick { 200 } else { 1000 });
    let mut peaks = Peaks { cpu: Some(peak::cpu_peak_gflops(time)), gpu: None };
    for dev in devices {
        if let Some(g) = peak::gpu_peak_gflops(dev, time)? {
            peaks.gpu = Some(g);
        }
    }
    let copy = Peaks { cpu: Some(peak::cpu_copy_gbps(time)), gpu: None };
    let show = |p: Option<f64>| p.map_or("-".into(), |g| format!("{g:.1} GFLOP/s"));
    println!(
        "peak f32: cpu {} ({} threads, {}), gpu {}; host copy {:.1} GB/s",
        show(peaks.cpu),
        peak::cores(),
        peak::simd(),
        show(peaks.gpu),
        copy.cpu.unwrap_or(0.0)
    );
    Ok((peaks, copy))
}

/// case, device, median (min-max), GFLOP/s, GB/s, % of peak (FLOP/s against the FMA peak, or
/// for pooling GB/s against the copy bandwidth), GPU/CPU, GPU submits and dispatches per run, then convshade /
/// other per compared report.
fn table(report: &Report, others: &[Report]) -> Table {
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN);
    let mut header = vec![
        "case".to_string(),
        "device".into(),
        "median ms (min-max)".into(),
        "GFLOP/s".into(),
        "GB/s".into(),
        "% of peak".into(),
        "GPU / CPU".into(),
        "submits".into(),
        "dispatches".into(),
    ];
    header.extend(others.iter().map(|o| format!("vs {} ({})", o.engine, o.version)));
    t.set_header(header);
    for r in &report.results {
        let gpu_cpu = match (r.device.as_str(), report.find(&r.case, "cpu")) {
            ("gpu", Some(c)) => format!("{:.2}x", r.median_ms / c.median_ms),
            _ => "-".into(),
        };
        let pct = match (r.gflops, report.peak_gflops.of(&r.device)) {
            (Some(g), Some(p)) => Some(g / p),
            _ => r.gbps.zip(report.peak_copy_gbps.of(&r.device)).map(|(g, p)| g / p),
        }
        .map_or("-".into(), |f| format!("{:.1}%", 100.0 * f));
        let mut row = vec![
            Cell::new(&r.case),
            Cell::new(&r.device),
            Cell::new(format!("{} ({}-{})", ms(r.median_ms), ms(r.min_ms), ms(r.max_ms))),
            Cell::new(r.gflops.map_or("-".into(), |g| format!("{g:.1}"))),
            Cell::new(r.gbps.map_or("-".into(), |g| format!("{g:.1}"))),
            Cell::new(pct),
            Cell::new(gpu_cpu),
            Cell::new(r.submits.map_or("-".into(), |s| s.to_string())),
            Cell::new(r.dispatches.map_or("-".into(), |s| s.to_string())),
        ];
        for o in others {
            let ratio = o
                .find(&r.case, &r.device)
                .map_or("-".into(), |x| format!("{:.2}x", r.median_ms / x.median_ms));
            row.push(Cell::new(ratio));
        }
        let row: Vec<Cell> = row
            .into_iter()
            .enumerate()
            .map(|(i, c)| match i {
                0 | 1 => c,
                _ => c.set_alignment(CellAlignment::Right),
            })
            .collect();
        t.add_row(row);
    }
    t
}

/// Three significant digits.
fn ms(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}
