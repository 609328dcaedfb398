"""Writes expected/<script>.txt: each tutorial script's output on PyTorch, with the shared
random numbers of shared_random.py. Run with a Python that has PyTorch and NumPy."""

from pathlib import Path

import torch

from shared_random import SCRIPTS, run

torch.backends.cudnn.allow_tf32 = False
out = Path(__file__).resolve().parent / "expected"
out.mkdir(exist_ok=True)
for script in SCRIPTS:
    text = run(script, "torch")
    (out / (script[:-3] + ".txt")).write_text(text)
    print(f"{script}: {len(text.splitlines())} lines")
