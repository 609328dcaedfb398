"""PyTorch's `torch.utils`: `data`."""

from . import data

__all__ = ["data"]
