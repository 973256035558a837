"""Methods for 3x3 stride-1 convolutions on one CPU thread: the forward, the input gradient
and the weight gradient, each timed alone, for minifm's im2col kernels
(minifm.kernels.conv_cpu), PyTorch (oneDNN) and the candidate kernels
(minifm.kernels.conv_winograd_cpu, conv_direct_cpu); and, for the channels-last im2col
orientation, one chunk's forward product both ways (BLAS alone).

Layers: the 3x3 padding-1 float32 layers of CIFAR ResNet-20 (batch 64) and of ResNet-18 at
32x32 and 64x64 inputs (batch 16). Method: every method runs in this process, interleaved
(one call of each per round, so slow phases of a noisy machine hit all alike), at one thread
(BLAS, OpenMP and Numba thread counts set before the imports; torch.set_num_threads(1)).
Each time is the median over `repeats` rounds after `warmup` rounds. PyTorch's gradients are
aten.convolution_backward with one output mask each (what autograd calls).

Usage:
  python benchmarks/bench_conv_methods.py [--repeats R] [--warmup W] [--cases a,b]

Prints a Markdown table (ms, and each method's time over the current kernels') and writes
benchmarks/results/conv_methods.json and .md (a full run only).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from common import machine_info, median, time_interleaved

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "conv_methods"

# name: (batch, in channels, out channels, height = width); every layer is 3x3, stride 1,
# padding 1. The stem and 16->16 on 16x16 maps (no such layer in these networks) say where
# the thin layers' methods stop winning.
CASES = {
    "cifar-resnet stem 3->16 32x32 b64": (64, 3, 16, 32),
    "cifar-resnet 16->16 32x32 b64": (64, 16, 16, 32),
    "16->16 16x16 b64": (64, 16, 16, 16),
    "cifar-resnet 32->32 16x16 b64": (64, 32, 32, 16),
    "cifar-resnet 64->64 8x8 b64": (64, 64, 64, 8),
    "resnet18 64->64 16x16 b16": (16, 64, 64, 16),
    "resnet18 128->128 8x8 b16": (16, 128, 128, 8),
}
PASSES = ("fwd", "gx", "gw")


def methods(x, w, gy):
    """{method: {pass: callable}} for one layer's arrays (NumPy float32)."""
    import torch

    from minifm.kernels import conv_cpu, conv_direct_cpu, conv_winograd_cpu
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    out, x_shape, w_shape = x.shape[2:], x.shape, w.shape
    tx, tw, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)

    def torch_grad(mask):
        return lambda: torch.ops.aten.convolution_backward(
            tg, tx, tw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

    def kernel(module, **options):
        return {"fwd": lambda: module.conv_forward(x, w, *args, out, **options),
                "gx": lambda: module.conv_input_grad(gy, w, x_shape, *args),
                "gw": lambda: module.conv_weight_grad(x, gy, w_shape, *args)}

    return {
        "im2col (current)": kernel(conv_cpu),
        "PyTorch": {"fwd": lambda: torch.nn.functional.conv2d(tx, tw, padding=1),
                    "gx": torch_grad([True, False, False]),
                    "gw": torch_grad([False, True, False])},
        "winograd F(2,3)": {k: f for k, f in kernel(conv_winograd_cpu).items() if k != "gw"},
        "direct": kernel(conv_direct_cpu),
        "direct by input": {"fwd": kernel(conv_direct_cpu, by_input=True)["fwd"]},
    }


def time_case(case, warmup, repeats):
    import numpy as np
    n, c, o, size = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, size, size), dtype=np.float32)
    w = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * 0.05
    gy = rng.standard_normal((n, o, size, size), dtype=np.float32)
    fns = {(m, p): f for m, fs in methods(x, w, gy).items() for p, f in fs.items()}
    times = time_interleaved(fns, repeats=repeats, warmup=warmup)
    return {key: median(t) * 1e3 for key, t in times.items()}


def gemm_orientations(case, warmup, repeats):
    """The forward's product as the im2col kernels run it, W (O, C*9) @ columns (C*9, P), and
    in the channels-last orientation, columns^T (P, C*9) @ W^T (C*9, O), for one chunk of
    P = samples * H * W columns (conv_cpu._chunks' width): ms per product."""
    import numpy as np

    from minifm.kernels import conv_cpu
    n, c, o, size = CASES[case]
    (start, stop), = conv_cpu._chunks(n, size * size)[:1]
    p, k = (stop - start) * size * size, c * 9
    rng = np.random.default_rng(0)
    w, cols = (rng.standard_normal(s, dtype=np.float32) for s in ((o, k), (k, p)))
    wt, cols_t = np.ascontiguousarray(w.T), np.ascontiguousarray(cols.T)
    y, y_t = np.empty((o, p), np.float32), np.empty((p, o), np.float32)
    times = time_interleaved({"W @ cols": lambda: np.matmul(w, cols, out=y),
                              "cols^T @ W^T": lambda: np.matmul(cols_t, wt, out=y_t)},
                             repeats=repeats * 10, warmup=warmup)
    return f"{o}x{k} @ {k}x{p}", {name: median(t) * 1e3 for name, t in times.items()}


def table(rows):
    """Markdown: one row per (layer, pass), one column per method: ms (ratio to current)."""
    names = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| layer | pass | " + " | ".join(names) + " |",
             "| --- | --- |" + " ---: |" * len(names)]
    cells = {(r["case"], r["pass"], r["method"]): r["ms"] for r in rows}
    for case in dict.fromkeys(r["case"] for r in rows):
        for p in PASSES:
            base = cells[case, p, "im2col (current)"]
            row = [f"{cells[case, p, m]:.2f} ({cells[case, p, m] / base:.2f})"
                   if (case, p, m) in cells else "" for m in names]
            lines.append(f"| {case} | {p} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cases", default=None,
                        help="comma-separated substrings: run only the cases naming one")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import torch
    torch.set_num_threads(1)

    cases = [c for c in CASES if args.cases is None
             or any(part in c for part in args.cases.split(","))]
    rows = []
    for case in cases:
        for (method, p), ms in time_case(case, args.warmup, args.repeats).items():
            rows.append(dict(case=case, method=method, **{"pass": p}, ms=ms))
            print(f"{case:32s} {p:4s} {method:18s} {ms:8.2f} ms", file=sys.stderr)
    text = table(rows)
    gemm = ["| layer | product | W @ cols (ms) | cols^T @ W^T (ms) |",
            "| --- | --- | ---: | ---: |"]
    for case in cases:
        shape, t = gemm_orientations(case, args.warmup, args.repeats)
        gemm.append(f"| {case} | {shape} | {t['W @ cols']:.3f} | {t['cols^T @ W^T']:.3f} |")
        rows.append(dict(case=case, method="gemm orientation", product=shape, **t))
    text += ("\n\nOne chunk's forward product (BLAS), as the im2col kernels orient it and "
             "channels-last:\n\n" + "\n".join(gemm))
    print(text)
    if args.cases is None:  # a partial run leaves the results files alone
        meta = dict(threads=1, repeats=args.repeats, warmup=args.warmup,
                    machine=machine_info())
        RESULTS.with_suffix(".json").write_text(
            json.dumps(dict(meta=meta, results=rows), indent=2) + "\n")
        machine = meta["machine"]
        RESULTS.with_suffix(".md").write_text(
            "# 3x3 stride-1 convolution methods, one CPU thread\n\n"
            "`python benchmarks/bench_conv_methods.py` (float32, padding 1; ms, median of "
            f"{args.repeats} interleaved rounds; in parentheses: time / current im2col "
            f"kernels'), {machine['time']}, {machine['cpu_count']} cores, NumPy "
            f"{machine.get('numpy')}, Numba {machine.get('numba')}, PyTorch "
            f"{machine.get('torch')}. The machine's cores are shared with other jobs: "
            "single runs vary by about 20%; see the kernels' docstrings for ranges over "
            "runs.\n\n" + text + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
