"""Helpers shared by gen_cases.py and cases_layers.py (the conformance-case generator)."""

import zlib

import numpy as np
import torch


class Rng:
    """float32 random tensors from a generator seeded per case."""

    def __init__(self, seed, name):
        self.g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))

    def randn(self, *shape, scale=1.0, shift=0.0):
        # `shape` as one tuple, so that () (a 0-d loss gradient) works too.
        t = torch.randn(shape, generator=self.g, dtype=torch.float32)
        return (t * scale + shift).to(torch.float32)

    def rand(self, *shape):
        return torch.rand(shape, generator=self.g, dtype=torch.float32)


def pair(v):
    return [v, v] if isinstance(v, int) else list(v)


def max_err_ratio(got, ref, tol):
    """max|got-ref| / (atol + rtol*max|ref|): <= 1 passes. NaN where NaN is expected matches;
    an empty array has no error."""
    if ref.numel() == 0:
        return 0.0
    d = (got.double() - ref.double()).abs()
    d = torch.where(got.isnan() & ref.isnan(), torch.zeros_like(d), d)
    bound = tol["atol"] + tol["rtol"] * ref.double().abs().nan_to_num(0.0).max().item()
    return d.max().item() / bound


def save_npy(path, t):
    # ascontiguousarray turns a 0-d array into shape (1,): reshape back to t's shape.
    a = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").reshape(tuple(t.shape))
    np.save(path, a, allow_pickle=False)  # NPY version 1.0 for such a small header
