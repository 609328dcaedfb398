"""convshade: a tensor engine for convolutional networks on any GPU wgpu reaches (or the CPU),
with PyTorch's names. float32 is the one dtype: integer data becomes float32."""

import numpy as _np

from ._convshade import EngineError, Tensor

float32 = "float32"


def tensor(data, device="auto"):
    """A tensor of nested lists, a number or a NumPy array, as float32."""
    return Tensor.from_numpy(_np.ascontiguousarray(data, dtype=_np.float32), device)


def from_numpy(array, device="auto"):
    """A tensor of a NumPy array's values, as float32."""
    return tensor(array, device)


def zeros(*size, device="auto"):
    return tensor(_np.zeros(_size(size), dtype=_np.float32), device)


def ones(*size, device="auto"):
    return tensor(_np.ones(_size(size), dtype=_np.float32), device)


def _size(size):
    # zeros(2, 3) and zeros((2, 3)) alike
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


__all__ = ["EngineError", "Tensor", "float32", "from_numpy", "ones", "tensor", "zeros"]
