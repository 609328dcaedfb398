//! The `convshade` command.

mod bench;
mod plot;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "convshade", version, about = "A tensor engine for conv nets on wgpu")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the adapters wgpu finds with their self-test results, the one chosen, and the
    /// limits that matter.
    Info {
        /// Run the self-test's loop canary with this many iterations instead of the kernels'
        /// budget (probes a driver's loop limit).
        #[arg(long)]
        loop_cap: Option<usize>,
    },
    /// Time the standard suite on each device, against the measured peak and, with
    /// `--compare`, another engine's report (tools/bench_torch.py writes PyTorch's).
    Bench(bench::BenchArgs),
    /// Time the GEMM's candidate tilings for every product of the standard suite on the GPU
    /// and cache the fastest per kernel and shape class (later runs read the cache).
    Tune {
        /// Only the cases whose name matches this regular expression.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Run a `convshade-cases/1` directory (PyTorch reference outputs and gradients).
    Verify {
        /// The directory holding manifest.json.
        dir: std::path::PathBuf,
        /// Devices to run on: cpu, gpu, or all available.
        #[arg(long, default_value = "all", value_parser = ["cpu", "gpu", "all"])]
        device: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Info { loop_cap } => info(loop_cap).map(|_| 0),
        Cmd::Verify { dir, device } => verify(&dir, &device),
        Cmd::Bench(args) => bench::bench(&args),
        Cmd::Tune { filter } => bench::tune(filter.as_deref()).map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

pub(crate) fn devices(which: &str) -> convshade::Result<Vec<convshade::Device>> {
    Ok(match which {
        "cpu" => vec![convshade::Device::cpu()],
        "gpu" => vec![convshade::Device::gpu()?],
        _ => {
            let mut d = vec![convshade::Device::cpu()];
            match convshade::Device::gpu() {
                Ok(g) => d.push(g),
                Err(e) => eprintln!("note: no GPU device, running on the CPU only ({e})"),
            }
            d
        }
    })
}

/// Runs a case directory; exit status 1 when any case failed.
fn verify(dir: &std::path::Path, which: &str) -> convshade::Result<i32> {
    let suite = convshade::conformance::load_suite(dir)?;
    let devices = devices(which)?;
    let results = convshade::conformance::run_suite(&suite, &devices, |r| println!("{r}"));
    let failed = results.iter().filter(|r| !r.passed).count();
    println!("{} passed, {} failed", results.len() - failed, failed);
    Ok(if failed > 0 { 1 } else { 0 })
}

/// The self-test of adapter `index` of `enumerate_adapters`, in one line.
fn self_test(index: usize, loop_cap: Option<usize>) -> String {
    let opts = convshade::gpu::GpuOptions {
        adapter: Some(index),
        skip_self_test: true,
        loop_cap,
        ..Default::default()
    };
    match convshade::gpu::GpuContext::with_options(opts) {
        Ok(ctx) => {
            let r = ctx.run_self_test();
            match r.failure {
                None => format!("passed ({}) in {:.1} ms", r.passed.join(", "), r.millis),
                Some(f) => format!("FAILED: {f} ({:.1} ms); this adapter is refused", r.millis),
            }
        }
        Err(e) => format!("not run: {e}"),
    }
}

fn info(loop_cap: Option<usize>) -> convshade::Result<()> {
    let adapters = convshade::gpu::enumerate_adapters();
    if adapters.is_empty() {
        println!("no adapters found");
    }
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "adapter: {} | backend {} | type {}{} | driver {}",
            a.name,
            a.backend,
            a.device_type,
            if a.is_software { " (software)" } else { "" },
            a.driver
        );
        println!("  self-test: {}", self_test(i, loop_cap));
    }
    match convshade::Device::gpu() {
        Ok(convshade::Device::Gpu(ctx)) => {
            let a = ctx.adapter();
            let l = ctx.limits();
            println!("chosen for Device::gpu(): {} ({})", a.name, a.backend);
            println!("  max buffer size:                  {}", l.max_buffer_size);
            println!("  max storage buffer binding size:  {}", l.max_storage_buffer_binding_size);
            println!("  max workgroups per dimension:     {}", l.max_workgroups_per_dimension);
            println!(
                "  storage buffers per shader stage: {}",
                l.max_storage_buffers_per_shader_stage
            );
            println!(
                "  max invocations per workgroup:    {}",
                l.max_compute_invocations_per_workgroup
            );
            println!(
                "  workgroup storage size:           {}",
                l.max_compute_workgroup_storage_size
            );
            println!(
                "  GEMM tiles:                       {} (large), {} (small)",
                l.gemm.large, l.gemm.small
            );
            println!(
                "  subgroup operations:              {}",
                if ctx.uses_subgroups() { "used" } else { "none" }
            );
            print_tuning(&ctx);
        }
        Ok(_) => {}
        Err(e) => println!("Device::gpu(): {e}"),
    }
    let auto = convshade::Device::auto();
    println!("Device::auto(): {}", auto.name());
    Ok(())
}

/// The context's tuning: mode, cache, candidates, and the tilings chosen so far.
pub(crate) fn print_tuning(ctx: &convshade::gpu::GpuContext) {
    let (mode, cache) = ctx.tuning();
    let cache = cache.map_or("none".into(), |p| p.display().to_string());
    println!("  GEMM tuning:                      {mode:?} (cache {cache})");
    let cands: Vec<String> = ctx.gemm_candidates().iter().map(|t| t.to_string()).collect();
    println!("    candidates (rows x columns / depth (block per thread)): {}", cands.join(", "));
    for (key, t) in ctx.tuned() {
        println!("    {key}: {t}");
    }
}
