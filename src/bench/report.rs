//! The results file, one schema for every engine (convshade, and PyTorch through
//! `tools/bench_torch.py`):
//!
//! ```json
//! {"engine": "convshade", "version": "0.1.0",
//!  "adapter": {"name": "...", "backend": "Vulkan", "device_type": "Cpu", "driver": "..."},
//!  "host": {"cpu": "...", "cores": 2, "simd": "avx512f"},
//!  "peak_gflops": {"cpu": 180.5, "gpu": null},
//!  "peak_copy_gbps": {"cpu": 37.5, "gpu": null},
//!  "results": [{"case": "gemm_256", "device": "cpu", "median_ms": 0.3, "min_ms": 0.29,
//!               "max_ms": 0.35, "runs": 400, "gflops": 110.2, "gbps": null}]}
//! ```
//!
//! `adapter` is null without a GPU; a `gflops` is null for cases without a FLOP count
//! (pooling), a `gbps` (the least traffic a run must make, over its time) for cases without a
//! byte count (all but pooling); a peak is null where it was not measured. `peak_copy_gbps` and
//! `gbps` may be absent (older reports).

use serde::{Deserialize, Serialize};

use crate::{Device, Error, Result};

/// One case on one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// The suite case's name (`gemm_256`, ...).
    pub case: String,
    /// `"cpu"` or `"gpu"`.
    pub device: String,
    /// Per run, over the samples.
    pub median_ms: f64,
    /// Fastest sample, per run.
    pub min_ms: f64,
    /// Slowest sample, per run.
    pub max_ms: f64,
    /// Timed runs in all (samples times the calibrated inner loop).
    pub runs: usize,
    /// GFLOP/s at the median time (`None` for cases without a FLOP count).
    pub gflops: Option<f64>,
    /// GB/s of the least traffic a run must make, at the median time (`None` for cases without
    /// a byte count).
    #[serde(default)]
    pub gbps: Option<f64>,
    /// GPU command-buffer submits of one run, its closing sync included (`None` on the CPU).
    #[serde(default)]
    pub submits: Option<usize>,
    /// GPU compute dispatches of one run (`None` on the CPU).
    #[serde(default)]
    pub dispatches: Option<usize>,
}

impl BenchResult {
    /// From per-run seconds of each sample.
    pub fn from_samples(
        case: &str, device: &str, per_run: &[f64], inner: usize, flops: Option<f64>,
    ) -> Self {
        let mut s = per_run.to_vec();
        s.sort_by(f64::total_cmp);
        let median = if s.len() % 2 == 1 {
            s[s.len() / 2]
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
        };
        BenchResult {
            case: case.into(),
            device: device.into(),
            median_ms: median * 1e3,
            min_ms: s[0] * 1e3,
            max_ms: s[s.len() - 1] * 1e3,
            runs: s.len() * inner,
            gflops: flops.map(|f| f / median / 1e9),
            gbps: None,
            submits: None,
            dispatches: None,
        }
    }

    /// With the GB/s of `bytes` moved per run at the median time.
    pub fn with_bytes(self, bytes: Option<f64>) -> Self {
        BenchResult { gbps: bytes.map(|b| b / (self.median_ms * 1e-3) / 1e9), ..self }
    }
}

/// The GPU adapter the results ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdapterJson {
    /// The adapter's name, as the driver reports it.
    pub name: String,
    /// The graphics API it ran through (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    #[serde(default)]
    pub backend: String,
    /// The adapter's kind (`DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...).
    #[serde(default)]
    pub device_type: String,
    /// The driver's name and version.
    #[serde(default)]
    pub driver: String,
}

/// The machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// The widest SIMD the CPU has (`avx512f`, `avx2+fma`, `neon`, ...).
    pub simd: String,
}

/// A measured peak per device: attainable f32 GFLOP/s, or copy GB/s (read plus write).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// The CPU's peak (`None` where not measured).
    pub cpu: Option<f64>,
    /// The GPU's peak (`None` where not measured or without a GPU).
    pub gpu: Option<f64>,
}

impl Peaks {
    /// The peak of a result's device.
    pub fn of(&self, device: &str) -> Option<f64> {
        match device {
            "cpu" => self.cpu,
            "gpu" => self.gpu,
            _ => None,
        }
    }
}

/// A whole run of one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The engine that produced the results (`convshade`, `torch`).
    pub engine: String,
    /// The engine's version.
    pub version: String,
    /// The GPU adapter (`None` without a GPU).
    pub adapter: Option<AdapterJson>,
    /// The machine the run was on.
    pub host: Host,
    /// Measured peak f32 GFLOP/s per device.
    pub peak_gflops: Peaks,
    /// Measured peak copy GB/s per device (read plus write).
    #[serde(default)]
    pub peak_copy_gbps: Peaks,
    /// Every case's result on every device.
    pub results: Vec<BenchResult>,
}

impl Report {
    /// convshade's report of `results` on `devices`.
    pub fn new(devices: &[Device], peak_gflops: Peaks, results: Vec<BenchResult>) -> Self {
        let adapter = devices.iter().find_map(|d| match d {
            Device::Gpu(ctx) => {
                let a = ctx.adapter();
                Some(AdapterJson {
                    name: a.name.clone(),
                    backend: a.backend.clone(),
                    device_type: a.device_type.clone(),
                    driver: a.driver.clone(),
                })
            }
            Device::Cpu => None,
        });
        Report {
            engine: "convshade".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            adapter,
            host: host(),
            peak_gflops,
            peak_copy_gbps: Peaks::default(),
            results,
        }
    }

    /// The result for `case` on `device`, if the run has one.
    pub fn find(&self, case: &str, device: &str) -> Option<&BenchResult> {
        self.results.iter().find(|r| r.case == case && r.device == device)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // plain data: serialization cannot fail
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a report from JSON; `origin` names the source (a file path) in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Report> {
        serde_json::from_str(text).map_err(|e| Error::Io {
            path: origin.into(),
            msg: format!("not a benchmark report: {e}"),
        })
    }
}

/// This machine: CPU model, logical cores, widest SIMD.
pub fn host() -> Host {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    Host { cpu, cores: super::peak::cores(), simd: super::peak::simd().into() }
}
