"""PyTorch's `torch.optim`: SGD (momentum, dampening, nesterov, weight decay), Adam and AdamW,
with PyTorch's update rules and parameter groups."""

import math

from .._grad import no_grad
from . import lr_scheduler


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            group = dict(defaults)
            group.update(g)
            group["params"] = list(group["params"])
            self.param_groups.append(group)
        self.state = {}

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def _each(self):
        for g in self.param_groups:
            for p in g["params"]:
                grad = p.grad
                if grad is not None:
                    yield g, p, grad, self.state.setdefault(id(p), {})

    def state_dict(self):
        return {"param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.param_groups]}


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    @no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for g, p, d, state in self._each():
            if g["weight_decay"]:
                d = d + p * g["weight_decay"]
            if g["momentum"]:
                buf = state.get("momentum_buffer")
                buf = d if buf is None else buf * g["momentum"] + d * (1 - g["dampening"])
                state["momentum_buffer"] = buf
                d = d + buf * g["momentum"] if g["nesterov"] else buf
            p.data = p - d * g["lr"]
        return loss


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    _decoupled = False

    @no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for g, p, d, state in self._each():
            b1, b2 = g["betas"]
            if g["weight_decay"]:
                if self._decoupled:
                    p.data = p * (1 - g["lr"] * g["weight_decay"])
                else:
                    d = d + p * g["weight_decay"]
            t = state["step"] = state.get("step", 0) + 1
            m = state["exp_avg"] = state["exp_avg"] * b1 + d * (1 - b1) if t > 1 else d * (1 - b1)
            v = state["exp_avg_sq"] = (state["exp_avg_sq"] * b2 + d * d * (1 - b2) if t > 1
                                       else d * d * (1 - b2))
            denom = (v / (1 - b2 ** t)).sqrt() + g["eps"]
            p.data = p - m / denom * (g["lr"] / (1 - b1 ** t))
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler", "math"]
