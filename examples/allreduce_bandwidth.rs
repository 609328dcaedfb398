//! The all-reduce's bandwidth under `mpirun -np N`: averaging one gradient of each size through
//! `GradientSync` (the gradients joined, read back, all-reduced, scaled and uploaded: the
//! training path) against the MPI library's own all-reduce of the same bytes. Bandwidth is
//! what ring all-reduce moves per rank, 2 (N-1)/N of the message, over the time.
//!
//! `mpirun -np 2 target/release/examples/allreduce_bandwidth [--device cpu|gpu]`

use std::time::Instant;

use convshade::distributed::{DdpOptions, GradientSync, World};
use convshade::nn::{Linear, Module};
use convshade::{GradStore, Result, Tensor};

fn main() -> Result<()> {
    let world = World::init()?;
    let device = std::env::args().skip_while(|a| a != "--device").nth(1).unwrap_or("cpu".into());
    let dev = world.device(&device)?;
    let n = world.size() as f64;
    if world.is_root() {
        println!(
            "{} ranks, {}; MB/s per rank (2(N-1)/N of the message over the time)",
            world.size(),
            dev.name()
        );
        println!("{:>12} {:>16} {:>16} {:>8}", "floats", "MPI all-reduce", "GradientSync", "ratio");
    }
    for floats in [1 << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22] {
        // one parameter of `floats` elements and its gradient
        let layer = Linear::new(floats / 8, 8, false, 1, &dev)?;
        let sync = GradientSync::new(&layer, &world, DdpOptions::default())?;
        let p = &layer.parameters()[0];
        let mut grads = GradStore::default();
        grads.insert_var(p, Tensor::rand(p.as_tensor().dims().to_vec(), 2, &dev)?);
        let reps = (1 << 24) / floats;
        let mut host = vec![1.0f32; floats];
        let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
            f()?;
            world.barrier();
            let t = Instant::now();
            for _ in 0..reps {
                f()?;
            }
            world.barrier();
            Ok(t.elapsed().as_secs_f64() / reps as f64)
        };
        let raw = time(&mut || {
            world.all_reduce_sum("bench", &mut host);
            Ok(())
        })?;
        let ours = time(&mut || sync.average_gradients(&grads).map(drop))?;
        let mb = |s: f64| 2.0 * (n - 1.0) / n * floats as f64 * 4.0 / s / 1e6;
        if world.is_root() {
            println!("{floats:>12} {:>16.0} {:>16.0} {:>7.2}x", mb(raw), mb(ours), raw / ours);
        }
    }
    Ok(())
}
