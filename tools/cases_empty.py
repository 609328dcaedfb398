"""Conformance cases with empty tensors (a dimension of 0), PyTorch's results: empty outputs
and zero gradients for an empty batch, a sum over nothing of 0 and a mean over nothing of
NaN (the losses), empty softmax rows.

gen_cases.py imports CASES and runs them after the layer cases, like its own.  PyTorch's
rules that these pin down: a window op over an empty batch gives an empty output, and the
weight and bias gradients of nothing are zeros; cross_entropy and mse_loss over nothing are
NaN with mean and 0 with sum; batch_norm2d in evaluation passes an empty batch through.
"""

from cases_layers import add, conv_inputs

CASES = []  # (name, builder(rng) -> dict), as in gen_cases.py


def empty(name, op, attrs, make_inputs, doc, grad_inputs=None):
    add(name, op, attrs, make_inputs, doc, grad_inputs, into=CASES)


CONV = {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}
empty("empty_conv_batch", "conv2d", CONV, conv_inputs(0, 3, 5, (4, 3, 3, 3), 27, 4),
      "conv2d over a batch of 0: empty output, zero weight and bias gradients")
CONVT = {"stride": [2, 2], "padding": [0, 0], "output_padding": [1, 1], "dilation": [1, 1],
         "groups": 1}
empty("empty_convt_batch", "conv_transpose2d", CONVT, conv_inputs(0, 2, 3, (2, 3, 2, 2), 8, 3),
      "conv_transpose2d over a batch of 0: zero weight and bias gradients")
empty("empty_linear_rows", "linear", {}, lambda rng: {
    "input": rng.randn(0, 5), "weight": rng.randn(3, 5), "bias": rng.randn(3)},
      "linear over 0 rows: (0, 3), zero weight and bias gradients")
empty("empty_linear_features", "linear", {}, lambda rng: {
    "input": rng.randn(4, 0), "weight": rng.randn(3, 0), "bias": rng.randn(3)},
      "linear over 0 input features: the bias alone")
empty("empty_maxpool_batch", "max_pool2d",
      {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "ceil_mode": False},
      lambda rng: {"input": rng.randn(0, 2, 6, 6)}, "max_pool2d over a batch of 0")
empty("empty_avgpool_batch", "avg_pool2d",
      {"kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "ceil_mode": False,
       "count_include_pad": True},
      lambda rng: {"input": rng.randn(0, 2, 5, 5)}, "avg_pool2d over a batch of 0")
empty("empty_adaptive_avg_batch", "adaptive_avg_pool2d", {"output_size": [2, 3]},
      lambda rng: {"input": rng.randn(0, 3, 7, 5)}, "adaptive_avg_pool2d over a batch of 0")
empty("empty_upsample_batch", "upsample", {"mode": "bilinear", "size": [6, 8],
                                           "align_corners": False},
      lambda rng: {"input": rng.randn(0, 2, 3, 4)}, "bilinear upsampling of a batch of 0")
empty("empty_pad_const_axis", "pad", {"pad": [1, 2, 0, 0], "mode": "constant", "value": 2.5},
      lambda rng: {"input": rng.randn(1, 2, 3, 0)},
      "constant padding fills an empty last axis (width 0 -> 3)")
empty("empty_bn_eval_batch", "batch_norm2d", {"training": False, "momentum": 0.1, "eps": 1e-5},
      lambda rng: {"input": rng.randn(0, 3, 4, 4), "weight": rng.randn(3),
                   "bias": rng.randn(3), "running_mean": rng.randn(3),
                   "running_var": rng.rand(3) + 0.5},
      "batch_norm2d in evaluation over a batch of 0", grad_inputs=["input", "weight", "bias"])
empty("empty_relu", "relu", {}, lambda rng: {"input": rng.randn(0, 4)}, "relu of (0, 4)")
empty("empty_softmax_rows", "softmax", {"dim": 1}, lambda rng: {"input": rng.randn(0, 5)},
      "softmax over 0 rows")
empty("empty_log_softmax_cols", "log_softmax", {"dim": 0},
      lambda rng: {"input": rng.randn(0, 3)}, "log_softmax along an axis of length 0")
empty("empty_ce_mean", "cross_entropy", {"label_smoothing": 0.0, "reduction": "mean"},
      lambda rng: {"input": rng.randn(0, 4), "target": rng.randn(0)},
      "cross_entropy over 0 rows, mean: NaN", grad_inputs=["input"])
empty("empty_ce_sum", "cross_entropy", {"label_smoothing": 0.1, "reduction": "sum"},
      lambda rng: {"input": rng.randn(0, 4), "target": rng.randn(0)},
      "cross_entropy over 0 rows, sum: 0", grad_inputs=["input"])
empty("empty_mse_mean", "mse_loss", {"reduction": "mean"},
      lambda rng: {"input": rng.randn(2, 0, 3), "target": rng.randn(2, 0, 3)},
      "mse_loss of empty tensors, mean: NaN")
empty("empty_mse_sum", "mse_loss", {"reduction": "sum"},
      lambda rng: {"input": rng.randn(0, 3), "target": rng.randn(0, 3)},
      "mse_loss of empty tensors, sum: 0")
