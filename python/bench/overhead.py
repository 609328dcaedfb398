"""The Python overhead per small op: microseconds per call of the same PyTorch-named call on
convshade and on PyTorch, on tiny CPU tensors where the call itself costs next to nothing,
alternating the engines round by round; the median of the rounds.

    python python/bench/overhead.py            # needs convshade and torch in one environment
"""

import statistics
import timeit

import numpy as np

CALLS = {
    "a + b": lambda m, a, b: a + b,
    "a * 2.0": lambda m, a, b: a * 2.0,
    "a.sum()": lambda m, a, b: a.sum(),
    "a.relu()": lambda m, a, b: a.relu(),
    "a @ b": lambda m, a, b: a @ b,
    "a[1:3, ::2]": lambda m, a, b: a[1:3, ::2],
    "a.reshape(-1)": lambda m, a, b: a.reshape(-1),
    "F.relu(a)": lambda m, a, b: m.nn.functional.relu(a),
    "a.item() (1 elem)": lambda m, a, b: a[0, 0].item(),
    "tensor([[1., 2.]])": lambda m, a, b: m.tensor([[1.0, 2.0]]),
}


def engines():
    import convshade

    out = [("convshade", convshade)]
    try:
        import torch

        torch.set_num_threads(1)
        out.append(("torch", torch))
    except ImportError:
        pass
    return out


def main(rounds=7, number=2000):
    found = engines()
    x = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
    args = {}
    for name, m in found:
        kw = {"device": "cpu"} if name == "convshade" else {}
        args[name] = (m, m.tensor(x, **kw), m.tensor(x.T.copy(), **kw))
    print(f"{'call':<22}" + "".join(f"{n:>14}" for n, _ in found) + "    (us per call, median "
          f"of {rounds} rounds of {number})")
    for label, f in CALLS.items():
        times = {n: [] for n, _ in found}
        for _ in range(rounds):
            for n, _ in found:  # alternating: each round runs every engine once
                m, a, b = args[n]
                times[n].append(timeit.timeit(lambda: f(m, a, b), number=number) / number * 1e6)
        meds = [statistics.median(times[n]) for n, _ in found]
        ratio = f"   {meds[0] / meds[1]:.2f}x torch" if len(meds) > 1 else ""
        print(f"{label:<22}" + "".join(f"{t:>14.2f}" for t in meds) + ratio)


if __name__ == "__main__":
    main()
