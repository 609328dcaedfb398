"""PyTorch's `torch.nn.functional` names over the engine's ops."""

from .. import _convshade as _C


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _stride(stride, fix):
    """A pool's stride through `fix` (`_pair`, `_triple`); None (or []) means the kernel's."""
    return None if stride is None or stride == [] else fix(stride)


def _out_size(input, size, fix):
    """An adaptive pool's output size through `fix`; None keeps the input's size on that axis."""
    t = fix(size)
    return tuple(input.shape[i - len(t)] if v is None else v for i, v in enumerate(t))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation (padding: sizes, "same" or "valid")."""
    pad = padding if isinstance(padding, str) else _pair(padding)
    return _C.conv2d(input, weight, bias, _pair(stride), pad, _pair(dilation), groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _C.conv_transpose2d(input, weight, bias, _pair(stride), _pair(padding),
                               _pair(output_padding), groups, _pair(dilation))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    stride = _stride(stride, _pair)
    return _C.max_pool2d(input, _pair(kernel_size), stride, _pair(padding), _pair(dilation),
                         ceil_mode, return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    stride = _stride(stride, _pair)
    return _C.avg_pool2d(input, _pair(kernel_size), stride, _pair(padding), ceil_mode,
                         count_include_pad, divisor_override)


def adaptive_avg_pool2d(input, output_size):
    return _C.adaptive_avg_pool2d(input, _out_size(input, output_size, _pair))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d: return_indices is not supported")
    return _C.adaptive_max_pool2d(input, _out_size(input, output_size, _pair))




def _triple(v):
    return (v, v, v) if isinstance(v, int) else tuple(v)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Nearest or bilinear upsampling of (n, c, h, w), nearest or trilinear of (n, c, d, h, w),
    by size or by scale factor."""
    if input.dim() == 5:
        size = None if size is None else _triple(size)
        if scale_factor is not None:
            f = scale_factor
            scale_factor = tuple(float(s) for s in ((f, f, f) if isinstance(f, (int, float)) else f))
        return _C.interpolate3d(input, size, scale_factor, mode, align_corners)
    size = None if size is None else _pair(size)
    if scale_factor is not None:
        scale_factor = tuple(float(s) for s in _pair_f(scale_factor))
    return _C.interpolate(input, size, scale_factor, mode, align_corners)


def _pair_f(v):
    return (v, v) if isinstance(v, (int, float)) else tuple(v)


upsample = interpolate


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d cross-correlation of (n, c, d, h, w) (padding: sizes, "same" or "valid")."""
    pad = padding if isinstance(padding, str) else _triple(padding)
    return _C.conv3d(input, weight, bias, _triple(stride), pad, _triple(dilation), groups)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _C.conv_transpose3d(input, weight, bias, _triple(stride), _triple(padding),
                               _triple(output_padding), groups, _triple(dilation))


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    stride = _stride(stride, _triple)
    return _C.max_pool3d(input, _triple(kernel_size), stride, _triple(padding), _triple(dilation),
                         ceil_mode, return_indices)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    stride = _stride(stride, _triple)
    return _C.avg_pool3d(input, _triple(kernel_size), stride, _triple(padding), ceil_mode,
                         count_include_pad, divisor_override)


def adaptive_avg_pool3d(input, output_size):
    return _C.adaptive_avg_pool3d(input, _out_size(input, output_size, _triple))


def adaptive_max_pool3d(input, output_size, return_indices=False):
    if return_indices:
        raise NotImplementedError("adaptive_max_pool3d: return_indices is not supported")
    return _C.adaptive_max_pool3d(input, _out_size(input, output_size, _triple))


def linear(input, weight, bias=None):
    return _C.linear(input, weight, bias)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    return _C.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability `p` and scales the rest by 1/(1-p) in training."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    import numpy as np

    from .. import _generator, tensor

    keep = np.zeros(tuple(input.shape), np.float32)
    if p < 1:
        keep = (_generator().random(tuple(input.shape)) >= p) / np.float32(1.0 - p)
    return input * tensor(keep, device=input.device)


def relu(input, inplace=False):
    return input.relu()


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return input.leaky_relu(negative_slope)


def gelu(input, approximate="none"):
    return input.gelu(approximate)


def silu(input, inplace=False):
    return input.silu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def softmax(input, dim=None):
    return input.softmax(-1 if dim is None else dim)


def log_softmax(input, dim=None):
    return input.log_softmax(-1 if dim is None else dim)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Logits (n, classes) against class indices (n,) or probabilities (n, classes)."""
    return _C.cross_entropy(input, target, reduction, label_smoothing)


def mse_loss(input, target, reduction="mean"):
    return _C.mse_loss(input, target, reduction)


def pad(input, pad, mode="constant", value=None):
    return _C.pad(input, list(pad), mode, 0.0 if value is None else value)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def __getattr__(name):
    from .._results import not_covered

    raise not_covered("torch.nn.functional", name)
