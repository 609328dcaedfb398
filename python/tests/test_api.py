"""The tensor API against NumPy on both devices: creation, arithmetic with broadcasting and
numbers on either side, reductions, shape ops, cat and stack; no_grad; devices; and the
exceptions for what is not covered."""

import numpy as np
import pytest

import convshade as torch
import convshade.nn.functional as F

DEVICES = ["cpu", "gpu"]
A = np.arange(1, 25, dtype=np.float32).reshape(2, 3, 4) / 7
B = np.linspace(-1, 2, 4, dtype=np.float32)


def close(t, a, tol=1e-5):
    assert tuple(t.shape) == np.shape(a)
    np.testing.assert_allclose(t.numpy(), a, rtol=tol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_arithmetic_and_functions_match_numpy(device):
    a, b = torch.tensor(A, device=device), torch.tensor(B, device=device)
    close(a + b, A + B)
    close(a - b, A - B)
    close(a * b, A * B)
    close(a / (b + 3), A / (B + 3))
    close(2 - a, 2 - A)
    close(3 / a, 3 / A)
    close(a ** 2, A ** 2)
    close(a ** b, A ** B, 1e-4)
    close(2 ** a, 2 ** A, 1e-4)
    close(-a, -A)
    close(abs(b), np.abs(B))
    close(a.exp(), np.exp(A), 1e-4)
    close(a.log(), np.log(A))
    close(a.sqrt(), np.sqrt(A))
    close(b.sigmoid(), 1 / (1 + np.exp(-B)))
    close(torch.tanh(b), np.tanh(B))
    close(a @ torch.tensor(A[0].T.copy(), device=device), A @ A[0].T, 1e-4)
    close(a == a, np.ones_like(A))
    close(b != 0.0, (B != 0).astype(np.float32))


@pytest.mark.parametrize("device", DEVICES)
def test_reductions_and_shapes_match_numpy(device):
    a = torch.tensor(A, device=device)
    close(a.sum(), A.sum(), 1e-4)
    close(a.sum(dim=1), A.sum(1))
    close(a.mean(-1, keepdim=True), A.mean(-1, keepdims=True))
    close(a.max(), A.max())
    values, indices = a.max(dim=1)
    close(values, A.max(1))
    close(indices, A.argmax(1).astype(np.float32))
    assert a.min(dim=2).values.numpy().tolist() == A.min(2).tolist()
    close(a.argmax(), np.float32(A.argmax()))
    close(a.softmax(-1), np.exp(A) / np.exp(A).sum(-1, keepdims=True))
    close(a.view(4, -1), A.reshape(4, -1))
    close(a.permute(2, 0, 1), A.transpose(2, 0, 1))
    close(a.transpose(0, 2), A.swapaxes(0, 2))
    close(a[0].t(), A[0].T)
    close(a.flatten(1), A.reshape(2, -1))
    close(a.unsqueeze(-1), A[..., None])
    close(a[:, :1].squeeze(), A[:, 0])
    close(torch.tensor(B, device=device).expand(3, 4), np.broadcast_to(B, (3, 4)))
    close(torch.cat([a, a * 2], dim=1), np.concatenate([A, A * 2], 1))
    close(torch.stack([a, a], dim=-1), np.stack([A, A], -1))
    assert a.size() == (2, 3, 4) and a.size(-1) == 4 and a.dim() == 3 and a.numel() == 24
    assert a.tolist() == A.tolist() and len(a) == 2


def test_creation_and_seeds():
    assert torch.tensor(3).dim() == 0 and torch.tensor(3).item() == 3.0
    assert torch.tensor([[1, 2]]).numpy().dtype == np.float32  # integers become float32
    assert torch.zeros(2, 3).shape == (2, 3) and torch.ones((2, 3)).sum().item() == 6.0
    assert torch.full((2,), 1.5).tolist() == [1.5, 1.5]
    assert torch.arange(1, 4).tolist() == [1.0, 2.0, 3.0]
    torch.manual_seed(7)
    r1 = torch.randn(5).tolist()
    torch.manual_seed(7)
    assert torch.randn(5).tolist() == r1
    u = torch.rand(1000).numpy()
    assert 0.0 <= u.min() and u.max() < 1.0
    assert f"{torch.tensor(2.0 / 3):.3f}" == "0.667"
    assert repr(torch.tensor([[19.0, 25.0]])) == "tensor([[19., 25.]])"


def test_no_grad_and_requires_grad():
    w = torch.ones(3).requires_grad_()
    assert (w * 2).requires_grad
    with torch.no_grad():
        assert not (w * 2).requires_grad
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def evaluate():
        return (w * 2).requires_grad

    assert not evaluate()
    y = (w * w).sum()
    y.backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    y = (w * w).sum()
    y.backward()  # accumulates, as PyTorch
    assert w.grad.tolist() == [4.0, 4.0, 4.0]
    assert w.detach().requires_grad is False and w.clone().requires_grad


def test_devices_move_tensors_and_modules():
    t = torch.tensor([1.0, 2.0], device="cpu")
    assert t.device == torch.device("cpu") and str(t.device) == "cpu"
    g = t.to("gpu")
    assert g.device.type == "gpu" and g.tolist() == [1.0, 2.0]
    lin = torch.nn.Linear(2, 1).to(torch.device("gpu"))
    assert lin.weight.device.type == "gpu" and lin.weight.requires_grad
    out = lin(g)
    out.sum().backward()
    assert lin.weight.grad.tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="device"):
        t + g
    with pytest.raises(ValueError, match="unknown device"):
        torch.device("tpu")


def test_what_is_not_covered_says_so():
    t = torch.ones(2, 2, device="cpu")
    with pytest.raises(NotImplementedError, match="not supported"):
        t < t
    with pytest.raises(NotImplementedError, match="nll_loss"):
        F.nll_loss(t, t)
    with pytest.raises(NotImplementedError, match="Tensor.cuda is not supported"):
        t.cuda()
    with pytest.raises(NotImplementedError, match="torch.nn.Conv1d"):
        torch.nn.Conv1d(1, 1, 3)
    with pytest.raises(NotImplementedError, match="torch.bfloat16"):
        torch.bfloat16
    assert not hasattr(t, "cuda") and hasattr(t, "numpy")
    with pytest.raises(NotImplementedError, match="mode"):
        F.interpolate(t.reshape(1, 1, 2, 2), scale_factor=2, mode="bicubic")
    with pytest.raises(TypeError, match="float32 is the one dtype"):
        torch.zeros(2, dtype="float64")
    with pytest.raises(TypeError):
        t + "a"
    with pytest.raises(ValueError, match="conv2d"):  # the engine's message names the op
        F.conv2d(torch.ones(1, 2, 4, 4), torch.ones(1, 3, 3, 3))
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()
    with pytest.raises(ValueError, match="invalid for input of size 4"):
        t.view(3, -1)


def test_the_gil_is_released_while_the_engine_computes():
    import threading

    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    a = torch.rand(1024, 1024, device="cpu")
    th = threading.Thread(target=spin)
    th.start()
    try:
        before = count[0]
        for _ in range(3):
            a @ a  # about 2 GFLOP: long enough for the other thread to run if it may
        during = count[0] - before
    finally:
        stop.set()
        th.join()
    assert during > 1000, during
