"""convshade: a tensor engine for convolutional networks on any GPU wgpu reaches (or the CPU),
with PyTorch's names: `import convshade as torch`.

float32 is the one dtype: integer and boolean data become float32, and `.long()`, `.int()`,
`.float()` and `.type(...)` return the tensor itself. Devices are `device("cpu")` and
`device("gpu")` (any wgpu adapter); without one, `CONVSHADE_DEVICE` chooses (`cpu`, `gpu`,
`auto`: a hardware adapter where there is one, else the CPU).
"""

import numpy as _np

from . import _convshade
from ._convshade import EngineError, Tensor, cat, device, is_grad_enabled, stack
from ._grad import enable_grad, no_grad, set_grad_enabled

float32 = "float32"
float = float32
dtype = str

_rng = [_np.random.default_rng()]


def manual_seed(seed):
    """Seeds the generator behind `rand`, `randn`, the layers' initialisation, dropout and
    shuffling (its numbers differ from PyTorch's)."""
    _rng[0] = _np.random.default_rng(seed)


def _generator():
    return _rng[0]


def _check_dtype(dtype):
    if dtype is not None and str(dtype) not in ("float32", "float", "torch.float32"):
        raise TypeError(f"dtype {dtype} is not supported: float32 is the one dtype")


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A tensor of nested lists, a number, a NumPy array or a tensor's values, as float32."""
    _check_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.numpy()
    t = Tensor.from_numpy(_np.asarray(data, dtype=_np.float32, order="C"), device)
    return t.requires_grad_() if requires_grad else t


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and device is None:
        return data
    return tensor(data, dtype, device)


def from_numpy(array, device=None):
    """A tensor of a NumPy array's values, as float32."""
    return tensor(array, device=device)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def _size(size):
    # zeros(2, 3) and zeros((2, 3)) alike
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _made(array, dtype, device, requires_grad):
    return tensor(array, dtype, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _made(_np.zeros(_size(size), _np.float32), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _made(_np.ones(_size(size), _np.float32), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    return _made(_np.full(tuple(size), fill_value, _np.float32), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _made(_generator().random(_size(size), _np.float32), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    return _made(_generator().standard_normal(_size(size), _np.float32), dtype, device,
                 requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    if high is None:
        low, high = 0, low
    return tensor(_generator().integers(low, high, tuple(size)), dtype, device)


def randperm(n, dtype=None, device=None):
    return tensor(_generator().permutation(n), dtype, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    return _made(_np.arange(start, end, step, dtype=_np.float32), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None):
    return tensor(_np.linspace(start, end, steps, dtype=_np.float32), dtype, device)


def eye(n, m=None, dtype=None, device=None):
    return tensor(_np.eye(n, m, dtype=_np.float32), dtype, device)


def _like(t, make, **kw):
    return make(*t.shape, device=kw.get("device", t.device), dtype=kw.get("dtype"),
                requires_grad=kw.get("requires_grad", False))


def zeros_like(t, **kw):
    return _like(t, zeros, **kw)


def ones_like(t, **kw):
    return _like(t, ones, **kw)


def rand_like(t, **kw):
    return _like(t, rand, **kw)


def randn_like(t, **kw):
    return _like(t, randn, **kw)


def full_like(t, fill_value, **kw):
    return full(t.shape, fill_value, device=kw.get("device", t.device))


# functions that are methods of the tensor
def _method(name):
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = name
    f.__doc__ = f"`torch.{name}(input, ...)`: `input.{name}(...)`."
    return f


for _name in ("abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "sum", "mean", "max",
              "min", "argmax", "reshape", "flatten", "permute", "transpose", "unsqueeze",
              "squeeze", "matmul", "softmax", "log_softmax", "square", "pow", "t", "clone",
              "numel", "add", "sub", "mul", "div"):
    globals()[_name] = _method(_name)
mm = matmul  # noqa: F821 (defined just above)


def save(obj, f):
    """Writes a state dict (names to tensors) as safetensors."""
    items = list(obj.items()) if hasattr(obj, "items") else None
    if items is None or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in items):
        raise TypeError("save: only a dict of names to tensors (a state dict) can be saved")
    _convshade.save(items, str(f))


def load(f, map_location=None, weights_only=True):
    """Reads a state dict that `save` wrote, onto `map_location` (default: the default device)."""
    from collections import OrderedDict

    return OrderedDict(_convshade.load(str(f), map_location).items())


def __getattr__(name):
    from ._results import not_covered

    raise not_covered("torch", name)


from . import nn, optim, utils  # noqa: E402  (they import the names above)

__all__ = ["EngineError", "Tensor", "arange", "cat", "device", "empty", "enable_grad", "eye",
           "float32", "from_numpy", "full", "is_grad_enabled", "load", "manual_seed", "nn",
           "no_grad", "ones", "optim", "rand", "randn", "save", "set_grad_enabled", "stack",
           "tensor", "utils", "zeros"]
