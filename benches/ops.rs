//! `cargo bench`: the standard suite of `convshade::bench` on the CPU and, when there is one,
//! the GPU. `CONVSHADE_BENCH_QUICK=1` takes fewer samples; `cargo bench -- NAME` runs the cases
//! whose name contains NAME. `convshade bench` is the full runner (table, peak, comparison).

fn main() -> convshade::Result<()> {
    let mut devices = vec![convshade::Device::cpu()];
    match convshade::Device::gpu() {
        Ok(g) => devices.push(g),
        Err(e) => eprintln!("no GPU device ({e}); CPU only"),
    }
    let cfg = match std::env::var("CONVSHADE_BENCH_QUICK").as_deref() {
        Ok("1") => convshade::bench::BenchConfig::quick(),
        _ => convshade::bench::BenchConfig::full(),
    };
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let keep = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let results = convshade::bench::run(&devices, &cfg, keep, |_, _| {})?;
    for r in results {
        let gflops = r.gflops.map_or("-".into(), |g| format!("{g:.1} GFLOP/s"));
        println!("{:<18} {:<4} {:>10.3} ms  {gflops}", r.case, r.device, r.median_ms);
    }
    Ok(())
}
