"""The tutorials' PyTorch code in python/examples, run on convshade, prints what PyTorch prints
(expected/, written by make_expected.py on PyTorch with the same random numbers): the same
lines, the same numbers to float tolerance, on the CPU and the GPU."""

import os
from pathlib import Path

import pytest

from shared_random import SCRIPTS, numbers, run

EXPECTED = Path(__file__).resolve().parent / "expected"


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_tutorial_prints_what_pytorch_prints(script, device, monkeypatch):
    monkeypatch.setenv("CONVSHADE_DEVICE", device)
    got = run(script)
    want = (EXPECTED / (script[:-3] + ".txt")).read_text()
    assert len(got.splitlines()) == len(want.splitlines()), got
    g, w = numbers(got), numbers(want)
    assert len(g) == len(w), got
    # printed with four decimals (losses three): a last digit may round the other way
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(g, w)) if abs(a - b) > 2e-3 + 1e-4 * abs(b)]
    assert not bad, f"{script} on {device}: (index, got, PyTorch) {bad[:5]}\n{got}"


def test_the_scripts_run_as_programs():
    # as a learner runs them: `python examples/corr2d.py`
    import subprocess
    import sys

    examples = Path(__file__).resolve().parent.parent / "examples"
    env = dict(os.environ, CONVSHADE_DEVICE="cpu")
    out = subprocess.run([sys.executable, str(examples / "corr2d.py")], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "[[19., 25.]," in out and "[38., 44.]]" in out
