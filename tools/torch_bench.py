"""PyTorch CPU timings of the `convshade bench --quick` cases, for comparison.

Run: python3 tools/torch_bench.py  (two threads, median of 20 runs after a warm-up)
"""
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
def t(name, f, it=20):
    f(); 
    ts=[]
    for _ in range(it):
        a=time.perf_counter(); f(); ts.append(time.perf_counter()-a)
    ts.sort(); print(f"{name:45s} {ts[len(ts)//2]*1e3:8.3f} ms")
a=torch.randn(384,384); b=torch.randn(384,384)
t("matmul 384", lambda: a@b)
x=torch.randn(4,64,28,28); w=torch.randn(64,64,3,3)
t("conv 3x3 64->64 28x28 n4 fwd", lambda: F.conv2d(x,w,padding=1))
xr=x.clone().requires_grad_(); wr=w.clone().requires_grad_()
t("conv fwd+bwd", lambda: F.conv2d(xr,wr,padding=1).sum().backward())
x7=torch.randn(4,3,64,64); w7=torch.randn(64,3,7,7)
t("conv 7x7/2 3->64 64x64", lambda: F.conv2d(x7,w7,stride=2,padding=3))
xd=torch.randn(4,128,28,28); wd=torch.randn(128,1,3,3)
t("depthwise 3x3 128 28x28", lambda: F.conv2d(xd,wd,padding=1,groups=128))
xl=torch.randn(32,1,28,28).requires_grad_(); wl=torch.randn(6,1,5,5).requires_grad_()
t("lenet conv fwd+bwd", lambda: F.conv2d(xl,wl,padding=2).sum().backward())
xp=torch.randn(4,64,56,56)
t("maxpool 3x3/2", lambda: F.max_pool2d(xp,3,2,1))
t("avgpool 2", lambda: F.avg_pool2d(xp,2))
xu=torch.randn(4,64,28,28)
t("bilinear x2", lambda: F.interpolate(xu,scale_factor=2,mode='bilinear'))
xr2=torch.randn(1<<20)
t("relu 1M", lambda: F.relu(xr2))
