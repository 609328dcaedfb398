"""Training from Python: optimizers and schedules step as PyTorch's (trajectories recorded on
PyTorch), state dicts carry PyTorch's keys and round-trip through safetensors, the DataLoader's
batches, and the digits training script learns."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convshade as torch
from convshade import nn
from convshade.utils.data import DataLoader, TensorDataset
from shared_random import OPTIMIZERS, keyed_model, optimizer_run

EXPECTED = Path(__file__).resolve().parent / "expected"


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("i", range(len(OPTIMIZERS)), ids=lambda i: f"{OPTIMIZERS[i][0]}-{i}")
def test_optimizers_step_as_pytorchs(i, device, monkeypatch):
    monkeypatch.setenv("CONVSHADE_DEVICE", device)
    want = json.loads((EXPECTED / "optim.json").read_text())[i]
    got = optimizer_run(torch, *OPTIMIZERS[i])
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.array(g), np.array(w), rtol=1e-5, atol=1e-6)


def test_state_dict_keys_are_pytorchs_and_round_trip(tmp_path):
    torch.manual_seed(1)
    net = keyed_model(nn)
    state = net.state_dict()
    want = json.loads((EXPECTED / "state_dict.json").read_text())
    assert [[k, list(v.shape)] for k, v in state.items()] == want
    x = torch.rand(2, 1, 8, 8, device="cpu")
    net.train()
    net.stem(x)  # batch norm's running statistics move
    net.eval()
    y = net(x).numpy()
    torch.save(net.state_dict(), tmp_path / "net.safetensors")
    other = keyed_model(nn)
    other.load_state_dict(torch.load(tmp_path / "net.safetensors", map_location="cpu"))
    other.eval()
    np.testing.assert_array_equal(other(x).numpy(), y)
    assert other.stem[1].num_batches_tracked.item() == 1.0
    with pytest.raises(RuntimeError, match="missing keys"):
        other.load_state_dict({"up.weight": state["up.weight"]})
    with pytest.raises(RuntimeError, match="size mismatch for up.weight"):
        other.load_state_dict(dict(state, **{"up.weight": torch.zeros(1)}))
    with pytest.raises(TypeError, match="state dict"):
        torch.save({"w": 1.0}, tmp_path / "bad.safetensors")


def test_data_loader_batches_shuffles_and_drops():
    x = torch.arange(10.0).reshape(10, 1)
    y = torch.arange(10.0)
    ds = TensorDataset(x, y)
    batches = list(DataLoader(ds, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert batches[2][0].numpy().ravel().tolist() == [8.0, 9.0]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    torch.manual_seed(3)
    seen = np.concatenate([b[1].numpy() for b in DataLoader(ds, batch_size=3, shuffle=True)])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    # any dataset with __getitem__ and __len__: items are stacked
    pairs = [(torch.tensor([float(i), 2.0 * i]), float(i)) for i in range(5)]
    xb, yb = next(iter(DataLoader(pairs, batch_size=5)))
    assert tuple(xb.shape) == (5, 2) and yb.numpy().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_training_script_learns_the_digits(tmp_path):
    script = Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"
    out = subprocess.run([sys.executable, str(script), "--epochs", "4", "--device", "cpu",
                          "--save", str(tmp_path / "d.safetensors")],
                         capture_output=True, text=True, check=True).stdout
    acc = float(out.strip().splitlines()[-1].split("test accuracy: ")[1].split("%")[0])
    assert acc > 85.0, out
    assert set(torch.load(tmp_path / "d.safetensors")) == {
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"}


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_sequential_fuses_relu_bit_for_bit(device):
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(48, 5), nn.ReLU()).to(device)
    x = torch.randn(2, 2, 4, 4, device=device)
    fused = seq(x)
    fused.sum().backward()
    grads = [p.grad.numpy() for p in seq.parameters()]
    seq.zero_grad()
    seq[2].running_mean.zero_()
    seq[2].running_var.fill_(1.0)
    h = seq[1](seq[0](x))  # each layer on its own
    h = seq[3](seq[2](h))
    apart = seq[6](seq[5](seq[4](h)))
    apart.sum().backward()
    np.testing.assert_array_equal(fused.numpy(), apart.numpy())
    for g, p in zip(grads, seq.parameters()):
        np.testing.assert_array_equal(g, p.grad.numpy())
