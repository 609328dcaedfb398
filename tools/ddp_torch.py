"""The anchor for `--distributed`: the MNIST CNN of examples/train_mnist.rs under PyTorch DDP
(gloo backend), one thread per process, on 1 and on N processes of this machine; prints
images/s of one epoch and the scaling efficiency.

    python tools/ddp_torch.py [--procs 2] [--batch 64] [--data data/cache/mnist]

`--batch` is the combined batch: each of N processes takes batch/N, as `mpirun -np N
train_mnist --distributed --batch-size batch/N`.
"""

import argparse
import gzip
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    data = gzip.open(path).read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def network():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def run(rank, procs, batch, data, port, out):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=procs)
    x = torch.tensor(idx(Path(data) / "train-images-idx3-ubyte.gz"), dtype=torch.float32)
    x = x[:, None] / 255.0
    y = torch.tensor(idx(Path(data) / "train-labels-idx1-ubyte.gz"), dtype=torch.long)
    ds = torch.utils.data.TensorDataset(x, y)
    sampler = torch.utils.data.distributed.DistributedSampler(ds, procs, rank, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch // procs, sampler=sampler)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(network())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    dist.barrier()
    start, seen = time.perf_counter(), 0
    for xb, yb in loader:
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        seen += len(yb)
    secs = time.perf_counter() - start
    total = torch.tensor([float(seen)])
    dist.all_reduce(total)
    if rank == 0:
        out.put(total.item() / secs)
    dist.destroy_process_group()


def images_per_s(procs, batch, data, port):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    mp.start_processes(run, args=(procs, batch, data, port, q), nprocs=procs, start_method="spawn")
    return q.get()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--data", default=str(Path(__file__).resolve().parent.parent / "data/cache/mnist"))
    a = p.parse_args()
    one = images_per_s(1, a.batch, a.data, 29500)
    many = images_per_s(a.procs, a.batch, a.data, 29501)
    print(f"PyTorch DDP (gloo), one thread per process: 1 process {one:.0f} images/s, "
          f"{a.procs} processes {many:.0f} images/s, scaling efficiency "
          f"{100 * many / (a.procs * one):.0f}%")
