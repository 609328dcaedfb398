"""The Python package's tensors: NumPy in and out, PyTorch's printed form, operators with
numbers on either side, reductions, and engine errors as Python exceptions."""

import numpy as np
import pytest

import convshade as torch

DEVICES = ["cpu", "gpu"]


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_round_trip_and_shape(device):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = torch.tensor(a, device=device)
    assert t.shape == (2, 3)
    np.testing.assert_array_equal(t.numpy(), a)
    # integer data becomes float32, the one dtype
    assert torch.tensor([[1, 2], [3, 4]], device=device).numpy().dtype == np.float32


@pytest.mark.parametrize("device", DEVICES)
def test_operators_broadcast_with_numbers_on_either_side(device):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    b = torch.tensor([10.0, 20.0], device=device)
    xs = x.numpy()
    np.testing.assert_allclose((x + b).numpy(), xs + [10.0, 20.0])
    np.testing.assert_allclose((2 - x).numpy(), 2 - xs)
    np.testing.assert_allclose((1 / x).numpy(), 1 / xs, rtol=1e-6)
    np.testing.assert_allclose((x * 3 + 1).numpy(), xs * 3 + 1)
    np.testing.assert_allclose((-x).numpy(), -xs)
    np.testing.assert_allclose((x @ x).numpy(), xs @ xs)
    np.testing.assert_allclose(x.sum(dim=0).numpy(), xs.sum(0))
    np.testing.assert_allclose(x.mean(dim=1, keepdim=True).numpy(), xs.mean(1, keepdims=True))
    assert x.sum().item() == 10.0


def test_printed_form_is_pytorchs():
    t = torch.tensor([[19, 25], [37, 43]], device="cpu")
    assert repr(t) == "tensor([[19., 25.],\n        [37., 43.]])"
    assert f"{t.sum():.3f}" == "124.000"


def test_engine_errors_are_python_exceptions_naming_the_op():
    a, b = torch.zeros(2, 3, device="cpu"), torch.zeros(4, 5, device="cpu")
    with pytest.raises(ValueError, match="matmul"):
        a @ b
    with pytest.raises(ValueError, match="device"):
        torch.tensor([1.0], device="tpu")


@pytest.mark.parametrize("device", DEVICES)
def test_backward_fills_grad_and_accumulates(device):
    x = torch.tensor([1.0, 2.0, 3.0], device=device).requires_grad_()
    assert x.requires_grad and x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    # a second backward adds to it, as in PyTorch
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    x.grad = None
    assert x.grad is None
    # a non-scalar output needs its upstream gradient
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(gradient=torch.tensor([1.0, 0.0, 2.0], device=device))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 4.0])


def test_updates_through_data_keep_the_leaf_and_learn():
    # least squares on y = 3x by w.data -= lr * w.grad, the tutorials' update
    x = torch.tensor([1.0, 2.0, 3.0], device="cpu")
    y = x * 3
    w = torch.tensor([0.0], device="cpu").requires_grad_()
    for _ in range(50):
        loss = ((x * w - y) * (x * w - y)).mean()
        w.grad = None
        loss.backward()
        w.data = w.data - 0.1 * w.grad
    assert w.requires_grad
    assert abs(w.item() - 3.0) < 1e-3
