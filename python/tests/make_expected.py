"""Writes expected/<script>.txt: each tutorial script's output on PyTorch, with the shared
random numbers of shared_random.py. Run with a Python that has PyTorch and NumPy."""

from pathlib import Path

import torch

import json

from shared_random import OPTIMIZERS, SCRIPTS, keyed_model, optimizer_run, run

torch.backends.cudnn.allow_tf32 = False
out = Path(__file__).resolve().parent / "expected"
out.mkdir(exist_ok=True)
for script in SCRIPTS:
    text = run(script, "torch")
    (out / (script[:-3] + ".txt")).write_text(text)
    print(f"{script}: {len(text.splitlines())} lines")

runs = [optimizer_run(torch, *o) for o in OPTIMIZERS]
(out / "optim.json").write_text(json.dumps(runs))
print(f"optim.json: {len(runs)} runs")

state = keyed_model(torch.nn).state_dict()
(out / "state_dict.json").write_text(json.dumps([[k, list(v.shape)] for k, v in state.items()]))
print(f"state_dict.json: {len(state)} entries")
