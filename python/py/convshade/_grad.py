"""`no_grad`, `enable_grad` and `set_grad_enabled`: context managers and decorators, as
PyTorch's."""

import functools

from ._convshade import set_grad_enabled as _set


class _GradMode:
    mode = True

    def __enter__(self):
        self._prev = _set(self.mode)

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapped


class no_grad(_GradMode):
    """Ops inside record no graph (parameter updates, evaluation)."""

    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        self.mode = bool(mode)
        self._prev = _set(self.mode)

    def __enter__(self):
        pass
