"""PyTorch's `torch.nn`: modules a user subclasses, parameters registered by assignment, and
the layers."""

import math

import numpy as _np

from .. import _convshade
from . import functional
from .functional import _pair

__all__ = ["Conv2d", "Module", "Parameter", "ReLU", "functional"]

_PARAMS = "_parameters"


def Parameter(data, requires_grad=True):
    """A tensor a module registers as its parameter when assigned to one of its attributes."""
    t = data.detach()
    if requires_grad:
        t.requires_grad_()
    return _Param(t)


class _Param:
    # marks a tensor as a parameter until a module takes it (the engine's tensor type is final)
    def __init__(self, tensor):
        self.tensor = tensor


class Module:
    """The base of every layer and model: assigning a `Parameter` or a `Module` to an attribute
    registers it; calling the module runs `forward`."""

    def __init__(self):
        object.__setattr__(self, _PARAMS, {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if _PARAMS not in self.__dict__:
            raise AttributeError("cannot assign before Module.__init__() call")
        if isinstance(value, _Param):
            self.__dict__[_PARAMS][name] = value.tensor
            return
        if isinstance(value, Module):
            self.__dict__["_modules"][name] = value
            return
        if name in self.__dict__[_PARAMS] and isinstance(value, _convshade.Tensor):
            self.__dict__[_PARAMS][name] = value
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if name in d.get(_PARAMS, {}):
            return d[_PARAMS][name]
        if name in d.get("_modules", {}):
            return d["_modules"][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def named_parameters(self, prefix=""):
        for name, p in self.__dict__[_PARAMS].items():
            yield prefix + name, p
        for name, m in self.__dict__["_modules"].items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        object.__setattr__(self, "training", mode)
        for m in self.__dict__["_modules"].values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class Conv2d(Module):
    """PyTorch's `nn.Conv2d`, initialised as PyTorch does (uniform within 1/sqrt(fan_in))."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, device="auto"):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.stride, self.padding = stride, padding
        self.dilation, self.groups = dilation, groups
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        rng = _np.random.default_rng()
        w = rng.uniform(-bound, bound, (out_channels, in_channels // groups, kh, kw))
        self.weight = Parameter(_convshade.Tensor.from_numpy(w.astype(_np.float32), device))
        if bias:
            b = rng.uniform(-bound, bound, (out_channels,)).astype(_np.float32)
            self.bias = Parameter(_convshade.Tensor.from_numpy(b, device))
        else:
            self.__dict__["bias"] = None

    def forward(self, x):
        return functional.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                 self.dilation, self.groups)
