"""`nn.Module` and `nn.Parameter`."""

from collections import OrderedDict

from .._convshade import Tensor


class _Param:
    # marks a tensor as a parameter until a module takes it (the engine's tensor type is final)
    def __init__(self, tensor):
        self.tensor = tensor


def Parameter(data=None, requires_grad=True):
    """A tensor a module registers as its parameter when assigned to one of its attributes."""
    from .. import empty

    t = (empty(0) if data is None else data).detach()
    if requires_grad:
        t.requires_grad_()
    return _Param(t._as_parameter())


class Module:
    """The base of every layer and model: assigning a `Parameter`, a `Module` or (through
    `register_buffer`) a buffer to an attribute registers it; calling the module runs
    `forward`."""

    def __init__(self, *args, **kwargs):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError("cannot assign before Module.__init__() call")
        for table in ("_parameters", "_buffers", "_modules"):
            d[table].pop(name, None) if not _same_kind(table, value) else None
        if isinstance(value, _Param):
            d["_parameters"][name] = value.tensor
        elif isinstance(value, Module):
            d["_modules"][name] = value
        elif name in d["_parameters"] and (value is None or isinstance(value, Tensor)):
            d["_parameters"][name] = value
        elif name in d["_buffers"] and (value is None or isinstance(value, Tensor)):
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if name in d.get(table, {}):
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[table]:
                del self.__dict__[table][name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        self.__dict__["_buffers"][name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def register_parameter(self, name, param):
        self.__dict__["_parameters"][name] = None if param is None else param.tensor

    def add_module(self, name, module):
        self.__dict__["_modules"][name] = module

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def named_children(self):
        yield from self.__dict__["_modules"].items()

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(prefix + ("." if prefix else "") + name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        for name, p in self.__dict__["_parameters"].items():
            if p is not None:
                yield prefix + name, p
        if recurse:
            for name, m in self.named_children():
                yield from m.named_parameters(prefix + name + ".")

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        for name, b in self.__dict__["_buffers"].items():
            if b is not None:
                yield prefix + name, b
        for name, m in self.named_children():
            yield from m.named_buffers(prefix + name + ".")

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        self.__dict__["training"] = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, device):
        """Moves every parameter and buffer to `device`, in place; returns the module."""
        for m in self.modules():
            for table in ("_parameters", "_buffers"):
                for name, t in m.__dict__[table].items():
                    if t is not None:
                        t.data = t.to(device)
        return self

    def cpu(self):
        return self.to("cpu")

    def state_dict(self, destination=None, prefix=""):
        """Parameters and persistent buffers by PyTorch's dotted names, detached."""
        out = OrderedDict() if destination is None else destination
        skip = self.__dict__.get("_non_persistent", set())
        for name, p in self.__dict__["_parameters"].items():
            if p is not None:
                out[prefix + name] = p.detach()
        for name, b in self.__dict__["_buffers"].items():
            if b is not None and name not in skip:
                out[prefix + name] = b.detach()
        for name, m in self.named_children():
            m.state_dict(out, prefix + name + ".")
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies values by name into the parameters and buffers (shapes must match)."""
        own = OrderedDict()
        for m_name, m in self.named_modules():
            pre = m_name + "." if m_name else ""
            skip = m.__dict__.get("_non_persistent", set())
            for table in ("_parameters", "_buffers"):
                for name, t in m.__dict__[table].items():
                    if t is not None and name not in skip:
                        own[pre + name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               f"missing keys {missing}, unexpected keys {unexpected}")
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                if tuple(v.shape) != tuple(t.shape):
                    raise RuntimeError(f"size mismatch for {k}: copying a param with shape "
                                       f"{tuple(v.shape)}, the shape in current model is "
                                       f"{tuple(t.shape)}")
                t.data = v.to(t.device)
        return missing, unexpected

    def extra_repr(self):
        return ""

    def __repr__(self):
        kids = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(kids) + "\n)" if kids else ")")


def _same_kind(table, value):
    # an attribute keeps its table when assigned a value of the same kind
    if table == "_modules":
        return isinstance(value, Module)
    return value is None or isinstance(value, (Tensor, _Param))
