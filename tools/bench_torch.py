"""The `convshade bench` suite on PyTorch, timed the same way, written in the same JSON schema.

    python3 -m venv /tmp/vt && /tmp/vt/bin/pip install torch numpy
    /tmp/vt/bin/python tools/bench_torch.py --json torch.json          # CPU, threads = cores
    /tmp/vt/bin/python tools/bench_torch.py --device cuda --json t.json  # a CUDA GPU
    convshade bench --compare torch.json

Timing (as `src/bench/mod.rs`): one warm-up run, an inner loop calibrated to at least
`min_sample`, then samples of that loop, each ended by a device sync; median, min and max per
run over the samples. CUDA results are reported as device "gpu".
"""
import argparse
import json
import os
import platform
import re
import time

import torch
import torch.nn.functional as F

FULL = dict(samples=10, min_sample=0.050, budget=20.0)
QUICK = dict(samples=3, min_sample=0.005, budget=2.0)

CONVS = [  # name, input (n, c, h, w), filters, kernel, stride, padding
    ("S1", (1, 1, 6, 8), 1, (1, 2), 1, 0),
    ("S2", (64, 1, 28, 28), 32, (3, 3), 1, 1),
    ("S3", (64, 32, 14, 14), 64, (3, 3), 1, 1),
    ("S4", (8, 64, 56, 56), 64, (3, 3), 1, 1),
    ("S5", (8, 3, 224, 224), 64, (7, 7), 2, 3),
]


def randn(*shape, dev, grad=False):
    return torch.randn(*shape, device=dev).requires_grad_(grad)


def gemm(m, k, n, dev):
    a, b = randn(m, k, dev=dev), randn(k, n, dev=dev)
    return 2.0 * m * k * n, lambda: a @ b


def conv(spec, backward, dev):
    _, (n, c, h, w), d, (kh, kw), s, p = spec
    x, wt, b = randn(n, c, h, w, dev=dev, grad=True), randn(d, c, kh, kw, dev=dev, grad=True), \
        randn(d, dev=dev, grad=True)
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    up = randn(n, d, oh, ow, dev=dev)
    fwd = 2.0 * n * d * oh * ow * c * kh * kw

    def run():
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        if backward:
            y.backward(up)
    if not backward:
        return fwd, torch.no_grad()(lambda: F.conv2d(x, wt, b, stride=s, padding=p))
    return 3.0 * fwd, run


POOLS = {"max_pool": (64, 32, 28, 28), "avg_pool": (8, 64, 56, 56)}


def pool_bytes(name):
    """The least traffic of a pooling run in bytes, counted as convshade's suite counts it
    (src/bench/suite.rs, pool_bytes); None for other cases."""
    if name.startswith("max_pool3d"):
        inp = 8 * 16 * 16 * 32 * 32
        return 4.0 * (2 * inp + 2 * inp / 8)  # read, write; read the gradient, write the input's
    for kind, (n, c, h, w) in POOLS.items():
        if name.startswith(kind + "_f"):
            inp, out = n * c * h * w, n * c * ((h + 1) // 2) * ((w + 1) // 2)
            idx = out if kind == "max_pool" else 0
            bwd = out + idx + inp if name.endswith("fwd_bwd") else 0
            return 4.0 * (inp + out + idx + bwd)
    return None


def pool(kind, backward, dev):
    if kind == "max_pool":
        x, f = randn(64, 32, 28, 28, dev=dev, grad=True), lambda t: F.max_pool2d(t, 2)
    else:
        x = randn(8, 64, 56, 56, dev=dev, grad=True)
        def f(t): return F.avg_pool2d(t, 3, stride=2, padding=1)
    up = torch.randn_like(f(x).detach())

    def run():
        y = f(x)
        if backward:
            y.backward(up)
    if not backward:
        return None, torch.no_grad()(lambda: f(x))
    return None, run


BATCH_NORM = (64, 32, 28, 28)


def batch_norm_bytes(name):
    """Bytes a training-mode batch norm moves, counted as convshade's suite counts them
    (src/bench/suite.rs, batch_norm_bytes); None for other cases."""
    if not name.startswith("batch_norm"):
        return None
    n, c, h, w = BATCH_NORM
    return 4.0 * n * c * h * w * (8 if name.endswith("fwd_bwd") else 3)


def batch_norm(backward, dev):
    c = BATCH_NORM[1]
    x = randn(*BATCH_NORM, dev=dev, grad=backward)
    wt, b = randn(c, dev=dev, grad=backward), randn(c, dev=dev, grad=backward)
    rm, rv = torch.zeros(c, device=dev), torch.ones(c, device=dev)
    up = torch.randn_like(x.detach())

    def f():
        return F.batch_norm(x, rm, rv, wt, b, training=True)

    def run():
        f().backward(up)
    if not backward:
        return None, torch.no_grad()(f)
    return None, run


def net(dev):
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 10)).to(dev)


NET_FWD = 2.0 * 64 * (32 * 784 * 9 + 64 * 196 * 32 * 9 + 3136 * 10)


def train_step(dev):
    model = net(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = randn(64, 1, 28, 28, dev=dev)
    labels = torch.tensor([(i * 7 + 3) % 10 for i in range(64)], device=dev)

    def run():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        opt.step()
    return 3.0 * NET_FWD, run


def infer_step(dev):
    model, x = net(dev), randn(64, 1, 28, 28, dev=dev)
    return NET_FWD, torch.no_grad()(lambda: model(x))


VOLUME = (8, 16, 16, 32, 32)


def conv3d(backward, dev):
    n, c, d, h, w = VOLUME
    x, wt, b = randn(*VOLUME, dev=dev, grad=True), randn(32, c, 3, 3, 3, dev=dev, grad=True), \
        randn(32, dev=dev, grad=True)
    up = randn(n, 32, d, h, w, dev=dev)
    fwd = 2.0 * n * 32 * d * h * w * c * 27

    def run():
        y = F.conv3d(x, wt, b, padding=1)
        if backward:
            y.backward(up)
    if not backward:
        return fwd, torch.no_grad()(lambda: F.conv3d(x, wt, b, padding=1))
    return 3.0 * fwd, run


def max_pool3d(dev):
    x = randn(*VOLUME, dev=dev, grad=True)
    up = torch.randn_like(F.max_pool3d(x, 2).detach())

    def run():
        F.max_pool3d(x, 2).backward(up)
    return None, run


def suite():
    cases = [(f"gemm_{n}", lambda d, n=n: gemm(n, n, n, d)) for n in (256, 512, 1024, 4096)]
    cases.append(("gemm_im2row", lambda d: gemm(3136, 576, 64, d)))
    for spec in CONVS:
        for bwd in (False, True):
            cases.append((f"conv_{spec[0]}_{'fwd_bwd' if bwd else 'fwd'}",
                          lambda d, s=spec, b=bwd: conv(s, b, d)))
    for bwd in (False, True):
        for kind in ("max_pool", "avg_pool"):
            cases.append((f"{kind}_{'fwd_bwd' if bwd else 'fwd'}",
                          lambda d, k=kind, b=bwd: pool(k, b, d)))
    for bwd in (False, True):
        cases.append((f"batch_norm_{'fwd_bwd' if bwd else 'fwd'}",
                      lambda d, b=bwd: batch_norm(b, d)))
    cases += [("train_step", train_step), ("infer_step", infer_step)]
    cases += [("conv3d_fwd", lambda d: conv3d(False, d)), ("conv3d_fwd_bwd", lambda d: conv3d(True, d)),
              ("max_pool3d_fwd_bwd", max_pool3d)]
    return cases


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_runs(op, dev, n):
    t0 = time.perf_counter()
    for _ in range(n):
        op()
    sync(dev)
    return (time.perf_counter() - t0) / n


def run_case(name, build, dev, cfg):
    flops, op = build(dev)
    start = time.perf_counter()
    once = time_runs(op, dev, 1)
    inner = min(max(1, int(-(-cfg["min_sample"] // max(once, 1e-9)))), 1 << 20)
    per_run = []
    while not per_run or (len(per_run) < cfg["samples"]
                          and time.perf_counter() - start < cfg["budget"]):
        per_run.append(time_runs(op, dev, inner))
    s = sorted(per_run)
    k = len(s)
    median = s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2
    moved = pool_bytes(name) or batch_norm_bytes(name)
    return {"case": name, "device": "gpu" if dev.type == "cuda" else "cpu",
            "median_ms": median * 1e3, "min_ms": s[0] * 1e3, "max_ms": s[-1] * 1e3,
            "runs": k * inner, "gflops": None if flops is None else flops / median / 1e9,
            "gbps": None if moved is None else moved / median / 1e9}


def host():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    simd = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "simd": str(simd).lower()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--filter", help="only cases whose name matches this regular expression")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    cases = [(n, b) for n, b in suite() if not args.filter or re.search(args.filter, n)]
    if args.list:
        print("\n".join(n for n, _ in cases))
        return
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        # float32 products as float32: TF32 would trade precision for speed
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cfg = QUICK if args.quick else FULL
    results = []
    for name, build in cases:
        r = run_case(name, build, dev, cfg)
        g = "-" if r["gflops"] is None else f"{r['gflops']:.1f} GFLOP/s"
        if r["gbps"] is not None:
            g = f"{r['gbps']:.1f} GB/s"
        print(f"{name:18s} {r['device']:4s} {r['median_ms']:10.3f} ms  {g}", flush=True)
        results.append(r)
    adapter = None
    if dev.type == "cuda":
        adapter = {"name": torch.cuda.get_device_name(), "backend": "CUDA",
                   "device_type": "DiscreteGpu", "driver": torch.version.cuda or ""}
    report = {"engine": "torch", "version": torch.__version__, "adapter": adapter,
              "host": host(), "peak_gflops": {"cpu": None, "gpu": None},
              "peak_copy_gbps": {"cpu": None, "gpu": None}, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
