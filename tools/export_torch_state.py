#!/usr/bin/env python3
"""Writes tests/fixtures/torch_state/: a small batch-norm CNN's state dict as PyTorch saves it
(safetensors.torch.save_file, `num_batches_tracked` as int64), an input batch, and the
network's eval-mode logits, for the test that loads PyTorch weights (tests/weights.rs).

The network is trained for a few steps first, so the weights and running statistics are not
their initial values.  Usage:  python3 tools/export_torch_state.py [--out DIR]
"""

import argparse
import os

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn


def network():
    # (n, 1, 8, 8) -> (n, 5); the same layers as the Rust test builds
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(24, 5))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="tests/fixtures/torch_state")
    a = p.parse_args()
    torch.manual_seed(0)
    net = network()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(7):
        x = torch.randn(16, 1, 8, 8) * 2 + 0.5
        y = torch.randint(0, 5, (16,))
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        logits = net(x)
    os.makedirs(a.out, exist_ok=True)
    save_file(net.state_dict(), os.path.join(a.out, "state.safetensors"))
    np.save(os.path.join(a.out, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "logits.npy"), logits.numpy().astype(np.float32))
    print({k: (tuple(v.shape), str(v.dtype)) for k, v in net.state_dict().items()})


if __name__ == "__main__":
    main()
