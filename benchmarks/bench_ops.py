"""Per-op overhead of minifm next to PyTorch eager, in one run on the same machine.

For small tensors the time of an op is mostly framework overhead (argument handling, dtype
rules, recording the graph), so this measures microseconds per call for a few common ops at
(16, 16) and (128, 128): without grad, with grad (forward only, graph recorded), and forward
plus backward; then a small MLP (784-256-10, batch 64) forward + backward.

Both libraries run single-threaded (torch.set_num_threads(1); OpenBLAS/MKL/OMP thread
variables set to 1 before NumPy loads), so the comparison is op for op, not thread for thread.
Each figure is the median over repeats of the mean time of a timed loop; minifm and PyTorch
take turns within each repeat, so load on a shared machine hits both sides alike.

    python benchmarks/bench_ops.py [--quick] [--repeats 9] [--out benchmarks/results/ops.json]
    python benchmarks/bench_ops.py --ops relu,softmax --out /tmp/ops.json   (some ops' rows)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from benchmarks.common import machine_info  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

torch.set_num_threads(1)


def _loops_for(fn, budget):
    """How many calls of fn take about `budget` seconds."""
    fn()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < budget / 4:
        fn()
        n += 1
    return max(1, n * 4)


def time_side_by_side(fns, repeats, budget=0.02):
    """Median (and minimum) over `repeats` of the mean microseconds per call of each
    function. The functions take turns within each repeat, so a noisy moment on the
    machine hits both sides."""
    loops = {name: _loops_for(fn, budget) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / loops[name])
    result = {name: statistics.median(s) * 1e6 for name, s in samples.items()}
    result.update({f"{name}_min": min(s) * 1e6 for name, s in samples.items()})
    return result


OPS = {
    "add": lambda x, y: x + y,
    "mul": lambda x, y: x * y,
    "matmul": lambda x, y: x @ y,
    "relu": lambda x, y: x.relu(),
    "sum": lambda x, y: x.sum(),
    "softmax": lambda x, y: x.softmax(-1),
    "getitem": lambda x, y: x[1:, :8],
    "reshape": lambda x, y: x.reshape(-1),
}


def make_inputs(lib, n, requires_grad):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    if lib == "torch":
        return (torch.from_numpy(a).requires_grad_(requires_grad),
                torch.from_numpy(b).requires_grad_(requires_grad))
    return minifm.Tensor(a, requires_grad=requires_grad), minifm.Tensor(b, requires_grad=requires_grad)


def op_cases(repeats, ops=tuple(OPS)):
    rows = []
    for n in (16, 128):
        for name, op in OPS.items():
            if name not in ops:
                continue
            for mode in ("no grad", "grad", "fwd+bwd"):
                fns = {}
                for lib in ("minifm", "torch"):
                    x, y = make_inputs(lib, n, requires_grad=mode != "no grad")
                    if mode == "fwd+bwd":
                        def fn(x=x, y=y, op=op):
                            x.grad = y.grad = None
                            op(x, y).sum().backward()
                    else:
                        def fn(x=x, y=y, op=op):
                            op(x, y)
                    fns[lib] = fn
                rows.append({"op": name, "shape": f"({n}, {n})", "mode": mode,
                             **time_side_by_side(fns, repeats)})
    return rows


def mlp_case(repeats):
    rng = np.random.default_rng(0)
    shapes = {"w1": (256, 784), "b1": (256,), "w2": (10, 256), "b2": (10,)}
    params = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in shapes.items()}
    x = rng.standard_normal((64, 784)).astype(np.float32)
    y = rng.integers(0, 10, (64, 1))
    fns = {}
    for lib, fn_mod in (("minifm", F), ("torch", TF)):
        p = {k: (minifm.Tensor(v.copy(), requires_grad=True) if lib == "minifm"
                 else torch.from_numpy(v.copy()).requires_grad_()) for k, v in params.items()}
        xs = minifm.Tensor(x) if lib == "minifm" else torch.from_numpy(x)
        ys = minifm.Tensor(y) if lib == "minifm" else torch.from_numpy(y)

        def step(p=p, xs=xs, ys=ys, fn_mod=fn_mod):
            for t in p.values():
                t.grad = None
            h = fn_mod.relu(fn_mod.linear(xs, p["w1"], p["b1"]))
            logp = fn_mod.log_softmax(fn_mod.linear(h, p["w2"], p["b2"]), dim=-1)
            loss = -logp.gather(1, ys).mean()
            loss.backward()
        fns[lib] = step
    return {"op": "MLP 784-256-10 fwd+bwd", "shape": "batch 64", "mode": "fwd+bwd",
            **time_side_by_side(fns, repeats, budget=0.2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 9")
    parser.add_argument("--ops", default=",".join([*OPS, "mlp"]),
                        help="comma-separated ops to time (default: all, and the MLP)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ops.json"))
    args = parser.parse_args()
    args.repeats = args.repeats or (5 if args.quick else 9)

    ops = args.ops.split(",")
    unknown = set(ops) - set(OPS) - {"mlp"}
    if unknown:
        parser.error(f"unknown ops {sorted(unknown)}; choose from {', '.join(OPS)}, mlp")
    rows = op_cases(args.repeats, ops) + ([mlp_case(args.repeats)] if "mlp" in ops else [])
    for row in rows:
        row["ratio"] = row["minifm"] / row["torch"]
        row["ratio_of_minima"] = row["minifm_min"] / row["torch_min"]
    print(f"{'op':<24}{'shape':<12}{'mode':<9}{'minifm us':>11}{'torch us':>10}{'ratio':>8}"
          f"{'min ratio':>11}")
    for r in rows:
        print(f"{r['op']:<24}{r['shape']:<12}{r['mode']:<9}{r['minifm']:>11.1f}{r['torch']:>10.1f}"
              f"{r['ratio']:>8.2f}{r['ratio_of_minima']:>11.2f}")
    ratios = [r["ratio"] for r in rows]
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean ratio minifm/torch: {geo:.2f}  (threads: 1 for both)")
    result = {
        "note": "microseconds per call: median (and *_min) over repeats, minifm and torch "
                "interleaved; torch.set_num_threads(1) and BLAS/OMP threads = 1 for NumPy",
        "machine": machine_info(), "repeats": args.repeats,
        "geomean_ratio": geo, "rows": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
