"""PyTorch's `torch.nn`: modules a user subclasses (parameters, buffers and submodules
registered by assignment, state dicts with PyTorch's keys), the layers, and `nn.init`."""

from collections import OrderedDict

from .. import _convshade
from . import functional, init
from .layers import (AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
                     AvgPool2d, AvgPool3d, BatchNorm2d, BatchNorm3d, Conv2d, Conv3d,
                     ConvTranspose2d, ConvTranspose3d, MaxPool3d, CrossEntropyLoss, Dropout, Flatten, GELU, Identity,
                     LeakyReLU, SiLU,
                     Linear, LogSoftmax, MaxPool2d, MSELoss, ReLU, Sequential, Sigmoid, Softmax,
                     Tanh, Upsample)
from .module import Module, Parameter

__all__ = ["AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
           "AvgPool2d", "AvgPool3d", "BatchNorm2d", "BatchNorm3d", "Conv2d", "Conv3d",
           "ConvTranspose2d", "ConvTranspose3d", "MaxPool3d", "CrossEntropyLoss", "Dropout", "Flatten", "GELU", "Identity",
           "LeakyReLU", "SiLU",
           "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "OrderedDict", "Parameter",
           "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "Upsample", "functional", "init",
           "_convshade"]


def __getattr__(name):
    from .._results import not_covered

    raise not_covered("torch.nn", name)
