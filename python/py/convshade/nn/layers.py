"""The layers, with PyTorch's constructor arguments, initialisation and state-dict keys."""

import math
from collections import OrderedDict

from . import functional as F
from . import init
from .module import Module, Parameter


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _new(*shape, device=None):
    from .. import empty

    return empty(*shape, device=device)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """`y = x @ weight.T + bias`; weight and bias uniform within 1/sqrt(in_features), as PyTorch."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_new(out_features, in_features, device=device))
        self.bias = Parameter(_new(out_features, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def _forward_relu(self, x):
        # relu(self(x)) in one pass: Sequential's fusion
        return F._C.linear(x, self.weight, self.bias, True)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _ConvNd(Module):
    def _init(self, weight_shape, out_channels, bias, device):
        self.weight = Parameter(_new(*weight_shape, device=device))
        self.bias = Parameter(_new(out_channels, device=device)) if bias else None
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = math.prod(weight_shape[1:])
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)


class Conv2d(_ConvNd):
    """PyTorch's `nn.Conv2d`, initialised as PyTorch does."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation, self.groups, self.padding_mode = _pair(dilation), groups, padding_mode
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self._init((out_channels, in_channels // groups, *self.kernel_size), out_channels, bias,
                   device)

    def forward(self, x, relu=False):
        return F._C.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                           self.groups, self.padding_mode, relu)

    def _forward_relu(self, x):
        return self.forward(x, True)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")


class Conv3d(Module):
    """PyTorch's `nn.Conv3d`, initialised as PyTorch does."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = F._triple(kernel_size), F._triple(stride)
        self.padding = padding if isinstance(padding, str) else F._triple(padding)
        self.dilation, self.groups, self.padding_mode = F._triple(dilation), groups, padding_mode
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        _init_conv(self, (out_channels, in_channels // groups, *self.kernel_size), out_channels,
                   bias, device)

    def forward(self, x):
        return F._C.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                           self.groups, self.padding_mode)


class ConvTranspose3d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError('Only "zeros" padding mode is supported for ConvTranspose3d')
        self.kernel_size, self.stride = F._triple(kernel_size), F._triple(stride)
        self.padding, self.output_padding = F._triple(padding), F._triple(output_padding)
        self.groups, self.dilation = groups, F._triple(dilation)
        _init_conv(self, (in_channels, out_channels // groups, *self.kernel_size), out_channels,
                   bias, device)

    def forward(self, x):
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


def _init_conv(layer, weight_shape, out_channels, bias, device):
    _ConvNd._init(layer, weight_shape, out_channels, bias, device)


class ConvTranspose2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError('Only "zeros" padding mode is supported for ConvTranspose2d')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.output_padding = _pair(padding), _pair(output_padding)
        self.groups, self.dilation = groups, _pair(dilation)
        self._init((in_channels, out_channels // groups, *self.kernel_size), out_channels, bias,
                   device)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class MaxPool2d(Module):
    _pool = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return self._pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


class AvgPool2d(Module):
    _pool = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return self._pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class MaxPool3d(MaxPool2d):
    _pool = staticmethod(F.max_pool3d)


class AvgPool3d(AvgPool2d):
    _pool = staticmethod(F.avg_pool3d)


class AdaptiveAvgPool2d(Module):
    _pool = staticmethod(F.adaptive_avg_pool2d)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return self._pool(x, self.output_size)


class AdaptiveMaxPool2d(Module):
    _pool = staticmethod(F.adaptive_max_pool2d)

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return self._pool(x, self.output_size, self.return_indices)


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    _pool = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    _pool = staticmethod(F.adaptive_max_pool3d)


class BatchNorm2d(Module):
    """Batch statistics in training (running ones updated), running ones in evaluation."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        from .. import ones, tensor, zeros

        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(ones(num_features, device=device)) if affine else None
        self.bias = Parameter(zeros(num_features, device=device)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device))
            self.register_buffer("running_var", ones(num_features, device=device))
            self.register_buffer("num_batches_tracked", tensor(0.0, device=device))

    def forward(self, x):
        if not self.track_running_stats:
            from .. import ones, zeros

            c = self.num_features
            return F.batch_norm(x, zeros(c, device=x.device), ones(c, device=x.device),
                                self.weight, self.bias, True, 0.0, self.eps)
        return self._norm(x, False)

    def _forward_relu(self, x):
        return self._norm(x, True) if self.track_running_stats else self.forward(x).relu()

    def _norm(self, x, relu):
        if self.training:
            self.num_batches_tracked.data = self.num_batches_tracked + 1
        return F._C.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training, self.momentum, self.eps, relu)


class BatchNorm3d(BatchNorm2d):
    """Batch norm over the channels of (n, c, d, h, w)."""


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return x.relu()


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return x.gelu(self.approximate)


class SiLU(Module):
    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return x.silu()


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)


class Sequential(Module):
    """Modules run in order; indexable, with keys "0", "1", ... (or an OrderedDict's)."""

    def __init__(self, *args):
        super().__init__()
        items = args[0].items() if len(args) == 1 and isinstance(args[0], OrderedDict) else \
            ((str(i), m) for i, m in enumerate(args))
        for name, m in items:
            self.add_module(name, m)

    def forward(self, x):
        mods = list(self.children())
        i = 0
        while i < len(mods):
            m = mods[i]
            # a layer followed by ReLU runs as one op where it has a fused form, the result
            # the same bit for bit (the engine's Sequential does the same)
            fused = getattr(type(m), "_forward_relu", None)
            if fused and i + 1 < len(mods) and type(mods[i + 1]) is ReLU:
                x = fused(m, x)
                i += 2
            else:
                x = m(x)
                i += 1
        return x

    def __getitem__(self, i):
        mods = list(self.children())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self):
        return len(self.__dict__["_modules"])

    def __iter__(self):
        return iter(list(self.children()))

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class CrossEntropyLoss(Module):
    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction, self.label_smoothing)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)
