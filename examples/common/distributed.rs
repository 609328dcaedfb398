//! `--distributed`: the training examples on MPI's processes. Every rank builds the network,
//! rank 0's weights are copied to all, each rank trains on its share of every batch, and the
//! gradients are averaged before each step; rank 0 prints and saves.

use convshade::distributed::{DdpOptions, DistributedSampler, GradientSync, World};
use convshade::nn::Sequential;
use convshade::{Device, GradStore, Result};

use super::{train, Defaults, Norm, Ranks, TrainFlags};

/// MPI's processes, and the gradient averaging of one network.
struct MpiRanks {
    world: World,
    sync: GradientSync,
    seed: u64,
}

impl Ranks for MpiRanks {
    fn is_root(&self) -> bool {
        self.world.is_root()
    }
    fn share(&self, len: usize, epoch: u64) -> Option<Vec<usize>> {
        let mut s = DistributedSampler::new(len, self.world.size(), self.world.rank())
            .ok()?
            .shuffle(self.seed);
        s.set_epoch(epoch);
        Some(s.indices())
    }
    fn eval_share(&self, len: usize) -> Option<Vec<usize>> {
        Some((self.world.rank()..len).step_by(self.world.size()).collect())
    }
    fn average(&self, grads: GradStore) -> Result<GradStore> {
        self.sync.average_gradients(&grads)
    }
    fn sum(&self, values: &mut [f64]) {
        let mut v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        self.world.all_reduce_sum("sum", &mut v);
        for (x, y) in values.iter_mut().zip(v) {
            *x = y as f64;
        }
    }
}

/// `main` of a training example under `mpirun`.
pub fn main(
    flags: &TrainFlags, d: &Defaults, network: fn(u64, &Device, Norm) -> Result<Sequential>,
) -> Result<()> {
    let world = World::init()?;
    let dev = world.device(flags.device.as_deref().unwrap_or("auto"))?;
    let norm = if flags.sync_bn { Norm::Sync } else { Norm::Plain };
    let mut net = network(flags.seed, &dev, norm)?;
    let sync = GradientSync::new(&net, &world, DdpOptions::default())?;
    if world.is_root() {
        let b = flags.batch_size.unwrap_or(d.batch_size);
        println!(
            "{} processes, a batch of {b} each ({} in all){}",
            world.size(),
            b * world.size(),
            if flags.sync_bn { ", batch norm synchronised" } else { "" }
        );
    }
    let ranks = MpiRanks { world, sync, seed: flags.seed };
    train(&mut net, flags, d, &dev, &ranks, &mut std::io::stdout())
}
