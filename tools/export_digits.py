#!/usr/bin/env python3
"""Export scikit-learn's bundled handwritten digits as NPY files for convshade.

Source: `sklearn.datasets.load_digits()` (the UCI ML "Optical Recognition of Handwritten
Digits" data, 1797 images of 8x8 pixels with values 0..16, labels 0..9). It ships inside
the scikit-learn package, so nothing is downloaded.

Writes, in sklearn's order (no shuffling):

    data/digits/images.npy   float32 '<f4', C order, shape (1797, 1, 8, 8), pixel / 16 in [0, 1]
    data/digits/labels.npy   float32 '<f4', shape (1797,), the digit 0..9 as a float

Usage (from the repository root):  python3 tools/export_digits.py [--out data/digits]
"""

import argparse
import os

import numpy as np
import sklearn
from sklearn.datasets import load_digits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("data", "digits"))
    args = ap.parse_args()

    d = load_digits()
    images = np.ascontiguousarray((d.images / 16.0).astype("<f4").reshape(-1, 1, 8, 8))
    labels = np.ascontiguousarray(d.target.astype("<f4"))
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels).tolist()) == set(float(i) for i in range(10))

    os.makedirs(args.out, exist_ok=True)
    for name, arr in (("images.npy", images), ("labels.npy", labels)):
        path = os.path.join(args.out, name)
        np.save(path, arr, allow_pickle=False)  # NPY 1.0 for arrays this small
        with open(path, "rb") as f:
            assert f.read(8) == b"\x93NUMPY\x01\x00", f"{path}: not NPY 1.0"
        print(f"wrote {path}: {arr.dtype.str} {arr.shape}")
    counts = np.bincount(d.target, minlength=10)
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    print("per-class counts:", " ".join(f"{i}:{c}" for i, c in enumerate(counts)))


if __name__ == "__main__":
    main()
