//! PyTorch's `DistributedSampler`: each rank a disjoint share of the epoch's permutation.

use rand::seq::SliceRandom;

use crate::{ensure, Result};

/// Which samples rank `rank` of `size` takes each epoch. The permutation is the one
/// [`DataLoader::shuffle`](crate::data::DataLoader::shuffle) draws for the same seed and epoch,
/// padded by repeating its start to a multiple of `size` (or its tail dropped), and rank `r`
/// takes every `size`-th index from `r`: batch `b` of `B` on every rank together is batch `b`
/// of `size * B` in one process.
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    len: usize,
    size: usize,
    rank: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    epoch: u64,
}

impl DistributedSampler {
    /// Over `len` samples, for rank `rank` of `size`; in order, the tail padded.
    pub fn new(len: usize, size: usize, rank: usize) -> Result<DistributedSampler> {
        ensure!(size > 0 && rank < size, "DistributedSampler", "rank {rank} of {size} ranks");
        Ok(DistributedSampler { len, size, rank, shuffle: None, drop_last: false, epoch: 0 })
    }

    /// A fresh permutation each epoch, drawn from `seed` and the epoch.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Drop the tail that does not divide evenly rather than padding it.
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }

    /// The epoch, which reshuffles (PyTorch's `set_epoch`).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Samples per rank per epoch.
    pub fn num_samples(&self) -> usize {
        match self.drop_last {
            true => self.len / self.size,
            false => self.len.div_ceil(self.size),
        }
    }

    /// This rank's samples for the current epoch.
    pub fn indices(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if let Some(seed) = self.shuffle {
            order.shuffle(&mut crate::data::epoch_rng(seed, self.epoch));
        }
        let total = self.num_samples() * self.size;
        let mut padded: Vec<usize> = order.iter().copied().cycle().take(total).collect();
        if self.len == 0 {
            padded.clear();
        }
        padded.into_iter().skip(self.rank).step_by(self.size).collect()
    }
}
