"""Train the networks of `examples/train_mnist.rs` and `examples/train_fashion.rs` on PyTorch.

    /tmp/vt/bin/python tools/train_torch.py --dataset mnist              # 10 epochs, CPU
    /tmp/vt/bin/python tools/train_torch.py --dataset fashion --device cuda --save f.safetensors

Same networks, AdamW (weight decay 0.01), cosine schedule stepped per epoch, batch size,
epochs and output lines as the Rust examples, so the two can be compared line by line.
Data: the gzipped IDX files of `tools/fetch_data.sh`, pixels x/255, no normalisation.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {  # dataset: (epochs, batch size, lr), as the Rust examples
    "mnist": (10, 64, 1e-3),
    "fashion": (4, 128, 1e-3),
}
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_idx(path):
    """A gzipped IDX file as a numpy array: big-endian header, then unsigned bytes."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte; low byte: number of dimensions
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    for name in FILES:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            print(f"error: missing data file {path}; run `bash tools/fetch_data.sh` first",
                  file=sys.stderr)
            sys.exit(1)
    arrays = [read_idx(os.path.join(data_dir, name)) for name in FILES]

    def images(a):  # (n, 28, 28) uint8 -> (n, 1, 28, 28) float32 in [0, 1]
        return torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)

    def labels(a):
        return torch.from_numpy(a.astype(np.int64))
    return images(arrays[0]), labels(arrays[1]), images(arrays[2]), labels(arrays[3])


def build(dataset):
    if dataset == "mnist":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    # Convolutions without bias: the batch norm that follows would cancel it.
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def sync(dev):
    if dev.type == "cuda":  # CUDA runs asynchronously: wait before reading the clock
        torch.cuda.synchronize(dev)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()  # batch norm uses its running statistics, dropout is off
    correct = 0
    for i in range(0, len(x), 1000):
        correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    return 100.0 * correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(DEFAULTS))
    p.add_argument("--data", help="IDX directory (default data/cache/<dataset>)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--save", metavar="FILE.safetensors", help="write the trained state_dict")
    a = p.parse_args()
    epochs, batch, lr = DEFAULTS[a.dataset]
    epochs = a.epochs if a.epochs is not None else epochs
    batch = a.batch_size if a.batch_size is not None else batch
    lr = a.lr if a.lr is not None else lr
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)

    xtr, ytr, xte, yte = load(a.data or os.path.join("data", "cache", a.dataset))
    # The sets are small (at most 60,000 x 784 floats): keep them on the device.
    xtr, ytr, xte, yte = (t.to(dev) for t in (xtr, ytr, xte, yte))

    torch.manual_seed(a.seed)
    model = build(a.dataset).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0.0)
    # Its own generator, so the shuffles do not depend on how many random numbers dropout drew.
    gen = torch.Generator().manual_seed(a.seed)

    n = len(xtr)
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)  # a fresh order every epoch
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        sync(dev)
        t0 = time.perf_counter()
        for i in range(0, n, batch):  # the last partial batch is kept
            idx = perm[i:i + batch]
            xb, yb = xtr[idx], ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # Summed on the device: a .item() per batch would stall CUDA every step.
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        sync(dev)
        dt = time.perf_counter() - t0
        sched.step()
        test_acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}/{epochs}: loss {loss_sum.item() / n:.4f}, "
              f"train accuracy {100.0 * correct.item() / n:.2f}%, "
              f"test accuracy {test_acc:.2f}%, {dt:.1f} s ({n / dt:.0f} images/s)", flush=True)

    print(f"test accuracy: {evaluate(model, xte, yte):.2f}%")
    if a.save:
        from safetensors.torch import save_file
        # contiguous copies on the CPU: save_file rejects non-contiguous or shared tensors
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  a.save)


if __name__ == "__main__":
    main()
