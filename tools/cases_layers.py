"""Conformance cases for the ops added for layers and training.

docs/CONFORMANCE.md, "Ops and attrs added for layers and training", defines them.
gen_cases.py imports CASES and runs them like its own (same seeding, float64 reference,
float32 self-check).  Ops and attrs (every attr written out):

  conv2d               + padding_mode ("zeros", "reflect", "replicate", "circular")
  conv_transpose2d     stride, padding, output_padding, dilation, groups; bias optional
  pad                  pad [left,right,top,bottom], mode, value (constant mode only)
  max_pool2d           + dilation
  avg_pool2d           + divisor_override
  adaptive_avg_pool2d, adaptive_max_pool2d     output_size [oH,oW]
  batch_norm2d         training, momentum, eps; in training `expected` also holds the
                       updated running_mean and running_var (files updated_*.npy)
  leaky_relu           negative_slope
  sigmoid, tanh, silu  (none)
  gelu                 approximate ("none" or "tanh")
  softmax, log_softmax dim
  cross_entropy        label_smoothing, reduction; target = class indices as float32
  mse_loss             reduction

A builder's `grad_inputs` names the inputs that get a gradient when not all do
(cross_entropy's target, batch_norm2d's running statistics).  The losses' output and
grad_output are 0-d arrays (shape []).
"""

import torch
import torch.nn.functional as F

from cases_common import pair

CASES = []  # (name, builder(rng) -> dict), as in gen_cases.py


def add(name, op, attrs, make_inputs, doc, grad_inputs=None, into=None):
    """A case, appended to `into` (default: this module's CASES)."""
    def build(rng):
        spec = {"op": op, "attrs": dict(attrs), "inputs": make_inputs(rng), "doc": doc}
        if grad_inputs is not None:
            spec["grad_inputs"] = list(grad_inputs)
        return spec
    (CASES if into is None else into).append((name, build))


def uniform(rng, shape, lo, hi):
    return (rng.rand(*shape) * (hi - lo) + lo).to(torch.float32)


def conv_inputs(n, c, hw, w_shape, fan_in, bias_len):
    """input, weight scaled by fan_in**-0.5 (outputs stay O(1)), optional bias."""
    def make(rng):
        x = {"input": rng.randn(n, c, *pair(hw)),
             "weight": rng.randn(*w_shape, scale=fan_in ** -0.5)}
        if bias_len:
            x["bias"] = rng.randn(bias_len)
        return x
    return make


# ---- conv2d with padding_mode ----------------------------------------------------------

def conv_pm(name, mode, n, c, hw, d, k, padding, stride=1, dilation=1, groups=1, bias=True,
            doc=""):
    kh, kw = pair(k)
    attrs = {"stride": pair(stride), "padding": pair(padding), "dilation": pair(dilation),
             "groups": groups, "padding_mode": mode}
    add(name, "conv2d", attrs,
        conv_inputs(n, c, hw, (d, c // groups, kh, kw), (c // groups) * kh * kw, d if bias else 0),
        doc)


conv_pm("conv_pm_zeros_s2", "zeros", 1, 3, (8, 9), 4, 3, (1, 2), stride=2,
        doc="padding_mode zeros given explicitly, pad (1,2), stride 2")
conv_pm("conv_pm_reflect_max", "reflect", 1, 2, (4, 5), 3, 3, (3, 4),
        doc="reflect at its maximum width: pad (3,4) on a 4x5 input (pad = size-1)")
conv_pm("conv_pm_reflect_asym_s2", "reflect", 1, 3, (9, 7), 4, 3, (2, 1), stride=2,
        doc="reflect pad (2,1), stride 2, odd sizes")
conv_pm("conv_pm_reflect_dw_s2", "reflect", 1, 4, 9, 4, 3, 1, stride=2, groups=4, bias=False,
        doc="reflect pad 1, depthwise (groups=4), stride 2, no bias")
conv_pm("conv_pm_replicate_dil2", "replicate", 1, 3, 7, 2, 3, 2, dilation=2,
        doc="replicate pad 2, dilation 2")
conv_pm("conv_pm_replicate_asym_g2", "replicate", 2, 4, (6, 9), 6, (3, 2), (1, 3),
        stride=(2, 1), groups=2, doc="replicate pad (1,3), kernel 3x2, stride (2,1), groups 2")
conv_pm("conv_pm_circular_full", "circular", 1, 2, (3, 4), 3, 3, (3, 4),
        doc="circular pad == input size (3,4): the input wraps around whole")
conv_pm("conv_pm_circular_dil_g3", "circular", 1, 6, (7, 8), 3, 3, (2, 1), dilation=(2, 1),
        groups=3, doc="circular pad (2,1), dilation (2,1), groups 3")


def conv_pre_pad(x, attrs):
    """nn.Conv2d's padding_mode: a mode other than "zeros" pads with F.pad first (pW on the
    left and right, pH on top and bottom), then convolves without padding."""
    mode = attrs.get("padding_mode", "zeros")
    if mode == "zeros":
        return x, attrs["padding"]
    ph, pw = attrs["padding"]
    return F.pad(x, [pw, pw, ph, ph], mode=mode), [0, 0]


# ---- conv_transpose2d ------------------------------------------------------------------

def convt(name, n, c, hw, d, k, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
          bias=True, doc=""):
    kh, kw = pair(k)
    attrs = {"stride": pair(stride), "padding": pair(padding),
             "output_padding": pair(output_padding), "dilation": pair(dilation), "groups": groups}
    add(name, "conv_transpose2d", attrs,
        conv_inputs(n, c, hw, (c, d // groups, kh, kw), (c // groups) * kh * kw, d if bias else 0),
        doc)


convt("convt_basic", 1, 3, 5, 4, 3, doc="3x3, stride 1, no padding, bias")
convt("convt_s2_p1_op1", 2, 3, 4, 2, 3, stride=2, padding=1, output_padding=1,
      doc="stride 2, pad 1, output_padding 1 (exact 2x upsampling), N=2")
convt("convt_asym", 1, 2, (4, 3), 3, (3, 4), stride=(2, 3), padding=(1, 0),
      output_padding=(1, 2), doc="kernel 3x4, stride (2,3), pad (1,0), output_padding (1,2)")
convt("convt_dil3_s2_op2", 1, 2, 4, 3, 2, stride=2, dilation=3, output_padding=2,
      doc="dilation 3, stride 2, output_padding 2 (< max(stride, dilation))")
convt("convt_groups2_s2", 2, 4, 4, 6, 3, stride=2, groups=2, doc="groups 2 (C=4, D=6), stride 2")
convt("convt_groups3_op1", 1, 6, 5, 3, 3, stride=2, padding=1, output_padding=1, groups=3,
      doc="groups 3 with output_padding 1, stride 2, pad 1")
convt("convt_depthwise_nobias", 1, 4, 5, 4, 3, stride=2, padding=1, groups=4, bias=False,
      doc="depthwise (groups=C=D=4), stride 2, no bias")
convt("convt_k1_s3_op2", 1, 3, 3, 2, 1, stride=3, output_padding=2,
      doc="1x1 kernel, stride 3, output_padding 2: outputs no input reaches (bias only)")
convt("convt_pad_crop", 1, 2, 4, 3, 5, padding=3, doc="kernel 5, pad 3: padding crops the output")


# ---- pad -------------------------------------------------------------------------------

def pad(name, hw, p, mode, value=None, n=1, c=2, doc=""):
    attrs = {"pad": list(p), "mode": mode}
    if mode == "constant":
        attrs["value"] = value if value is not None else 0.0
    add(name, "pad", attrs, lambda rng: {"input": rng.randn(n, c, *pair(hw))}, doc)


pad("pad_const_zero", (4, 5), (1, 2, 0, 3), "constant", n=2, doc="constant 0, asymmetric")
pad("pad_const_value", (3, 4), (2, 1, 3, 0), "constant", 1.5, doc="constant 1.5, asymmetric")
pad("pad_const_neg_crop", (6, 7), (-1, 2, -2, -1), "constant", -0.5,
    doc="constant -0.5 with negative pads: crops left, top, bottom; pads right")
pad("pad_reflect_asym", (5, 6), (1, 3, 2, 0), "reflect", doc="reflect, asymmetric")
pad("pad_reflect_max", (4, 5), (4, 4, 3, 3), "reflect",
    doc="reflect at its maximum width: pad = size-1 on every side of a 4x5 input")
pad("pad_replicate_wide", (3, 2), (5, 3, 4, 6), "replicate",
    doc="replicate, every pad wider than the input (3x2)")
pad("pad_circular_full", (3, 4), (4, 4, 3, 3), "circular",
    doc="circular with pad == size on every side of a 3x4 input")
pad("pad_circular_asym", (5, 4), (1, 0, 2, 3), "circular", doc="circular, asymmetric")


# ---- max_pool2d dilation, avg_pool2d divisor_override ----------------------------------

def pool(name, op, hw, k, stride, padding, ceil_mode=False, shift=0.0, doc="", **extra):
    attrs = {"kernel": pair(k), "stride": pair(stride), "padding": pair(padding),
             "ceil_mode": ceil_mode}
    attrs.update({key: pair(v) if key == "dilation" else v for key, v in extra.items()})
    add(name, op, attrs, lambda rng: {"input": rng.randn(1, 2, *pair(hw), shift=shift)}, doc)


pool("maxpool_dil2", "max_pool2d", 9, 3, 1, 0, dilation=2, doc="3x3 dilation 2, stride 1")
pool("maxpool_dil_asym_p1", "max_pool2d", (8, 9), (2, 3), 2, 1, dilation=(2, 1),
     doc="kernel 2x3, dilation (2,1), stride 2, pad 1")
pool("maxpool_dil2_ceil_allneg", "max_pool2d", 8, 3, 2, 1, True, shift=-10.0, dilation=2,
     doc="dilation 2, pad 1, ceil_mode, all inputs < 0 (padding acts as -inf)")
pool("avgpool_divisor5", "avg_pool2d", 7, 3, 2, 1, count_include_pad=True, divisor_override=5,
     doc="3x3 s2 p1, divisor_override 5 (replaces the window count)")
pool("avgpool_divisor2_ceil_excl", "avg_pool2d", (6, 7), (3, 2), 2, 1, True,
     count_include_pad=False, divisor_override=2,
     doc="ceil_mode, exclude_pad, divisor_override 2 (also on clipped windows)")


# ---- adaptive pools --------------------------------------------------------------------

def adaptive(name, op, n, c, hw, size, doc=""):
    add(name, op, {"output_size": pair(size)},
        lambda rng: {"input": rng.randn(n, c, *pair(hw))}, doc)


for kind, op in (("avg", "adaptive_avg_pool2d"), ("max", "adaptive_max_pool2d")):
    adaptive(f"adaptive_{kind}_7to3", op, 1, 2, 7, 3, doc="7 -> 3: overlapping windows")
    adaptive(f"adaptive_{kind}_5to4", op, 2, 2, 5, 4, doc="5 -> 4, N=2")
    adaptive(f"adaptive_{kind}_10x7to4x3", op, 1, 3, (10, 7), (4, 3), doc="10x7 -> 4x3")
    adaptive(f"adaptive_{kind}_3to5", op, 1, 2, 3, 5, doc="3 -> 5: output larger than input")
    adaptive(f"adaptive_{kind}_global", op, 2, 3, (6, 5), 1, doc="global: 6x5 -> 1x1")


# ---- batch_norm2d ----------------------------------------------------------------------

def bn(name, n, c, hw, training, momentum=0.1, eps=1e-5, doc=""):
    def make(rng):
        return {"input": rng.randn(n, c, *pair(hw), scale=2.0, shift=1.0),
                "weight": rng.randn(c), "bias": rng.randn(c),
                "running_mean": rng.randn(c, scale=0.5),
                "running_var": rng.rand(c) + 0.5}  # must be > 0
    add(name, "batch_norm2d", {"training": training, "momentum": momentum, "eps": eps}, make,
        doc, grad_inputs=["input", "weight", "bias"])


bn("bn_train", 4, 3, 5, True, doc="training: batch statistics, running stats updated")
bn("bn_train_n1", 1, 2, (6, 7), True, doc="training with N=1 (statistics over H*W only)")
bn("bn_train_1x1_n8", 8, 5, 1, True, doc="training with 1x1 spatial, N=8 (after a flatten)")
bn("bn_train_momentum_eps", 2, 3, (4, 6), True, 0.3, 1e-3, doc="training, momentum 0.3, eps 1e-3")
bn("bn_eval", 3, 4, (5, 4), False, doc="eval: normalizes with the running statistics")
bn("bn_eval_n1_1x1", 1, 5, 1, False,
   doc="eval with N=1 and 1x1 spatial (training would have one value per channel)")


# ---- activations -----------------------------------------------------------------------

def act(name, op, attrs, shape, lo=-8.0, hi=8.0, zero_frac=0.0, doc=""):
    def make(rng):
        x = uniform(rng, shape, lo, hi)
        if zero_frac:
            x[rng.rand(*shape) < zero_frac] = 0.0
        return {"input": x}
    add(name, op, attrs, make, doc)


act("leaky_relu_default", "leaky_relu", {"negative_slope": 0.01}, (2, 3, 5, 6),
    doc="slope 0.01, inputs in [-8, 8]")
act("leaky_relu_0p2_zeros", "leaky_relu", {"negative_slope": 0.2}, (4, 9), zero_frac=0.3,
    doc="slope 0.2, ~30% exact zeros: PyTorch's gradient at 0 is the slope")
act("sigmoid_range8", "sigmoid", {}, (2, 3, 4, 5), doc="inputs in [-8, 8]")
act("sigmoid_saturated", "sigmoid", {}, (5, 8), -30.0, 30.0, doc="inputs in [-30, 30]")
act("tanh_range8", "tanh", {}, (2, 3, 4, 5), doc="inputs in [-8, 8]")
act("silu_range8", "silu", {}, (2, 3, 4, 5), doc="inputs in [-8, 8]")
act("gelu_none", "gelu", {"approximate": "none"}, (2, 3, 4, 5), doc="erf form, inputs in [-8, 8]")
act("gelu_tanh", "gelu", {"approximate": "tanh"}, (2, 3, 4, 5), doc="tanh form, inputs in [-8, 8]")


# ---- softmax, log_softmax --------------------------------------------------------------

def softmax(name, op, shape, dim, scale=1.0, doc=""):
    add(name, op, {"dim": dim}, lambda rng: {"input": rng.randn(*shape, scale=scale)}, doc)


for op in ("softmax", "log_softmax"):
    softmax(f"{op}_2d_dim1", op, (5, 7), 1, doc="[N,C] over C (dim 1)")
    softmax(f"{op}_4d_dim_neg1", op, (2, 3, 4, 5), -1, doc="4-D over the last dim (dim -1)")
    softmax(f"{op}_dim0", op, (6, 4), 0, doc="over dim 0")
    softmax(f"{op}_large", op, (4, 9), 1, scale=50.0,
            doc="logits scaled by 50: needs the max subtracted")


# ---- losses ----------------------------------------------------------------------------

def ce(name, n, c, label_smoothing=0.0, reduction="mean", scale=1.0, doc=""):
    def make(rng):
        t = torch.randint(0, c, (n,), generator=rng.g).to(torch.float32)
        return {"input": rng.randn(n, c, scale=scale), "target": t}
    add(name, "cross_entropy", {"label_smoothing": label_smoothing, "reduction": reduction},
        make, doc, grad_inputs=["input"])


ce("ce_mean", 6, 5, doc="N=6, C=5, mean")
ce("ce_sum", 4, 10, reduction="sum", doc="N=4, C=10, sum")
ce("ce_smooth0p1", 5, 4, 0.1, doc="label_smoothing 0.1, mean")
ce("ce_smooth0p2_sum", 3, 6, 0.2, "sum", doc="label_smoothing 0.2, sum")
ce("ce_n1_c2", 1, 2, doc="N=1, C=2")
ce("ce_large_logits", 4, 7, scale=50.0, doc="logits scaled by 50, mean")


def mse(name, shape, reduction, doc=""):
    add(name, "mse_loss", {"reduction": reduction},
        lambda rng: {"input": rng.randn(*shape), "target": rng.randn(*shape)}, doc)


mse("mse_mean_4d", (2, 3, 4, 5), "mean", doc="4-D, mean")
mse("mse_sum_2d", (5, 7), "sum", doc="2-D, sum")


# --------------------------------------------------------------------------------------
# Reference computation for these ops (gen_cases.run_op handles the first ops)
# --------------------------------------------------------------------------------------

def run_op(op, attrs, inputs):
    x = inputs["input"]
    if op == "conv_transpose2d":
        return F.conv_transpose2d(x, inputs["weight"], inputs.get("bias"), stride=attrs["stride"],
                                  padding=attrs["padding"],
                                  output_padding=attrs["output_padding"],
                                  groups=attrs["groups"], dilation=attrs["dilation"])
    if op == "pad":
        return F.pad(x, attrs["pad"], mode=attrs["mode"], value=attrs.get("value"))
    if op == "adaptive_avg_pool2d":
        return F.adaptive_avg_pool2d(x, attrs["output_size"])
    if op == "adaptive_max_pool2d":
        return F.adaptive_max_pool2d(x, attrs["output_size"])
    if op == "batch_norm2d":
        return F.batch_norm(x, inputs["running_mean"], inputs["running_var"], inputs["weight"],
                            inputs["bias"], training=attrs["training"],
                            momentum=attrs["momentum"], eps=attrs["eps"])
    if op == "leaky_relu":
        return F.leaky_relu(x, attrs["negative_slope"])
    if op in ("sigmoid", "tanh"):
        return getattr(torch, op)(x)
    if op == "silu":
        return F.silu(x)
    if op == "gelu":
        return F.gelu(x, approximate=attrs["approximate"])
    if op in ("softmax", "log_softmax"):
        return getattr(F, op)(x, dim=attrs["dim"])
    if op == "cross_entropy":
        return F.cross_entropy(x, inputs["target"].long(), reduction=attrs["reduction"],
                               label_smoothing=attrs["label_smoothing"])
    if op == "mse_loss":
        return F.mse_loss(x, inputs["target"], reduction=attrs["reduction"])
    raise ValueError(op)


def extra_expected(op, attrs, leaves):
    """Arrays `expected` holds besides output, read after the forward: batch_norm2d in
    training updates running_mean/running_var in place (unbiased variance)."""
    if op == "batch_norm2d" and attrs["training"]:
        return {k: leaves[k].detach() for k in ("running_mean", "running_var")}
    return {}


def reduction_length(op, attrs, inputs, out_shape):
    """Longest float32 sum a straightforward implementation does (picks the tolerance)."""
    x = inputs["input"]
    if op == "conv_transpose2d":
        c, dg, kh, kw = inputs["weight"].shape
        n, _, h, w = x.shape
        _, _, ho, wo = out_shape
        # forward / grad_input: (C/g or D/g)*kH*kW; grad_weight: N*H*W; grad_bias: N*Ho*Wo.
        return max((c // attrs["groups"]) * kh * kw, dg * kh * kw, n * h * w, n * ho * wo)
    if op == "batch_norm2d":
        return x.numel() // x.shape[1]  # statistics and weight/bias grads: N*H*W
    if op in ("softmax", "log_softmax"):
        return x.shape[attrs["dim"]]
    if op in ("cross_entropy", "mse_loss", "adaptive_avg_pool2d"):
        return x.numel()  # a bound: the loss sums everything, a pool window is smaller
    return 0
