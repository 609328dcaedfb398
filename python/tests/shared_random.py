"""Runs a tutorial script from python/examples on convshade, or on PyTorch (the same text with
`convshade` read as `torch` in its imports), with the same random numbers: `rand`, `randn` and
the layers' initialisation draw from one seeded NumPy generator on both. PyTorch's printed
output, kept in expected/, is then what convshade's must match number for number.

`python make_expected.py` (with PyTorch installed) writes expected/."""

import contextlib
import importlib
import io
import math
import re
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ["corr2d.py", "edge_kernel_module.py", "learn_edge_kernel.py", "conv_layers.py"]


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _patch(engine, seed):
    rng = np.random.default_rng(seed)

    def made(array, kw):
        t = engine.tensor(np.asarray(array, np.float32))
        return t.requires_grad_() if kw.get("requires_grad") else t

    def rand(*size, **kw):
        return made(rng.random(_size(size)), kw)

    def randn(*size, **kw):
        return made(rng.standard_normal(_size(size)), kw)

    def uniform_(t, a=0.0, b=1.0, **kw):
        with engine.no_grad():
            t.copy_(engine.tensor(rng.uniform(a, b, tuple(t.shape)).astype(np.float32)))
        return t

    def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", **kw):
        shape = tuple(t.shape)
        fan_in = shape[1] * int(np.prod(shape[2:]))
        bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)
        return uniform_(t, -bound, bound)

    saved = (engine.rand, engine.randn, engine.nn.init.uniform_, engine.nn.init.kaiming_uniform_)
    engine.rand, engine.randn = rand, randn
    engine.nn.init.uniform_, engine.nn.init.kaiming_uniform_ = uniform_, kaiming_uniform_
    return saved


def run(script, engine_name="convshade", seed=0):
    """The script's printed output on `engine_name` (`convshade` or `torch`)."""
    src = (EXAMPLES / script).read_text()
    if engine_name == "torch":
        src = re.sub(r"^(import|from) convshade", r"\1 torch", src, flags=re.M)
    engine = importlib.import_module(engine_name)
    importlib.import_module(engine_name + ".nn.init")
    saved = _patch(engine, seed)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(src, str(EXAMPLES / script), "exec"), {"__name__": "__main__"})
    finally:
        engine.rand, engine.randn, engine.nn.init.uniform_, engine.nn.init.kaiming_uniform_ = saved
    return out.getvalue()


def numbers(text):
    """The numbers of a printed output, in order (a `grad_fn=<AddBackward0>` is not one)."""
    text = re.sub(r"grad_fn=<\w+>", "", text)
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?", text)]


# optimizers and schedules against PyTorch: (optimizer, its arguments, schedule or None)
OPTIMIZERS = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01), ("StepLR", dict(step_size=2,
                                                                             gamma=0.5))),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), None),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3), None),
    ("Adam", dict(lr=0.01), None),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1), ("CosineAnnealingLR",
                                                                   dict(T_max=4))),
    ("AdamW", dict(lr=0.02), ("CosineAnnealingLR", dict(T_max=3, eta_min=0.001))),
]


def optimizer_run(engine, name, kwargs, schedule, steps=6):
    """Parameters after `steps` steps on a fixed quadratic, scheduled per step, as lists."""
    w = engine.tensor(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))
    b = engine.tensor(np.array([0.5, -0.25], np.float32))
    w.requires_grad_()
    b.requires_grad_()
    target = engine.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
    opt = getattr(engine.optim, name)([w, b], **kwargs)
    sched = None if schedule is None else getattr(engine.optim.lr_scheduler, schedule[0])(
        opt, **schedule[1])
    for _ in range(steps):
        opt.zero_grad()
        loss = (((w - target) ** 2) * 3.0).sum() + ((b * b) * (w.sum() + 2.0)).sum()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return [w.detach().numpy().tolist(), b.detach().numpy().tolist()]


def keyed_model(nn):
    """A model with every kind of state-dict entry: nested Sequentials, a bias-free layer, batch
    norm's buffers."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.MaxPool2d(2))
            self.up = nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False)
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(2 * 8 * 8, 3))

        def forward(self, x):
            return self.head(self.up(self.stem(x)))

    return Net()
