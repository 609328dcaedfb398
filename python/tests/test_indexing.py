"""Indexing as PyTorch's: integers, slices with steps, None and ..., read and assigned, against
NumPy; gradients through both; the in-place rules for leaves and `.data`."""

import numpy as np
import pytest

import convshade as torch

DEVICES = ["cpu", "gpu"]
KEYS = [
    1, -1, slice(1, 3), slice(None, None, 2), (slice(None), 2), (Ellipsis, 1),
    (None, 0), (slice(0, 3, 2), slice(1, 5, 3), 0), (1, Ellipsis, None), (slice(5, 1),),
    (slice(-3, None), slice(None, -1, 2)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_reading_matches_numpy(key, device):
    a = np.arange(60, dtype=np.float32).reshape(3, 5, 4)
    got = torch.tensor(a, device=device)[key]
    assert tuple(got.shape) == a[key].shape
    np.testing.assert_array_equal(got.numpy(), a[key])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_assigning_matches_numpy(key, device):
    a = np.arange(60, dtype=np.float32).reshape(3, 5, 4)
    v = -np.arange(a[key].size, dtype=np.float32).reshape(a[key].shape) - 1
    t = torch.tensor(a, device=device)
    t[key] = torch.tensor(v, device=device)
    a[key] = v
    np.testing.assert_array_equal(t.numpy(), a)
    t[key] = 7.5  # a number broadcasts
    a[key] = 7.5
    np.testing.assert_array_equal(t.numpy(), a)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_flow_through_reads_and_assignments(device):
    x = torch.tensor(np.arange(12.0).reshape(3, 4), device=device).requires_grad_()
    v = torch.tensor([10.0, 20.0], device=device).requires_grad_()
    y = x * 1.0
    y[1, 1:3] = v * v  # the assigned value carries its gradient
    (y[:, ::2] * 3.0).sum().backward()
    gx = np.zeros((3, 4), np.float32)
    gx[:, ::2] = 3.0
    gx[1, 2] = 0.0  # overwritten by the assignment
    np.testing.assert_array_equal(x.grad.numpy(), gx)
    np.testing.assert_array_equal(v.grad.numpy(), [0.0, 2 * 20.0 * 3.0])


@pytest.mark.parametrize("device", DEVICES)
def test_the_corr2d_loop_differentiates(device):
    # y[i, j] = (x[i:i+h, j:j+w] * k).sum(): the kernel's gradient is the sum of windows
    x = torch.tensor(np.arange(9.0).reshape(3, 3), device=device)
    k = torch.tensor([[1.0, -1.0], [0.5, 2.0]], device=device).requires_grad_()
    y = torch.zeros((2, 2), device=device)
    for i in range(2):
        for j in range(2):
            y[i, j] = (x[i:i + 2, j:j + 2] * k).sum()
    y.sum().backward()
    a = np.arange(9.0).reshape(3, 3)
    want = sum(a[i:i + 2, j:j + 2] for i in range(2) for j in range(2))
    np.testing.assert_allclose(k.grad.numpy(), want)


def test_in_place_rules_are_pytorchs():
    w = torch.ones(2, 3, device="cpu").requires_grad_()
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w -= 1.0
    with torch.no_grad():
        w[0, 0] = 5.0  # allowed without recording; still a leaf
    assert w.is_leaf and w.requires_grad
    w.data[:, 1] = 0.0  # through .data: changes w
    assert w.numpy().tolist() == [[5.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    w.sum().backward()
    g = w.grad
    g.zero_()  # in place on the gradient itself
    assert w.grad.numpy().sum() == 0.0


def test_bad_indices_raise_pytorchs_exceptions():
    t = torch.zeros(3, 4, device="cpu")
    with pytest.raises(IndexError, match="out of bounds"):
        t[3]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        t[::-1]
    with pytest.raises(NotImplementedError, match="advanced indexing"):
        t[[0, 2]]
    with pytest.raises(NotImplementedError, match="advanced indexing"):
        t[torch.tensor([0.0])]
    with pytest.raises(ValueError, match="broadcast"):
        t[0] = torch.ones(3, device="cpu")
    assert list(t[0]) and len(list(t)) == 3  # iteration stops at the end
