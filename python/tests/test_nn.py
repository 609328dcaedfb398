"""Modules as PyTorch's: parameters registered by assignment, F.conv2d, and the corr2d
tutorial's Conv2d learning the [1, -1] edge kernel back by `.data` updates."""

import numpy as np
import pytest

import convshade as torch
import convshade.nn.functional as F
from convshade import nn


def test_conv2d_matches_a_direct_cross_correlation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    got = F.conv2d(torch.tensor(x, device="cpu"), torch.tensor(w, device="cpu"), padding=1).numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 4, 7, 7), dtype=np.float32)
    for i in range(7):
        for j in range(7):
            want[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, i:i + 3, j:j + 2], w)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(torch.tensor(x, device="cpu"), torch.tensor(w, device="cpu"), padding="full")


def test_module_registers_parameters_and_submodules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1, device="cpu")
            self.scale = nn.Parameter(torch.tensor([2.0], device="cpu"))
            self.note = "not a parameter"

        def forward(self, x):
            return self.conv(x).relu() * self.scale

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias"]
    y = net(torch.ones((1, 1, 4, 4), device="cpu"))
    assert y.shape == (1, 2, 4, 4)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert not net.eval().training and not net.conv.training


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_the_edge_kernel_is_learned_back(device):
    # the corr2d tutorial: a 6x8 image with black columns 2..6, its edges by [1, -1]
    img = np.ones((6, 8), dtype=np.float32)
    img[:, 2:6] = 0
    X = torch.tensor(img, device=device).reshape((1, 1, 6, 8))
    Y = torch.tensor(img[:, :-1] - img[:, 1:], device=device).reshape((1, 1, 6, 7))
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False, device=device)
    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) * (Y_hat - Y)
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data = conv2d.weight.data - 3e-2 * conv2d.weight.grad
    k = conv2d.weight.data.reshape((1, 2)).numpy()
    np.testing.assert_allclose(k, [[1.0, -1.0]], atol=0.1)
