"""PyTorch's `torch.nn.functional` names over the engine's ops."""

from .._convshade import conv2d as _conv2d


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation, as `torch.nn.functional.conv2d` (padding: sizes, "same" or "valid")."""
    pad = padding if isinstance(padding, str) else _pair(padding)
    return _conv2d(input, weight, bias, _pair(stride), pad, _pair(dilation), groups)


def relu(input):
    return input.relu()
