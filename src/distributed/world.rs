//! The processes of an MPI job: initialisation, ranks, a device per local rank, and the
//! collectives the data-parallel wrapper uses (on host buffers of f32 and u64).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Stalls this process has reported (for tests and monitoring).
static STALLS: AtomicUsize = AtomicUsize::new(0);

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use crate::gpu::{enumerate_adapters, GpuOptions};
use crate::{Device, Error, Result};

/// This process's place in the MPI job. Dropping it finalises MPI; make one per process, in
/// `main`, and keep it while training.
pub struct World {
    _universe: Universe,
    comm: SimpleCommunicator,
    local: (usize, usize),
    stall: Duration,
}

impl World {
    /// Initialises MPI (a program started without `mpirun` is a world of one).
    pub fn init() -> Result<World> {
        let universe = mpi::initialize().ok_or_else(|| Error::Distributed {
            op: "World::init",
            msg: "MPI is already initialised in this process".into(),
        })?;
        let comm = universe.world();
        // the ranks on this machine, for one adapter each
        let node = comm.split_shared(comm.rank());
        let local = (node.rank() as usize, node.size() as usize);
        Ok(World { _universe: universe, comm, local, stall: Duration::from_secs(60) })
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.comm.size() as usize
    }

    /// This process's rank among those on its machine.
    pub fn local_rank(&self) -> usize {
        self.local.0
    }

    /// Whether this is rank 0, the one that prints and saves.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// How long a collective may wait before this rank reports that another has stalled
    /// (default 60 s). The report is a line on stderr; the wait goes on.
    pub fn set_stall_timeout(&mut self, after: Duration) {
        self.stall = after;
    }

    /// The device named `name` (`cpu`, `gpu`, `auto`) for this rank: on a machine with several
    /// hardware adapters, local rank `r` takes adapter `r` modulo their number.
    pub fn device(&self, name: &str) -> Result<Device> {
        if name == "cpu" {
            return Ok(Device::cpu());
        }
        let hardware: Vec<usize> = enumerate_adapters()
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.is_software)
            .map(|(i, _)| i)
            .collect();
        match hardware.len() {
            0 | 1 => Device::from_name(name),
            n => Device::gpu_with(GpuOptions {
                adapter: Some(hardware[self.local_rank() % n]),
                ..Default::default()
            }),
        }
    }

    /// `data` summed over every rank, in place, on every rank (a rank that waits past the
    /// stall timeout reports it).
    pub fn all_reduce_sum(&self, op: &'static str, data: &mut [f32]) {
        all_reduce_sum(op, data, self.stall)
    }

    /// How many times this process has reported waiting past the stall timeout.
    pub fn stalls_reported(&self) -> usize {
        STALLS.load(Ordering::Relaxed)
    }

    /// The stall timeout, for a wrapper that keeps no reference to the world.
    pub(super) fn stall_timeout(&self) -> Duration {
        self.stall
    }

    /// `data` from rank `root`, on every rank.
    pub fn broadcast(&self, data: &mut [f32], root: usize) {
        self.comm.process_at_rank(root as i32).broadcast_into(data);
    }

    /// Every rank's `values` (of one length on every rank), rank by rank.
    pub fn all_gather(&self, values: &[u64]) -> Vec<Vec<u64>> {
        let mut all = vec![0u64; values.len() * self.size()];
        self.comm.all_gather_into(values, &mut all[..]);
        all.chunks(values.len().max(1)).map(<[u64]>::to_vec).collect()
    }

    /// Waits for every rank.
    pub fn barrier(&self) {
        self.comm.barrier();
    }
}

/// `data` summed over every rank of the world communicator, in place: a non-blocking
/// all-reduce polled, so that a rank waiting past `stall` reports it on stderr. Callable
/// without a [`World`] at hand (autograd's backward closures, wrappers that must be `Sync`)
/// while one lives.
pub(super) fn all_reduce_sum(op: &'static str, data: &mut [f32], stall: Duration) {
    let send = data.to_vec();
    all_reduce_sum_into(op, &send, data, stall);
}

/// `send` summed over every rank into `recv` (of its length), as [`all_reduce_sum`].
pub(super) fn all_reduce_sum_into(
    op: &'static str, send: &[f32], recv: &mut [f32], stall: Duration,
) {
    let comm = SimpleCommunicator::world();
    let rank = comm.rank();
    mpi::request::scope(|scope| {
        let mut req = comm.immediate_all_reduce_into(scope, send, recv, SystemOperation::sum());
        let start = Instant::now();
        let mut reported = false;
        loop {
            match req.test() {
                Ok(_) => break,
                Err(r) => req = r,
            }
            if !reported && start.elapsed() > stall {
                reported = true;
                STALLS.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "convshade: rank {rank} has waited {:.1} s in {op}: another rank has not \
                     reached it (stalled or failed)",
                    start.elapsed().as_secs_f64()
                );
            }
            std::thread::yield_now();
        }
    });
}
