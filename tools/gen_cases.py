#!/usr/bin/env python3
"""Generate the convshade conformance suite (format `convshade-cases/1`).

See docs/CONFORMANCE.md for the format.  In short, the output directory holds

    OUT/manifest.json
    OUT/<case name>/<array>.npy      (NPY 1.0, '<f4', C order)

How the reference is computed, for every case:

  1. Every input (and the upstream gradient `grad_output`) is drawn in float32 from a
     torch.Generator seeded with `--seed` and a stable hash of the case name, so adding or
     removing a case does not change the data of the others.
  2. Those float32 tensors are what we store, and what the engine under test will read.
  3. The reference is PyTorch (torch.nn.functional) run in float64 on the float32 inputs
     cast to float64, forward and backward (with grad_output cast to float64).  Outputs and
     gradients are then rounded to float32 and stored.
  4. As a sanity check, the same case is also run in float32 on the CPU and compared to the
     stored reference with the case's tolerance; a case that a correct float32
     implementation could fail is an error.

This file holds the cases of the first ops (conv2d, max_pool2d, avg_pool2d, upsample, relu,
linear).  cases_layers.py holds those added for layers and training (conv2d padding_mode,
conv_transpose2d, pad, pool dilation/divisor_override, adaptive pools, batch_norm2d,
activations, softmax/log_softmax, cross_entropy, mse_loss); they come after these in the
manifest.  Beyond `output`, `expected` holds batch_norm2d's updated running statistics in
training; `expected_grads` names only the differentiable inputs; losses are 0-d.
cases_empty.py holds the cases with empty tensors (a dimension of 0), last.

Usage:  python3 tools/gen_cases.py --out tests/conformance [--seed 0]
"""

import argparse
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # importing the modules below must leave no __pycache__ in tools/

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import cases_empty as empties  # noqa: E402
import cases_layers as layers  # noqa: E402
import cases_volumes as volumes  # noqa: E402
from cases_common import Rng, max_err_ratio, pair, save_npy  # noqa: E402

FORMAT = "convshade-cases/1"

# Default tolerance from the spec, and a looser absolute tolerance for cases with long
# float32 reductions (conv/linear with a large C*kH*kW or in_features, or gradients that sum
# over many output positions).  The check is  max|got-exp| <= atol + rtol * max|exp|.
TOL_DEFAULT = {"rtol": 1e-4, "atol": 1e-5}
TOL_LARGE_K = {"rtol": 1e-4, "atol": 1e-4}
LARGE_K = 256

# A float32 implementation is expected to be well inside the tolerance; the CPU float32
# sanity check must use at most this fraction of it.
SELF_CHECK_MARGIN = 0.25


# --------------------------------------------------------------------------------------
# Case descriptions.  Each builder returns a dict with
#   op, attrs (written out in full), inputs: {name: float32 tensor}, doc,
#   and optionally grad_inputs: the inputs that get a gradient (default: all)
# --------------------------------------------------------------------------------------

CASES = []  # list of (name, builder(rng) -> dict)


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


# ---- conv2d ---------------------------------------------------------------------------

def conv(name, n, c, hw, d, k, stride=1, padding=0, dilation=1, groups=1, bias=True, doc=""):
    h, w = pair(hw)
    kh, kw = pair(k)

    def build(rng):
        fan_in = (c // groups) * kh * kw
        inputs = {
            "input": rng.randn(n, c, h, w),
            # Scaled like a typical init so outputs stay O(1) regardless of fan-in.
            "weight": rng.randn(d, c // groups, kh, kw, scale=fan_in ** -0.5),
        }
        if bias:
            inputs["bias"] = rng.randn(d)
        return {
            "op": "conv2d",
            "attrs": {"stride": pair(stride), "padding": pair(padding),
                      "dilation": pair(dilation), "groups": groups},
            "inputs": inputs,
            "doc": doc,
        }
    CASES.append((name, build))


conv("conv_basic", 1, 3, 8, 4, 3, doc="3x3, stride 1, no padding, bias")
conv("conv_s2_p1", 2, 3, 9, 4, 3, stride=2, padding=1, doc="3x3, stride 2, pad 1, odd input, N=2")
conv("conv_pad_asym", 1, 2, (7, 11), 3, 3, padding=(1, 2), doc="padding differs in H and W")
conv("conv_stride_asym", 1, 3, (13, 10), 4, 3, stride=(1, 2), padding=(0, 1),
     doc="stride (1,2), padding (0,1)")
conv("conv_dil_asym", 1, 3, (9, 14), 2, (3, 2), padding=(1, 3), dilation=(1, 3),
     doc="dilation (1,3), non-square kernel 3x2")
conv("conv_groups3_s2", 2, 6, 10, 9, 3, stride=2, padding=1, groups=3,
     doc="groups=3, stride 2, pad 1")
conv("conv_depthwise", 1, 5, 9, 5, 3, padding=1, groups=5, doc="depthwise, groups=C=D=5")
conv("conv_depthwise_mult2", 2, 4, 11, 8, 3, stride=2, padding=1, groups=4,
     doc="depthwise with channel multiplier 2 (C=4, D=8, groups=4), stride 2")
conv("conv_kernel_1x5", 1, 3, (7, 13), 4, (1, 5), padding=(0, 2), doc="non-square kernel 1x5")
conv("conv_kernel_5x2_s21", 1, 2, (12, 7), 3, (5, 2), stride=(2, 1),
     doc="non-square kernel 5x2, stride (2,1)")
conv("conv_prime_sizes", 1, 3, (13, 17), 5, 3, doc="prime spatial sizes 13x17, D=5")
conv("conv_1x1", 1, 7, 6, 5, 1, doc="1x1 kernel, C=7, D=5")
conv("conv_1x1_s3_p1", 1, 3, 7, 2, 1, stride=3, padding=1,
     doc="1x1 kernel, stride 3 > kernel, pad 1 (pad-only rows hit)")
conv("conv_kernel_eq_input", 2, 3, 5, 4, 5, doc="kernel == input size, 1x1 output")
conv("conv_kernel_eq_padded", 1, 2, (3, 4), 3, (5, 6), padding=1,
     doc="kernel == padded input size (3x4 + pad 1 -> 5x6), 1x1 output")
conv("conv_nobias", 2, 3, 8, 4, 3, padding=1, bias=False, doc="no bias, N=2")
conv("conv_nobias_groups2_s2", 1, 4, 9, 4, 3, stride=2, groups=2, bias=False,
     doc="no bias, groups=2, stride 2")
conv("conv_c64_k3", 1, 64, 6, 8, 3, padding=1, doc="C=64 3x3: reduction length 576")
conv("conv_stride_gt_kernel", 1, 2, 11, 3, 2, stride=3, doc="stride 3 > kernel 2 (skipped pixels)")
conv("conv_pad_gt_half", 1, 2, 5, 3, 3, padding=3,
     doc="padding 3 with 3x3 kernel: border outputs see only padding")
conv("conv_dil2_s2_p3_g2", 1, 4, 13, 6, 3, stride=2, padding=3, dilation=2, groups=2,
     doc="dilation 2, stride 2, pad 3, groups 2 combined")
conv("conv_input_1x1", 2, 16, 1, 8, 1, doc="1x1 spatial input, 1x1 kernel (matmul-like)")
conv("conv_k7_s2_p3", 1, 3, 15, 4, 7, stride=2, padding=3, doc="7x7 stride 2 pad 3 (ResNet stem)")
conv("conv_d17", 1, 5, 7, 17, 3, padding=1, doc="odd output channel count D=17")


# ---- max_pool2d -----------------------------------------------------------------------

def pool(name, op, n, c, hw, k, stride=None, padding=0, ceil_mode=False,
         count_include_pad=True, shift=0.0, doc=""):
    h, w = pair(hw)

    def build(rng):
        attrs = {"kernel": pair(k), "stride": pair(stride if stride is not None else k),
                 "padding": pair(padding), "ceil_mode": ceil_mode}
        if op == "avg_pool2d":
            attrs["count_include_pad"] = count_include_pad
        # randn never has ties in practice; this is asserted below for max_pool2d.
        return {"op": op, "attrs": attrs, "inputs": {"input": rng.randn(n, c, h, w, shift=shift)},
                "doc": doc}
    CASES.append((name, build))


def maxpool(name, *a, **kw):
    pool(name, "max_pool2d", *a, **kw)


def avgpool(name, *a, **kw):
    pool(name, "avg_pool2d", *a, **kw)


maxpool("maxpool_k2s2", 1, 2, 8, 2, doc="2x2 stride 2")
maxpool("maxpool_k3s2", 1, 2, 9, 3, 2, doc="3x3 stride 2, overlapping windows")
maxpool("maxpool_nonsq", 1, 3, (7, 9), (2, 3), (2, 1), (1, 1),
        doc="kernel 2x3, stride (2,1), pad 1")
maxpool("maxpool_ceil_nopad", 1, 2, 8, 3, 2, 0, True,
        doc="ceil_mode, no pad: H=8 k3 s2 -> 4 (floor: 3), last window clipped")
maxpool("maxpool_ceil_exact", 1, 2, 7, 3, 2, 0, True, doc="ceil_mode where ceil == floor (H=7 k3 s2)")
maxpool("maxpool_ceil_pad_keep", 1, 2, 6, 3, 2, 1, True,
        doc="ceil_mode + pad: H=6 k3 s2 p1 -> 4 (last window kept, starts in input)")
maxpool("maxpool_ceil_pad_drop", 1, 2, 5, 2, 2, 1, True,
        doc="ceil_mode + pad: H=5 k2 s2 p1 -> 3, last window would start in padding: dropped")
maxpool("maxpool_ceil_s_gt_k_drop", 1, 2, 6, 2, 3, 0, True,
        doc="ceil_mode, stride 3 > kernel 2, H=6: last window starts past input: dropped -> 2")
maxpool("maxpool_ceil_s_gt_k_keep", 1, 2, 7, 2, 3, 0, True,
        doc="ceil_mode, stride 3 > kernel 2, H=7 -> 3 (last window = last row only)")
maxpool("maxpool_ceil_mixed", 1, 2, (6, 5), (3, 2), 2, 1, True,
        doc="ceil_mode: H kept (H=6 k3 s2 p1 -> 4), W dropped (W=5 k2 s2 p1 -> 3)")
maxpool("maxpool_k1s2", 1, 3, 7, 1, 2, doc="1x1 kernel stride 2: pure subsampling")
maxpool("maxpool_global", 2, 3, 5, 5, doc="kernel == input (5x5) -> 1x1")
maxpool("maxpool_pad_allneg", 1, 2, 7, 3, 2, 1, shift=-10.0,
        doc="all inputs < 0 with pad 1: padding must act as -inf, not 0")
maxpool("maxpool_pad_allneg_ceil", 1, 2, 6, 3, 2, 1, True, shift=-10.0,
        doc="all inputs < 0, pad 1, ceil_mode (last window: 1 real row + pad)")
maxpool("maxpool_prime", 2, 3, (13, 17), 3, 2, 1, doc="prime sizes 13x17, k3 s2 p1")


# ---- avg_pool2d -----------------------------------------------------------------------

avgpool("avgpool_k2s2", 1, 2, 8, 2, doc="2x2 stride 2")
avgpool("avgpool_pad_incl", 1, 2, (7, 6), 3, 1, 1, count_include_pad=True,
        doc="3x3 s1 p1, count_include_pad=True (border divides by 9)")
avgpool("avgpool_pad_excl", 1, 2, (7, 6), 3, 1, 1, count_include_pad=False,
        doc="3x3 s1 p1, count_include_pad=False (border divides by #real)")
avgpool("avgpool_s2_pad_excl", 2, 2, 10, 3, 2, 1, count_include_pad=False, doc="3x3 s2 p1 excl pad")
avgpool("avgpool_ceil_nopad_incl", 1, 2, 8, 3, 2, 0, True, True,
        doc="ceil, no pad, include_pad: last window clipped, divides by clipped size")
avgpool("avgpool_ceil_nopad_excl", 1, 2, 8, 3, 2, 0, True, False,
        doc="ceil, no pad, exclude_pad: last window clipped")
avgpool("avgpool_ceil_pad_incl", 1, 2, 6, 3, 2, 1, True, True,
        doc="ceil + pad 1, include_pad: last window = 1 real + 1 pad (+1 overhang not counted)")
avgpool("avgpool_ceil_pad_excl", 1, 2, 6, 3, 2, 1, True, False,
        doc="ceil + pad 1, exclude_pad: last window divides by 1 real row")
avgpool("avgpool_ceil_pad_drop_incl", 1, 2, 5, 2, 2, 1, True, True,
        doc="ceil + pad: window starting in padding dropped (H=5 k2 s2 p1 -> 3)")
avgpool("avgpool_nonsq_incl", 1, 3, (7, 10), (2, 3), (1, 2), (1, 0), count_include_pad=True,
        doc="kernel 2x3, stride (1,2), pad (1,0), include_pad")
avgpool("avgpool_nonsq_ceil_excl", 1, 2, (9, 8), (3, 2), (2, 3), (1, 1), True, False,
        doc="kernel 3x2, stride (2,3), pad 1, ceil, exclude_pad")
avgpool("avgpool_nonsq_ceil_incl", 1, 2, (9, 8), (3, 2), (2, 3), (1, 1), True, True,
        doc="kernel 3x2, stride (2,3), pad 1, ceil, include_pad")
avgpool("avgpool_s_gt_k_ceil", 1, 2, 7, 2, 3, 0, True, True,
        doc="stride 3 > kernel 2, ceil: last window is 1 row")
avgpool("avgpool_global", 2, 3, (5, 6), (5, 6), doc="kernel == input 5x6 -> 1x1")
avgpool("avgpool_prime", 2, 3, (13, 17), 3, 2, 1, count_include_pad=False,
        doc="prime sizes 13x17, k3 s2 p1, exclude_pad")


# ---- upsample -------------------------------------------------------------------------

def upsample(name, n, c, hw, size, mode, align_corners=None, doc=""):
    h, w = pair(hw)

    def build(rng):
        attrs = {"mode": mode, "size": pair(size)}
        if mode == "bilinear":
            attrs["align_corners"] = align_corners
        return {"op": "upsample", "attrs": attrs, "inputs": {"input": rng.randn(n, c, h, w)},
                "doc": doc}
    CASES.append((name, build))


upsample("nearest_x2", 1, 2, (4, 5), (8, 10), "nearest", doc="nearest, exact 2x")
upsample("nearest_5to7", 1, 2, 5, 7, "nearest", doc="nearest up, non-integer ratio 5->7")
upsample("nearest_7to3", 1, 2, 7, 3, "nearest", doc="nearest down 7->3 (src = floor(d*7/3))")
upsample("nearest_nonsq", 2, 2, (3, 7), (8, 4), "nearest", doc="nearest, up in H (3->8), down in W (7->4)")
upsample("nearest_13to17", 1, 3, (13, 17), (17, 13), "nearest", doc="nearest 13->17 and 17->13")
upsample("nearest_to1", 1, 2, (5, 4), 1, "nearest", doc="nearest to 1x1 (picks [0,0])")
upsample("nearest_from1", 1, 2, 1, (3, 4), "nearest", doc="nearest from 1x1 (broadcast)")

for ac in (False, True):
    s = "ac1" if ac else "ac0"
    acd = f"align_corners={ac}"
    upsample(f"bilinear_x2_{s}", 1, 2, (4, 5), (8, 10), "bilinear", ac, doc=f"bilinear 2x, {acd}")
    upsample(f"bilinear_5to7_{s}", 1, 2, 5, 7, "bilinear", ac, doc=f"bilinear 5->7, {acd}")
    upsample(f"bilinear_down_9to4_{s}", 1, 2, 9, 4, "bilinear", ac,
             doc=f"bilinear down 9->4 (point sampling, no antialias), {acd}")
    upsample(f"bilinear_nonsq_{s}", 2, 2, (3, 7), (8, 4), "bilinear", ac,
             doc=f"bilinear up H 3->8, down W 7->4, {acd}")
    upsample(f"bilinear_to1_{s}", 1, 2, (5, 6), 1, "bilinear", ac,
             doc=f"bilinear to 1x1, {acd}")
    upsample(f"bilinear_to1xW_{s}", 1, 2, (6, 5), (1, 7), "bilinear", ac,
             doc=f"bilinear out H=1 only (6x5 -> 1x7), {acd}")
    upsample(f"bilinear_from1_{s}", 1, 2, 1, (3, 4), "bilinear", ac,
             doc=f"bilinear from 1x1 input, {acd}")


# ---- relu -----------------------------------------------------------------------------

def relu(name, shape, zero_frac=1 / 3, doc=""):
    def build(rng):
        x = rng.randn(*shape)
        # Set about zero_frac of the entries to exactly 0.0: the gradient there must be 0.
        x[rng.rand(*shape) < zero_frac] = 0.0
        return {"op": "relu", "attrs": {}, "inputs": {"input": x}, "doc": doc}
    CASES.append((name, build))


relu("relu_zeros", (2, 3, 7, 9), doc="4-D, ~1/3 exact zeros (grad at 0 is 0)")
relu("relu_2d_zeros", (5, 13), doc="2-D, ~1/3 exact zeros")
relu("relu_half_zeros", (1, 4, 5, 5), zero_frac=0.5, doc="4-D, ~1/2 exact zeros")


# ---- linear ---------------------------------------------------------------------------

def linear(name, n, fin, fout, bias=True, doc=""):
    def build(rng):
        inputs = {"input": rng.randn(n, fin), "weight": rng.randn(fout, fin, scale=fin ** -0.5)}
        if bias:
            inputs["bias"] = rng.randn(fout)
        return {"op": "linear", "attrs": {}, "inputs": inputs, "doc": doc}
    CASES.append((name, build))


linear("linear_basic", 4, 7, 5, doc="N=4, 7 -> 5, bias")
linear("linear_nobias", 3, 13, 11, bias=False, doc="N=3, 13 -> 11, no bias")
linear("linear_n1", 1, 17, 3, doc="N=1, 17 -> 3")
linear("linear_large_k", 8, 257, 9, doc="N=8, 257 -> 9 (long reduction)")
linear("linear_out1", 5, 6, 1, doc="single output feature")
linear("linear_in1_nobias", 6, 1, 4, bias=False, doc="single input feature, no bias")

# The layer and training ops, after these so the manifest keeps its first cases in place;
# then the empty-tensor cases.
CASES += layers.CASES
CASES += empties.CASES
CASES += volumes.CASES  # the volumes', last


# --------------------------------------------------------------------------------------
# Reference computation
# --------------------------------------------------------------------------------------

def run_op(op, attrs, inputs):
    """Forward of `op` with torch.nn.functional; inputs is a dict of tensors."""
    x = inputs["input"]
    if op == "conv2d":
        x, padding = layers.conv_pre_pad(x, attrs)  # padding_mode other than "zeros"
        return F.conv2d(x, inputs["weight"], inputs.get("bias"), stride=attrs["stride"],
                        padding=padding, dilation=attrs["dilation"],
                        groups=attrs["groups"])
    if op == "max_pool2d":
        return F.max_pool2d(x, attrs["kernel"], attrs["stride"], attrs["padding"],
                            dilation=attrs.get("dilation", 1), ceil_mode=attrs["ceil_mode"])
    if op == "avg_pool2d":
        return F.avg_pool2d(x, attrs["kernel"], attrs["stride"], attrs["padding"],
                            ceil_mode=attrs["ceil_mode"],
                            count_include_pad=attrs["count_include_pad"],
                            divisor_override=attrs.get("divisor_override"))
    if op == "upsample":
        if attrs["mode"] == "nearest":
            return F.interpolate(x, size=attrs["size"], mode="nearest")
        return F.interpolate(x, size=attrs["size"], mode=attrs["mode"],
                             align_corners=attrs["align_corners"])
    if op == "relu":
        return F.relu(x)
    if op == "linear":
        return F.linear(x, inputs["weight"], inputs.get("bias"))
    if op in volumes.OPS:
        return volumes.run_op(op, attrs, inputs)
    return layers.run_op(op, attrs, inputs)


def forward_backward(op, attrs, inputs32, grad_out32, dtype, grad_names):
    """Run op forward+backward in `dtype` from float32 inputs; returns
    (out, {name: grad} for grad_names, {name: extra expected array})."""
    # Copies: batch_norm2d updates its running statistics in place.
    leaves = {k: v.to(dtype).detach().clone().requires_grad_(k in grad_names)
              for k, v in inputs32.items()}
    out = run_op(op, attrs, leaves)
    out.backward(grad_out32.to(dtype))
    return (out.detach(), {k: leaves[k].grad.detach() for k in grad_names},
            {**layers.extra_expected(op, attrs, leaves),
             **volumes.extra_expected(op, attrs, leaves)})


def reduction_length(op, attrs, inputs, out_shape):
    """Longest float32 sum a straightforward implementation does for this case."""
    if op == "conv2d":
        d, cg, kh, kw = inputs["weight"].shape
        n, _, ho, wo = out_shape
        # forward: C/g*kH*kW; grad_weight: N*Ho*Wo; grad_bias: N*Ho*Wo;
        # grad_input: (D/g)*kH*kW.
        return max(cg * kh * kw, n * ho * wo, (d // attrs["groups"]) * kh * kw)
    if op == "linear":
        n, fin = inputs["input"].shape
        return max(fin, n, out_shape[1])
    if op in volumes.OPS:
        return volumes.reduction_length(op, attrs, inputs, out_shape)
    return layers.reduction_length(op, attrs, inputs, out_shape)


def check_nearest_rule(attrs, in_hw):
    """The spec defines nearest as src = floor(dst * in / out) (exact integers).  PyTorch
    computes it with a float32 scale, which differs for a few (in, out) pairs, e.g. 14->46.
    Make sure every generated case is one where both agree."""
    for in_s, out_s in zip(in_hw, attrs["size"]):
        x = torch.arange(in_s, dtype=torch.float64).view(1, 1, in_s, 1)
        got = F.interpolate(x, size=(out_s, 1), mode="nearest").view(-1).long().tolist()
        want = [min(d * in_s // out_s, in_s - 1) for d in range(out_s)]
        if got != want:
            raise SystemExit(f"nearest {in_s}->{out_s}: PyTorch {got} != spec rule {want}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/conformance", help="output directory")
    ap.add_argument("--seed", type=int, default=0, help="base random seed")
    ap.add_argument("--list", action="store_true",
                    help="print the case names with a one-line description and exit")
    args = ap.parse_args()

    if args.list:
        for name, build in CASES:
            print(f"{name:28s} {build(Rng(args.seed, name))['doc']}")
        return 0

    torch.use_deterministic_algorithms(True)
    names = [n for n, _ in CASES]
    assert len(names) == len(set(names)), "duplicate case names"

    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)
    # Remove the case folders of a previous run (only those it listed), so that renamed or
    # deleted cases do not linger.
    old_manifest = os.path.join(out_dir, "manifest.json")
    if os.path.exists(old_manifest):
        with open(old_manifest) as f:
            old = json.load(f)
        if old.get("format") == FORMAT:
            for c in old.get("cases", []):
                p = os.path.join(out_dir, c["name"])
                if os.path.isdir(p):
                    shutil.rmtree(p)

    manifest_cases = []
    worst = (0.0, "")
    for name, build in CASES:
        rng = Rng(args.seed, name)
        spec = build(rng)
        op, attrs, inputs = spec["op"], spec["attrs"], spec["inputs"]
        grad_names = spec.get("grad_inputs", list(inputs))

        if op in ("max_pool2d", "adaptive_max_pool2d"):
            # No ties anywhere in a plane, so the argmax of every window is unambiguous.
            x = inputs["input"].flatten(2)
            for plane in x.reshape(-1, x.shape[-1]):
                assert plane.unique().numel() == plane.numel(), f"{name}: tie in input"
        if op == "upsample" and attrs["mode"] == "nearest":
            check_nearest_rule(attrs, inputs["input"].shape[2:])

        # Output shape first (cheap float32 forward), to draw grad_output of that shape.
        # (On copies: batch_norm2d in training would update the stored running statistics.)
        out_shape = run_op(op, attrs, {k: v.clone() for k, v in inputs.items()}).shape
        grad_out = rng.randn(*out_shape)

        # Reference: float64 from the float32 inputs.
        ref_out, ref_grads, ref_extra = forward_backward(op, attrs, inputs, grad_out,
                                                         torch.float64, grad_names)

        tol = TOL_LARGE_K if reduction_length(op, attrs, inputs, out_shape) > LARGE_K \
            else TOL_DEFAULT

        # Sanity: a float32 run must pass comfortably against the float32-rounded reference.
        f32_out, f32_grads, f32_extra = forward_backward(op, attrs, inputs, grad_out,
                                                         torch.float32, grad_names)
        ratios = [max_err_ratio(f32_out, ref_out.float(), tol)]
        ratios += [max_err_ratio(f32_extra[k], ref_extra[k].float(), tol) for k in ref_extra]
        ratios += [max_err_ratio(f32_grads[k], ref_grads[k].float(), tol) for k in grad_names]
        r = max(ratios)
        if r > SELF_CHECK_MARGIN:
            raise SystemExit(f"{name}: float32 error uses {r:.2f} of the tolerance")
        worst = max(worst, (r, name))

        # Write arrays.
        case_dir = os.path.join(out_dir, name)
        os.makedirs(case_dir, exist_ok=True)

        def rel(fname):
            return f"{name}/{fname}.npy"

        for k, v in inputs.items():
            save_npy(os.path.join(case_dir, k + ".npy"), v)
        save_npy(os.path.join(case_dir, "output.npy"), ref_out)
        # "updated_": the input arrays already use the plain names (running_mean.npy).
        for k, v in ref_extra.items():
            save_npy(os.path.join(case_dir, f"updated_{k}.npy"), v)
        save_npy(os.path.join(case_dir, "grad_output.npy"), grad_out)
        for k in grad_names:
            save_npy(os.path.join(case_dir, f"grad_{k}.npy"), ref_grads[k])

        manifest_cases.append({
            "name": name,
            "op": op,
            "attrs": attrs,
            "inputs": {k: rel(k) for k in inputs},
            "expected": {"output": rel("output"),
                         **{k: rel(f"updated_{k}") for k in ref_extra}},
            "grad_output": rel("grad_output"),
            "expected_grads": {k: rel(f"grad_{k}") for k in grad_names},
            "tolerance": tol,
        })

    # Only the keys CONFORMANCE.md defines (descriptions: `--list`).
    manifest = {
        "format": FORMAT,
        "cases": manifest_cases,
    }
    # One case per line: compact, yet diffs stay readable.
    with open(old_manifest, "w") as f:
        f.write('{\n  "format": %s,\n  "cases": [\n' % json.dumps(manifest["format"]))
        f.write(",\n".join("    " + json.dumps(c) for c in manifest["cases"]))
        f.write("\n  ]\n}\n")

    print(f"wrote {len(manifest_cases)} cases to {out_dir} (torch {torch.__version__}); "
          f"worst float32 self-check: {worst[0]:.3f} of tolerance ({worst[1]})")


if __name__ == "__main__":
    sys.exit(main())
