//! The benchmark runner: the suite's names, the JSON schema, a quick run on both devices, and
//! the command line. Nothing here is timed: the assertions are on what the runner reports.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use convshade::bench::{self, peak, report::Peaks, BenchConfig, BenchResult, Report};
use convshade::Device;

/// The standard suite, as its issue names it.
const SUITE: [&str; 26] = [
    "gemm_256",
    "gemm_512",
    "gemm_1024",
    "gemm_4096",
    "gemm_im2row",
    "conv_S1_fwd",
    "conv_S1_fwd_bwd",
    "conv_S2_fwd",
    "conv_S2_fwd_bwd",
    "conv_S3_fwd",
    "conv_S3_fwd_bwd",
    "conv_S4_fwd",
    "conv_S4_fwd_bwd",
    "conv_S5_fwd",
    "conv_S5_fwd_bwd",
    "max_pool_fwd",
    "avg_pool_fwd",
    "max_pool_fwd_bwd",
    "avg_pool_fwd_bwd",
    "batch_norm_fwd",
    "batch_norm_fwd_bwd",
    "train_step",
    "infer_step",
    "conv3d_fwd",
    "conv3d_fwd_bwd",
    "max_pool3d_fwd_bwd",
];

fn convshade(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_convshade"))
        .args(args)
        .output()
        .expect("the convshade binary runs");
    assert!(out.status.success(), "convshade {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn list_names_exactly_the_suite() {
    let out = convshade(&["bench", "--list"]);
    let names: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    assert_eq!(names, SUITE);
    let lib: Vec<String> = bench::suite().into_iter().map(|c| c.name).collect();
    assert_eq!(lib, SUITE);
    // the filter is a regular expression
    let out = convshade(&["bench", "--list", "--filter", "^conv_S[23]_fwd$"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(),
        ["conv_S2_fwd", "conv_S3_fwd"]
    );
}

#[test]
fn report_json_round_trips_and_reads_other_engines() {
    let r = BenchResult::from_samples("gemm_256", "cpu", &[0.002, 0.001, 0.004], 5, Some(1e9));
    // median, min and max per run over the samples; runs = samples x inner loop
    assert_eq!((r.median_ms, r.min_ms, r.max_ms), (2.0, 1.0, 4.0));
    assert_eq!(r.runs, 15);
    assert_eq!(r.gflops, Some(500.0));
    assert_eq!(r.gbps, None);
    let pool = BenchResult::from_samples("max_pool_fwd", "gpu", &[0.003, 0.001], 1, None)
        .with_bytes(Some(4e6));
    assert_eq!(pool.median_ms, 2.0);
    assert_eq!(pool.gflops, None);
    assert_eq!(pool.gbps, Some(2.0)); // 4 MB in 2 ms
    let peaks = Peaks { cpu: Some(100.0), gpu: None };
    let mut report = Report::new(&[Device::cpu()], peaks, vec![r, pool]);
    report.peak_copy_gbps.cpu = Some(30.0);
    assert_eq!(report.engine, "convshade");
    assert!(report.adapter.is_none());
    assert!(report.host.cores >= 1);
    let back = Report::from_json(&report.to_json(), "test").unwrap();
    assert_eq!(back, report);
    // the schema as tools/bench_torch.py writes it
    let torch = r#"{"engine": "torch", "version": "2.15.0", "adapter": null,
        "host": {"cpu": "x", "cores": 2, "simd": "avx2"},
        "peak_gflops": {"cpu": null, "gpu": null},
        "results": [{"case": "gemm_256", "device": "cpu", "median_ms": 0.5, "min_ms": 0.4,
                     "max_ms": 0.6, "runs": 100, "gflops": 67.1},
                    {"case": "max_pool_fwd", "device": "cpu", "median_ms": 1.5,
                     "min_ms": 1.4, "max_ms": 1.6, "runs": 10, "gflops": null}]}"#;
    let t = Report::from_json(torch, "torch.json").unwrap();
    assert_eq!(t.find("gemm_256", "cpu").unwrap().median_ms, 0.5);
    assert_eq!(t.find("max_pool_fwd", "cpu").unwrap().gflops, None);
    // reports without byte counts or a copy bandwidth still read
    assert_eq!(t.find("max_pool_fwd", "cpu").unwrap().gbps, None);
    assert_eq!(t.peak_copy_gbps, Peaks::default());
    assert!(t.find("gemm_256", "gpu").is_none());
    let e = Report::from_json(r#"{"engine": "torch"}"#, "bad.json").unwrap_err();
    assert!(e.to_string().contains("bad.json"), "{e}");
}

fn quick_run(devices: &[Device], name: &str) -> Vec<BenchResult> {
    bench::run(devices, &BenchConfig::quick(), |c| c == name, |_, _| {}).unwrap()
}

#[test]
fn a_quick_filtered_run_works_on_both_devices() {
    let mut devices = vec![Device::cpu()];
    devices.extend(common::gpu());
    for name in ["conv_S1_fwd_bwd", "max_pool_fwd"] {
        let results = quick_run(&devices, name);
        assert_eq!(results.len(), devices.len(), "{name}");
        for (r, dev) in results.iter().zip(&devices) {
            assert_eq!(r.case, name);
            assert_eq!(r.device, bench::device_kind(dev));
            assert!(r.min_ms > 0.0 && r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
            assert!(r.runs >= 1);
            // the GPU counts its submits and dispatches per run; the CPU has none
            assert_eq!(r.dispatches.is_some(), dev.is_gpu());
            assert!(r.dispatches.is_none_or(|d| d >= 1) && r.submits.is_none_or(|s| s >= 1));
            // conv_S1 is 2 * 1 * 6 * 7 * 2 = 168 FLOPs forward, 3x that with the backward
            match name {
                "conv_S1_fwd_bwd" => {
                    let flops = r.gflops.unwrap() * 1e9 * r.median_ms / 1e3;
                    assert!((flops - 504.0).abs() < 1e-6 * 504.0, "{flops}");
                }
                _ => {
                    assert_eq!(r.gflops, None);
                    // max_pool_fwd reads the input and writes the output and its indices:
                    // 4 * (64*32*28*28 + 2 * 64*32*14*14) bytes
                    let bytes = r.gbps.unwrap() * 1e9 * r.median_ms / 1e3;
                    let want = 4.0 * (64.0 * 32.0 * 784.0 + 2.0 * 64.0 * 32.0 * 196.0);
                    assert!((bytes - want).abs() < 1e-6 * want, "{bytes}");
                }
            }
        }
    }
}

#[test]
fn the_command_writes_json_and_a_chart_with_a_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let svg = dir.path().join("run.svg");
    let (json_s, svg_s) = (json.to_str().unwrap(), svg.to_str().unwrap());
    let args = ["bench", "--quick", "--device", "cpu", "--filter", "^conv_S1_fwd$"];
    convshade(&[&args[..], &["--json", json_s]].concat());
    let first = Report::from_json(&std::fs::read_to_string(&json).unwrap(), "run").unwrap();
    assert_eq!(first.results.len(), 1);
    assert_eq!(first.results[0].case, "conv_S1_fwd");
    // compare the run with itself: the ratio column and the other engine's bars appear
    let out = convshade(&[&args[..], &["--compare", json_s, "--plot", svg_s]].concat());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("vs convshade (0.1.0)"), "{table}");
    assert!(table.contains("conv_S1_fwd"), "{table}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "not an SVG");
    assert!(chart.contains("conv_S1_fwd"), "the chart names the case");
    assert_eq!(chart.matches("convshade cpu").count(), 2, "two legend entries");
    // a bad regular expression or plot format is an error, not a crash
    for bad in [
        &["bench", "--filter", "(", "--list"][..],
        &["bench", "--plot", "x.png", "--filter", "^$"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_convshade")).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("bench"));
    }
}

#[test]
fn peaks_are_measured_and_positive() {
    let cpu = peak::cpu_peak_gflops(Duration::from_millis(20));
    assert!(cpu.is_finite() && cpu > 0.1, "{cpu}");
    let copy = peak::cpu_copy_gbps(Duration::from_millis(20));
    assert!(copy.is_finite() && copy > 0.1, "{copy}");
    assert_eq!(peak::gpu_peak_gflops(&Device::cpu(), Duration::ZERO).unwrap(), None);
    if let Some(gpu) = common::gpu() {
        let g = peak::gpu_peak_gflops(&gpu, Duration::from_millis(20)).unwrap().unwrap();
        assert!(g.is_finite() && g > 0.0, "{g}");
    }
}
