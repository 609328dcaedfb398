"""The named pairs `max(dim=...)` and `min(dim=...)` return, as PyTorch's."""

from collections import namedtuple

max = namedtuple("max", ["values", "indices"])
min = namedtuple("min", ["values", "indices"])


class Size(tuple):
    """A tensor's shape: a tuple of ints, printed as PyTorch prints its `Size`."""

    def __repr__(self):
        return f"convshade.Size({list(self)})"

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


def values_repr(a):
    """The values as PyTorch prints them: integers as `19.`, others with four decimals, in
    scientific notation when their magnitudes are far apart."""
    import numpy as np

    kw = dict(separator=", ", prefix="tensor(")
    finite = np.abs(a[np.isfinite(a)])
    if finite.size == 0 or np.all(finite == np.round(finite)) and finite.max() < 1e8:
        return np.array2string(a, **kw)
    nonzero = finite[finite > 0]
    lo, hi = (nonzero.min(), nonzero.max()) if nonzero.size else (0.0, 0.0)
    if hi > 1e8 or (nonzero.size and (lo < 1e-4 or hi / lo > 1000)):
        return np.array2string(a, formatter={"float_kind": lambda v: f"{v:.4e}"}, **kw)
    return np.array2string(a, precision=4, floatmode="fixed", **kw)


class NotCoveredError(NotImplementedError, AttributeError):
    """A PyTorch name convshade does not cover (an AttributeError too, so `hasattr` works)."""


def not_covered(owner, name):
    if name.startswith("__"):
        return AttributeError(f"{owner} has no attribute {name!r}")
    return NotCoveredError(f"{owner}.{name} is not supported by convshade")
