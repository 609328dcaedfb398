//! `cargo bench`: the benchmark suite of `convshade::bench` on the CPU and, when there is one,
//! the GPU. `CONVSHADE_BENCH_QUICK=1` uses the small sizes.

fn main() -> convshade::Result<()> {
    let mut devices = vec![convshade::Device::cpu()];
    match convshade::Device::gpu() {
        Ok(g) => devices.push(g),
        Err(e) => eprintln!("no GPU device ({e}); CPU only"),
    }
    let cfg = convshade::bench::BenchConfig {
        quick: std::env::var("CONVSHADE_BENCH_QUICK").as_deref() == Ok("1"),
        ..Default::default()
    };
    // `cargo bench -- NAME` filters by case name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    convshade::bench::run(&devices, &cfg, filter.as_deref(), |r| {
        println!("{}", convshade::bench::format_row(r))
    })?;
    Ok(())
}
