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


def test_dropout_zeroes_and_scales_in_training_only():
    torch.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = torch.ones(100, 100, device="cpu")
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    drop.eval()
    assert drop(x) is x


def test_init_functions_fill_in_place_with_their_bounds():
    torch.manual_seed(0)
    w = nn.Parameter(torch.empty(64, 32, 3, 3, device="cpu"))
    lin = nn.Linear(32, 64)
    lin.weight = w  # a Parameter assigned to a module is its parameter
    nn.init.kaiming_uniform_(lin.weight, a=0.0, nonlinearity="relu")
    bound = np.sqrt(2.0) * np.sqrt(3.0 / (32 * 9))
    v = lin.weight.numpy()
    assert v.max() <= bound and v.min() >= -bound and v.max() > 0.9 * bound
    assert lin.weight.requires_grad and lin.weight.is_leaf
    nn.init.xavier_uniform_(lin.weight)
    assert np.abs(lin.weight.numpy()).max() <= np.sqrt(6.0 / (32 * 9 + 64 * 9))
    nn.init.constant_(lin.bias, 0.5)
    assert lin.bias.tolist() == [0.5] * 64
    nn.init.normal_(lin.bias, mean=3.0, std=0.01)
    assert abs(lin.bias.mean().item() - 3.0) < 0.01
    nn.init.zeros_(lin.bias)
    assert lin.bias.abs().sum().item() == 0.0


def test_layers_give_pytorchs_shapes():
    x = torch.rand(2, 3, 8, 8, device="cpu")
    assert nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1, output_padding=1)(x).shape == \
        (2, 5, 16, 16)
    assert nn.Upsample(scale_factor=2, mode="bilinear")(x).shape == (2, 3, 16, 16)
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert nn.AvgPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 4, 4)
    values, indices = nn.MaxPool2d(2, return_indices=True)(x)
    assert values.shape == indices.shape == (2, 3, 4, 4)
    bn = nn.BatchNorm2d(3)
    y = bn(x)
    np.testing.assert_allclose(y.mean(dim=0).mean(dim=-1).mean(dim=-1).numpy(), 0, atol=1e-5)
    assert bn.running_mean.abs().sum().item() > 0
    assert nn.Flatten()(x).shape == (2, 192)
    assert len(nn.Sequential(nn.ReLU(), nn.Identity())) == 2


def test_volume_layers_give_pytorchs_shapes():
    x = torch.rand(2, 3, 4, 8, 8, device="cpu")
    conv = nn.Conv3d(3, 5, 3, padding=1)
    assert conv.weight.shape == (5, 3, 3, 3, 3) and conv(x).shape == (2, 5, 4, 8, 8)
    assert nn.ConvTranspose3d(3, 2, 2, stride=2)(x).shape == (2, 2, 8, 16, 16)
    assert nn.MaxPool3d(2)(x).shape == (2, 3, 2, 4, 4)
    assert nn.AvgPool3d(3, stride=1, padding=1)(x).shape == (2, 3, 4, 8, 8)
    assert nn.AdaptiveAvgPool3d((1, 2, 2))(x).shape == (2, 3, 1, 2, 2)
    assert nn.Upsample(scale_factor=2, mode="trilinear")(x).shape == (2, 3, 8, 16, 16)
    bn = nn.BatchNorm3d(3)
    y = nn.Sequential(bn, nn.ReLU())(x)  # the fused path on a volume
    assert y.shape == x.shape and y.numpy().min() >= 0
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]


def test_max_pool3d_indices_point_at_the_maxima():
    x = torch.randn(2, 3, 5, 6, 7, device="cpu")
    v, i = F.max_pool3d(x, (3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True,
                        return_indices=True)
    flat = x.numpy().reshape(6, -1)
    got = np.take_along_axis(flat, i.numpy().reshape(6, -1).astype(np.int64), axis=1)
    np.testing.assert_array_equal(got, v.numpy().reshape(6, -1))
