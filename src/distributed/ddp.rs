//! `DistributedDataParallel`: a module's replicas kept identical across ranks by averaging
//! their gradients in buckets after each backward.

use std::ops::Range;
use std::time::Duration;

use super::world::{all_reduce_sum_into, World};
use crate::nn::Module;
use crate::ops::index::concat_flat;
use crate::{Error, GradStore, Result, Tensor, Var};

/// How gradients are grouped for the all-reduce.
#[derive(Clone, Copy, Debug)]
pub struct DdpOptions {
    /// Most bytes of gradients per bucket (PyTorch's `bucket_cap_mb`, default 25 MiB). A
    /// parameter larger than this is a bucket of its own.
    pub bucket_bytes: usize,
}

impl Default for DdpOptions {
    fn default() -> Self {
        DdpOptions { bucket_bytes: 25 << 20 }
    }
}

/// A module trained data-parallel: identical replicas on every rank. It owns the module; a
/// training loop that keeps its module uses [`GradientSync`], the half that does the work.
pub struct DistributedDataParallel<M: Module> {
    module: M,
    sync: GradientSync,
}

/// What keeps a module's replicas identical: its plan checked across ranks, rank 0's state
/// broadcast, gradients averaged in buckets. Holds the module's variables (shared handles),
/// not the module.
pub struct GradientSync {
    /// The number of ranks, and how long a rank waits before reporting a stall.
    size: usize,
    stall: Duration,
    /// The parameters, last registered first (their gradients are ready first).
    params: Vec<Var>,
    /// Parameters and buffers by name, for the broadcast and the replica check.
    state: Vec<(String, Var)>,
    /// Each bucket: a range of `params`.
    buckets: Vec<Range<usize>>,
}

/// FNV-1a, for comparing plans across ranks.
fn hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

impl GradientSync {
    /// For `module`: compares its plan with every rank's (an `Err` on every rank naming the
    /// difference), then copies rank 0's parameters and buffers into it on every rank.
    pub fn new(module: &dyn Module, world: &World, opts: DdpOptions) -> Result<Self> {
        let mut params = module.parameters();
        params.reverse();
        let mut buckets = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, p) in params.iter().enumerate() {
            let b = p.as_tensor().elem_count() * 4;
            if i > start && bytes + b > opts.bucket_bytes {
                buckets.push(start..i);
                (start, bytes) = (i, 0);
            }
            bytes += b;
        }
        if start < params.len() {
            buckets.push(start..params.len());
        }
        let (size, stall) = (world.size(), world.stall_timeout());
        let state = module.named_state();
        let sync = GradientSync { size, stall, params, state, buckets };
        sync.compare_plans(world)?;
        sync.broadcast_state(world)?;
        Ok(sync)
    }

    /// The number of gradient buckets.
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// `[parameters, elements, hash of the names and shapes, buckets, hash of the buckets]`.
    fn plan(&self) -> [u64; 5] {
        let elements: usize = self.params.iter().map(|p| p.as_tensor().elem_count()).sum();
        let shapes = self.state.iter().flat_map(|(name, v)| {
            let dims =
                v.as_tensor().dims().iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>();
            name.bytes().chain([0]).chain(dims)
        });
        let cuts = self.buckets.iter().flat_map(|b| b.end.to_le_bytes());
        [
            self.params.len() as u64,
            elements as u64,
            hash(shapes),
            self.buckets.len() as u64,
            hash(cuts),
        ]
    }

    fn compare_plans(&self, world: &World) -> Result<()> {
        let all = world.all_gather(&self.plan());
        let Some((r, p)) = all.iter().enumerate().find(|(_, p)| **p != all[0]) else {
            return Ok(());
        };
        let q = &all[0];
        let what = if p[..2] != q[..2] {
            format!(
                "rank {r}'s model has {} parameters of {} elements, rank 0's {} of {}",
                p[0], p[1], q[0], q[1]
            )
        } else if p[2] != q[2] {
            format!(
                "rank {r}'s model differs from rank 0's in its parameter or buffer names or shapes"
            )
        } else {
            format!(
                "rank {r} plans {} gradient buckets, rank 0 {} (or cuts them elsewhere): the \
                 bucket size differs",
                p[3], q[3]
            )
        };
        Err(Error::Distributed { op: "DistributedDataParallel", msg: what })
    }

    /// Rank 0's parameters and buffers on every rank, in one broadcast.
    fn broadcast_state(&self, world: &World) -> Result<()> {
        let state: Vec<&Var> = self.state.iter().map(|(_, v)| v).collect();
        if state.is_empty() || world.size() == 1 {
            return Ok(());
        }
        let values: Vec<Tensor> = state.iter().map(|v| v.as_tensor()).collect();
        let mut host = concat_flat(&values.iter().collect::<Vec<_>>())?.to_vec()?;
        world.broadcast(&mut host, 0);
        let dev = values[0].device();
        let all =
            Tensor::from_vec(host, [values.iter().map(Tensor::elem_count).sum::<usize>()], &dev)?;
        let mut at = 0;
        for (v, t) in state.iter().zip(&values) {
            let n = t.elem_count();
            v.set(&all.narrow(0, at, n)?.reshape(t.dims().to_vec())?)?;
            at += n;
        }
        Ok(())
    }

    /// The gradients of `grads` averaged over every rank, bucket by bucket in one fixed order:
    /// per bucket, the gradients joined on the device, one readback, one all-reduce, one
    /// upload. A parameter without a gradient counts as zeros, so every rank sends the same.
    pub fn average_gradients(&self, grads: &GradStore) -> Result<GradStore> {
        let mut out = GradStore::default();
        let scale = 1.0 / self.size as f32;
        for bucket in &self.buckets {
            let vars = &self.params[bucket.clone()];
            let flat = vars
                .iter()
                .map(|v| {
                    let p = v.as_tensor();
                    match grads.get_var(v) {
                        Some(g) => Ok(g.clone()),
                        None => Tensor::zeros(p.dims().to_vec(), &p.device()),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let joined = match &flat[..] {
                [one] => one.reshape([one.elem_count()])?,
                _ => concat_flat(&flat.iter().collect::<Vec<_>>())?,
            };
            let local = joined.to_vec()?;
            let mut host = vec![0.0; local.len()];
            let op = "DistributedDataParallel::average_gradients";
            all_reduce_sum_into(op, &local, &mut host, self.stall);
            for x in &mut host {
                *x *= scale;
            }
            let back = Tensor::from_vec(host, [joined.elem_count()], &joined.device())?;
            let mut at = 0;
            for (v, g) in vars.iter().zip(&flat) {
                let n = g.elem_count();
                out.insert_var(v, back.narrow(0, at, n)?.reshape(g.dims().to_vec())?);
                at += n;
            }
        }
        Ok(out)
    }

    /// Checks that every rank's parameters and buffers are bit for bit rank 0's (a checksum
    /// compared across ranks): an `Err` on every rank naming the ranks that differ.
    pub fn check_replicas(&self, world: &World) -> Result<()> {
        let mut bits = Vec::new();
        for (_, v) in &self.state {
            bits.extend(v.as_tensor().to_vec()?.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        }
        let all = world.all_gather(&[hash(bits)]);
        let differ: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
        match differ.is_empty() {
            true => Ok(()),
            false => Err(Error::Distributed {
                op: "DistributedDataParallel::check_replicas",
                msg: format!("the replicas of ranks {differ:?} differ from rank 0's"),
            }),
        }
    }
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `module`: its plan compared with every rank's (an `Err` on every rank naming the
    /// difference), then rank 0's parameters and buffers copied to every rank.
    pub fn new(module: M, world: &World, opts: DdpOptions) -> Result<Self> {
        let sync = GradientSync::new(&module, world, opts)?;
        Ok(DistributedDataParallel { module, sync })
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The number of gradient buckets.
    pub fn num_buckets(&self) -> usize {
        self.sync.num_buckets()
    }

    /// [`GradientSync::average_gradients`].
    pub fn average_gradients(&self, grads: &GradStore) -> Result<GradStore> {
        self.sync.average_gradients(grads)
    }

    /// [`GradientSync::check_replicas`].
    pub fn check_replicas(&self, world: &World) -> Result<()> {
        self.sync.check_replicas(world)
    }
}

impl<M: Module> Module for DistributedDataParallel<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.module.forward(x)
    }
    fn parameters(&self) -> Vec<Var> {
        self.module.parameters()
    }
    fn named_state(&self) -> Vec<(String, Var)> {
        self.module.named_state()
    }
    fn set_training(&mut self, training: bool) {
        self.module.set_training(training)
    }
}
