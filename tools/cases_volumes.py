"""Conformance cases for volumes (N, C, D, H, W): conv3d (stride, padding incl. same/valid,
dilation, groups, bias, padding_mode), conv_transpose3d, max_pool3d, avg_pool3d (including
count_include_pad and divisor_override), the adaptive 3-d pools, upsample (nearest, trilinear)
and batch_norm3d. gen_cases.py imports CASES and runs them like its own; they come last in the
manifest."""

import torch
import torch.nn.functional as F

from cases_layers import add

CASES = []
OPS = {"conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d",
       "adaptive_max_pool3d", "batch_norm3d"}


def triple(v):
    return [v, v, v] if isinstance(v, int) else list(v)


def conv3(name, n, c, dhw, o, k, stride=1, padding=0, dilation=1, groups=1, bias=True,
          padding_mode="zeros", doc=""):
    k = triple(k)

    def make(rng):
        fan_in = (c // groups) * k[0] * k[1] * k[2]
        x = {"input": rng.randn(n, c, *triple(dhw)),
             "weight": rng.randn(o, c // groups, *k, scale=fan_in ** -0.5)}
        if bias:
            x["bias"] = rng.randn(o)
        return x
    pad = padding if isinstance(padding, str) else triple(padding)
    add(name, "conv3d", {"stride": triple(stride), "padding": pad, "dilation": triple(dilation),
                         "groups": groups, "padding_mode": padding_mode}, make, doc, into=CASES)


conv3("conv3d_basic", 1, 2, (4, 5, 6), 3, 3, doc="3x3x3, no padding, bias")
conv3("conv3d_s2_p1", 2, 3, (5, 6, 7), 4, 3, stride=2, padding=1, doc="stride 2, pad 1, N=2")
conv3("conv3d_aniso", 1, 2, (6, 5, 7), 3, (3, 1, 2), stride=(1, 2, 1), padding=(1, 0, 1),
      dilation=(2, 1, 1), doc="per-axis kernel, stride, padding, dilation")
conv3("conv3d_groups2_nobias", 1, 4, (4, 4, 4), 6, 3, padding=1, groups=2, bias=False,
      doc="groups 2, no bias")
conv3("conv3d_same", 1, 2, (5, 4, 6), 3, (3, 2, 3), padding="same", doc="padding='same', even tap")
conv3("conv3d_valid_dil", 1, 2, (7, 6, 6), 2, 2, padding="valid", dilation=2,
      doc="padding='valid', dilation 2")
for mode in ("reflect", "replicate", "circular"):
    conv3(f"conv3d_{mode}", 1, 2, (4, 5, 5), 3, 3, padding=(1, 2, 1), padding_mode=mode,
          doc=f"padding_mode {mode}")


def convt3(name, n, c, dhw, o, k, stride=1, padding=0, output_padding=0, dilation=1,
           groups=1, bias=True, doc=""):
    k = triple(k)

    def make(rng):
        fan_in = (o // groups) * k[0] * k[1] * k[2]
        x = {"input": rng.randn(n, c, *triple(dhw)),
             "weight": rng.randn(c, o // groups, *k, scale=fan_in ** -0.5)}
        if bias:
            x["bias"] = rng.randn(o)
        return x
    add(name, "conv_transpose3d",
        {"stride": triple(stride), "padding": triple(padding),
         "output_padding": triple(output_padding), "dilation": triple(dilation),
         "groups": groups}, make, doc, into=CASES)


convt3("convt3d_basic", 1, 2, (3, 4, 3), 3, 3, doc="3x3x3, stride 1")
convt3("convt3d_s2_p1_op1", 2, 3, (3, 3, 4), 2, 3, stride=2, padding=1, output_padding=1,
       doc="stride 2, pad 1, output_padding 1")
convt3("convt3d_groups_dil", 1, 4, (3, 4, 4), 4, (2, 3, 2), stride=(2, 1, 1), dilation=(1, 2, 1),
       groups=2, bias=False, doc="groups 2, dilation, no bias")


def pool3(name, op, dhw, k, stride=None, padding=0, n=1, c=2, doc="", **extra):
    def make(rng):
        return {"input": rng.randn(n, c, *triple(dhw))}
    attrs = {"kernel": triple(k), "stride": None if stride is None else triple(stride),
             "padding": triple(padding), **extra}
    add(name, op, attrs, make, doc, into=CASES)


pool3("maxpool3d_k2", "max_pool3d", (4, 6, 6), 2, ceil_mode=False, doc="2x2x2, stride = kernel")
pool3("maxpool3d_k3s2p1_ceil", "max_pool3d", (5, 7, 6), 3, 2, 1, ceil_mode=True,
      doc="3x3x3, stride 2, pad 1, ceil_mode")
pool3("maxpool3d_dil", "max_pool3d", (7, 6, 8), (2, 2, 3), (1, 2, 2), (1, 0, 1),
      dilation=[2, 1, 2], ceil_mode=False, doc="dilation (2, 1, 2)")
pool3("avgpool3d_k2", "avg_pool3d", (4, 6, 6), 2, ceil_mode=False, count_include_pad=True,
      doc="2x2x2")
pool3("avgpool3d_pad_excl_ceil", "avg_pool3d", (5, 5, 7), 3, 2, 1, ceil_mode=True,
      count_include_pad=False, doc="pad 1, count_include_pad False, ceil_mode")
pool3("avgpool3d_divisor", "avg_pool3d", (4, 5, 6), (2, 3, 2), (2, 1, 2), (1, 1, 0),
      ceil_mode=False, count_include_pad=True, divisor_override=5, doc="divisor_override 5")


def adaptive3(name, op, dhw, size, doc=""):
    def make(rng):
        return {"input": rng.randn(2, 2, *triple(dhw))}
    add(name, op, {"output_size": triple(size)}, make, doc, into=CASES)


adaptive3("adaptive_avg3d_7to3", "adaptive_avg_pool3d", (7, 6, 5), (3, 4, 2), doc="7x6x5 -> 3x4x2")
adaptive3("adaptive_avg3d_up", "adaptive_avg_pool3d", (3, 4, 2), (5, 5, 3), doc="windows overlap")
adaptive3("adaptive_max3d_7to3", "adaptive_max_pool3d", (7, 6, 5), (3, 4, 2), doc="7x6x5 -> 3x4x2")


def up3(name, dhw, size, mode, align_corners=None, doc=""):
    def make(rng):
        return {"input": rng.randn(1, 2, *triple(dhw))}
    attrs = {"mode": mode, "size": triple(size)}
    if align_corners is not None:
        attrs["align_corners"] = align_corners
    add(name, "upsample", attrs, make, doc, into=CASES)


up3("nearest3d_x2", (2, 3, 4), (4, 6, 8), "nearest", doc="nearest, x2 on every axis")
up3("trilinear_x2", (2, 3, 4), (4, 6, 8), "trilinear", False, doc="trilinear, x2")
up3("trilinear_odd_ac", (3, 4, 5), (5, 7, 6), "trilinear", True, doc="trilinear, align_corners")
up3("trilinear_down", (6, 5, 7), (4, 3, 5), "trilinear", False, doc="trilinear, shrinking")


def bn3(name, n, c, dhw, training, doc=""):
    def make(rng):
        return {"input": rng.randn(n, c, *triple(dhw), scale=2.0, shift=1.0),
                "weight": rng.randn(c), "bias": rng.randn(c),
                "running_mean": rng.randn(c, scale=0.5), "running_var": rng.rand(c) + 0.5}
    add(name, "batch_norm3d", {"training": training, "momentum": 0.1, "eps": 1e-5}, make, doc,
        grad_inputs=["input", "weight", "bias"], into=CASES)


bn3("bn3d_train", 2, 3, (3, 4, 5), True, doc="training: statistics over N, D, H, W")
bn3("bn3d_eval", 2, 3, (3, 4, 2), False, doc="eval: the running statistics")


def run_op(op, attrs, inputs):
    x = inputs["input"]
    if op == "conv3d":
        p = attrs["padding"]
        if attrs["padding_mode"] != "zeros":
            # F.conv3d pads with zeros only: pad the other modes as nn.Conv3d does
            x = F.pad(x, [p[2], p[2], p[1], p[1], p[0], p[0]], mode=attrs["padding_mode"])
            p = 0
        return F.conv3d(x, inputs["weight"], inputs.get("bias"), stride=attrs["stride"],
                        padding=p, dilation=attrs["dilation"], groups=attrs["groups"])
    if op == "conv_transpose3d":
        return F.conv_transpose3d(x, inputs["weight"], inputs.get("bias"), stride=attrs["stride"],
                                  padding=attrs["padding"], output_padding=attrs["output_padding"],
                                  groups=attrs["groups"], dilation=attrs["dilation"])
    if op == "max_pool3d":
        return F.max_pool3d(x, attrs["kernel"], attrs["stride"], attrs["padding"],
                            dilation=attrs.get("dilation", 1), ceil_mode=attrs["ceil_mode"])
    if op == "avg_pool3d":
        return F.avg_pool3d(x, attrs["kernel"], attrs["stride"], attrs["padding"],
                            ceil_mode=attrs["ceil_mode"],
                            count_include_pad=attrs["count_include_pad"],
                            divisor_override=attrs.get("divisor_override"))
    if op == "adaptive_avg_pool3d":
        return F.adaptive_avg_pool3d(x, attrs["output_size"])
    if op == "adaptive_max_pool3d":
        return F.adaptive_max_pool3d(x, attrs["output_size"])
    if op == "batch_norm3d":
        return F.batch_norm(x, inputs["running_mean"], inputs["running_var"], inputs["weight"],
                            inputs["bias"], training=attrs["training"],
                            momentum=attrs["momentum"], eps=attrs["eps"])
    raise ValueError(op)


def extra_expected(op, attrs, leaves):
    if op == "batch_norm3d" and attrs["training"]:
        return {k: leaves[k].detach() for k in ("running_mean", "running_var")}
    return {}


def reduction_length(op, attrs, inputs, out_shape):
    x = inputs["input"]
    if op in ("conv3d", "conv_transpose3d", "batch_norm3d", "adaptive_avg_pool3d"):
        return x.numel()  # a bound: every reduction here is shorter
    return 0
