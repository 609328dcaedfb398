"""The committed conformance suite (tests/conformance, PyTorch's values) through the Python API:
each case's op called by its PyTorch name and keywords, forward and backward, on the CPU and
the GPU."""

import json
from pathlib import Path

import numpy as np
import pytest

import convshade as torch
import convshade.nn.functional as F

ROOT = Path(__file__).resolve().parents[2] / "tests" / "conformance"
CASES = json.loads((ROOT / "manifest.json").read_text())["cases"]
DEVICES = ["cpu", "gpu"]


def call(op, x, a):
    """The case's op through convshade's PyTorch names."""
    if op == "conv2d":
        return torch.nn.functional.conv2d(x["input"], x["weight"], x.get("bias"), a["stride"],
                                          a["padding"], a["dilation"], a["groups"]) \
            if a.get("padding_mode", "zeros") == "zeros" else _conv_mode(x, a)
    # the 2-d and 3-d ops take the same attrs
    if op in ("conv_transpose2d", "conv_transpose3d"):
        return getattr(F, op)(x["input"], x["weight"], x.get("bias"), stride=a["stride"],
                              padding=a["padding"], output_padding=a["output_padding"],
                              groups=a["groups"], dilation=a["dilation"])
    if op in ("max_pool2d", "max_pool3d"):
        return getattr(F, op)(x["input"], a["kernel"], a["stride"], a["padding"],
                              a.get("dilation", 1), a["ceil_mode"])
    if op in ("avg_pool2d", "avg_pool3d"):
        return getattr(F, op)(x["input"], a["kernel"], a["stride"], a["padding"], a["ceil_mode"],
                              a["count_include_pad"], a.get("divisor_override"))
    if op == "conv3d":
        if a.get("padding_mode", "zeros") != "zeros":
            conv = torch.nn.Conv3d(1, 1, 1, padding_mode=a["padding_mode"])
            conv.weight, conv.bias = x["weight"], x.get("bias")
            conv.stride, conv.dilation, conv.groups = a["stride"], a["dilation"], a["groups"]
            conv.padding = a["padding"] if isinstance(a["padding"], str) else tuple(a["padding"])
            conv.stride, conv.dilation = tuple(conv.stride), tuple(conv.dilation)
            return conv(x["input"])
        return F.conv3d(x["input"], x["weight"], x.get("bias"), a["stride"], a["padding"],
                        a["dilation"], a["groups"])
    if op == "batch_norm3d":
        return F.batch_norm(x["input"], x["running_mean"], x["running_var"], x.get("weight"),
                            x.get("bias"), a["training"], a["momentum"], a["eps"])
    if op in ("adaptive_avg_pool3d", "adaptive_max_pool3d"):
        return getattr(F, op)(x["input"], a["output_size"])
    if op == "upsample":
        ac = a.get("align_corners") if a["mode"] in ("bilinear", "trilinear") else None
        return F.interpolate(x["input"], size=a["size"], mode=a["mode"], align_corners=ac)
    if op == "batch_norm2d":
        return F.batch_norm(x["input"], x["running_mean"], x["running_var"], x.get("weight"),
                            x.get("bias"), a["training"], a["momentum"], a["eps"])
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return getattr(F, op)(x["input"], a["output_size"])
    if op == "pad":
        return F.pad(x["input"], a["pad"], a["mode"], a.get("value", 0.0))
    if op == "linear":
        return F.linear(x["input"], x["weight"], x.get("bias"))
    if op == "cross_entropy":
        return F.cross_entropy(x["input"], x["target"], reduction=a["reduction"],
                               label_smoothing=a["label_smoothing"])
    if op == "mse_loss":
        return F.mse_loss(x["input"], x["target"], reduction=a["reduction"])
    if op in ("softmax", "log_softmax"):
        return getattr(F, op)(x["input"], dim=a["dim"])
    if op == "leaky_relu":
        return F.leaky_relu(x["input"], a["negative_slope"])
    if op == "gelu":
        return F.gelu(x["input"], approximate=a["approximate"])
    return getattr(F, op)(x["input"])


def _conv_mode(x, a):
    conv = torch.nn.Conv2d(1, 1, 1)  # the layer's forward carries padding_mode
    conv.weight, conv.bias = x["weight"], x.get("bias")
    conv.stride, conv.padding, conv.dilation = tuple(a["stride"]), tuple(a["padding"]), \
        tuple(a["dilation"])
    conv.groups, conv.padding_mode = a["groups"], a["padding_mode"]
    return conv(x["input"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, device):
    load = lambda rel: np.load(ROOT / rel)  # noqa: E731
    grads = case.get("expected_grads", {})
    x = {}
    for name, rel in case["inputs"].items():
        t = torch.tensor(load(rel), device=device)
        x[name] = t.requires_grad_() if name in grads else t
    tol = case["tolerance"]
    out = call(case["op"], x, case["attrs"])
    np.testing.assert_allclose(out.numpy(), load(case["expected"]["output"]), rtol=tol["rtol"],
                               atol=tol["atol"], err_msg=f"{case['name']}: output")
    for name in ("running_mean", "running_var"):
        if name in case["expected"]:
            np.testing.assert_allclose(x[name].numpy(), load(case["expected"][name]),
                                       rtol=tol["rtol"], atol=tol["atol"])
    if grads:
        g = load(case["grad_output"]).reshape(tuple(out.shape))  # a loss's is stored as (1,)
        out.backward(torch.tensor(g, device=device))
        for name, rel in grads.items():
            np.testing.assert_allclose(x[name].grad.numpy(), load(rel), rtol=tol["rtol"],
                                       atol=tol["atol"], err_msg=f"{case['name']}: grad {name}")
