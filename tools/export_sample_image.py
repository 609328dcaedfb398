#!/usr/bin/env python3
"""Export scikit-learn's bundled `china.jpg` as a small 8-bit grayscale PNG for convshade.

Source: `sklearn.datasets.load_sample_image("china.jpg")`, a 427x640 RGB photograph that
ships inside the scikit-learn package (licence: see data/images/README.md), so nothing is
downloaded.

Processing, all in exact integer arithmetic:

1. Luma (ITU-R BT.601): Y = round(0.299 R + 0.587 G + 0.114 B), computed as
   (299 R + 587 G + 114 B + 500) // 1000, so halves round up.
2. 2x2 box average: the odd last row (427 -> 426) is dropped, then each output pixel is
   (a + b + c + d + 2) // 4 (round half up). Result: 213 rows x 320 columns.

Writes data/images/china_gray.png (mode "L", 8-bit grayscale, no metadata chunks).

Usage (from the repository root):  python3 tools/export_sample_image.py [--out data/images]
"""

import argparse
import hashlib
import os

import numpy as np
import PIL
import sklearn
from PIL import Image
from sklearn.datasets import load_sample_image


def to_gray(rgb):
    """uint8 (H, W, 3) RGB -> uint8 (H, W) BT.601 luma, rounded half up."""
    rgb = rgb.astype(np.int64)
    y = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
    assert y.min() >= 0 and y.max() <= 255
    return y.astype(np.uint8)


def box_down2(gray):
    """uint8 (H, W) -> uint8 (H//2, W//2), 2x2 mean rounded half up; odd edges dropped."""
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    g = gray[:h, :w].astype(np.int64)
    s = g[0::2, 0::2] + g[0::2, 1::2] + g[1::2, 0::2] + g[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("data", "images"))
    args = ap.parse_args()

    rgb = load_sample_image("china.jpg")
    assert rgb.shape == (427, 640, 3) and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)

    small = np.ascontiguousarray(box_down2(to_gray(rgb)))
    assert small.shape == (213, 320), small.shape

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "china_gray.png")
    # No pnginfo/timestamp is written; fixed compression settings keep the bytes stable
    # for a given Pillow/zlib build.
    Image.fromarray(small).save(path, format="PNG", optimize=False, compress_level=9)

    with Image.open(path) as im:
        im.load()
        assert im.mode == "L" and im.size == (320, 213), (im.mode, im.size)
        assert np.array_equal(np.asarray(im), small)
    with open(path, "rb") as f:
        data = f.read()
    print(
        f"{path}: {small.shape[1]}x{small.shape[0]} L, {len(data)} bytes, "
        f"sha256 {hashlib.sha256(data).hexdigest()}, pixel sha256 "
        f"{hashlib.sha256(small.tobytes()).hexdigest()} "
        f"(scikit-learn {sklearn.__version__}, Pillow {PIL.__version__}, numpy {np.__version__})"
    )


if __name__ == "__main__":
    main()
