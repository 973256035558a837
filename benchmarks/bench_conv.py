"""Convolution and pooling, minifm against PyTorch, on the CPU.

Cases: the two layer shapes a DCGAN at 32x32 spends its time in (a k4 s2 p1 convolution
64 -> 128 channels on 16x16 maps, and the transposed convolution back, batch 64), a 3x3
"same" convolution of a small MNIST CNN, a 2x2 max pool, and the layers of ResNet-18
(torchvision's, 32x32 and 64x64 inputs, batch 16) and of CIFAR ResNet-20 (batch 64).

Method: both frameworks run in this process, interleaved (one minifm call, one PyTorch
call, ...) so slow phases of a noisy machine hit both alike, with the same thread count
(set before NumPy and PyTorch load). Each time is the median over `repeats` calls after
`warmup` calls; with more than one thread, each timed call follows a 10 ms pause and one
untimed call of the same framework: both frameworks' OpenMP workers spin for a few
milliseconds after each call (PyTorch's: 4.8 ms of CPU in the 200 ms after a GELU call at
two threads), and a call made at once shared the two cores with them (GELU forward +
backward at (32, 128, 768): 9.5 ms alone, 13.7 ms right after PyTorch's); after the pause
they sleep, and the first call of a framework pays its own workers' wake-up (milliseconds
on this VM: PyTorch's adaptive pool of (16, 512, 2, 2) took 7 ms so, 0.1 ms in a loop).
"fwd" is the forward alone, "fwd+bwd" the forward plus the backward of
sum(y * g) with respect to the input and the weight. The ratio is minifm / PyTorch: below 1
is faster.

Usage:
  python benchmarks/bench_conv.py [--threads N] [--repeats R] [--quick]

Writes benchmarks/results/conv.json (one thread; conv_<N>threads.json for N threads) and
prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from common import machine_info

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def results_file(threads):
    """conv.json for one thread, conv_<N>threads.json for N: a two-thread run no longer
    overwrites the one-thread results."""
    return RESULTS / ("conv.json" if threads == 1 else f"conv_{threads}threads.json")

# name: (function, input shape, weight shape or None, keyword arguments)
CASES = {
    "conv2d k4s2p1 64->128 16x16 b64": ("conv2d", (64, 64, 16, 16), (128, 64, 4, 4),
                                        dict(stride=2, padding=1)),
    "conv_transpose2d k4s2p1 128->64 8x8 b64": ("conv_transpose2d", (64, 128, 8, 8),
                                                (128, 64, 4, 4), dict(stride=2, padding=1)),
    "conv2d k3 same 32->64 14x14 b64": ("conv2d", (64, 32, 14, 14), (64, 32, 3, 3),
                                        dict(padding=1)),
    "max_pool2d k2 32x28x28 b64": ("max_pool2d", (64, 32, 28, 28), None, dict(kernel_size=2)),
    # ResNet-18 (torchvision's) at 64x64 inputs, batch 16: stem, max pool, layer1, layer3
    "resnet18 stem k7s2p3 3->64 64x64 b16": ("conv2d", (16, 3, 64, 64), (64, 3, 7, 7),
                                             dict(stride=2, padding=3)),
    "resnet18 max_pool2d k3s2p1 64x32x32 b16": ("max_pool2d", (16, 64, 32, 32), None,
                                                dict(kernel_size=3, stride=2, padding=1)),
    "resnet18 k3 64->64 16x16 b16": ("conv2d", (16, 64, 16, 16), (64, 64, 3, 3),
                                     dict(padding=1)),
    "resnet18 k3 256->256 4x4 b16": ("conv2d", (16, 256, 4, 4), (256, 256, 3, 3),
                                     dict(padding=1)),
    # ResNet-18 at 32x32 inputs: the stride-2 entry of layer2, its 1x1 shortcut, layer4
    "resnet18 k3s2 64->128 8x8 b16": ("conv2d", (16, 64, 8, 8), (128, 64, 3, 3),
                                      dict(stride=2, padding=1)),
    "resnet18 k1s2 64->128 8x8 b16": ("conv2d", (16, 64, 8, 8), (128, 64, 1, 1),
                                      dict(stride=2)),
    "resnet18 k3 512->512 1x1 b16": ("conv2d", (16, 512, 1, 1), (512, 512, 3, 3),
                                     dict(padding=1)),
    # average pooling: a 2x2 pool (LeNet-style CNNs) and ResNet's global average pool
    "avg_pool2d k2 32x28x28 b64": ("avg_pool2d", (64, 32, 28, 28), None, dict(kernel_size=2)),
    "resnet18 adaptive_avg_pool2d 512x2x2 b16": ("adaptive_avg_pool2d", (16, 512, 2, 2), None,
                                                 dict(output_size=1)),
    "cifar-resnet adaptive_avg_pool2d 64x8x8 b64": ("adaptive_avg_pool2d", (64, 64, 8, 8), None,
                                                    dict(output_size=1)),
    # CIFAR ResNet-20, batch 64: its three stages
    "cifar-resnet k3 16->16 32x32 b64": ("conv2d", (64, 16, 32, 32), (16, 16, 3, 3),
                                         dict(padding=1)),
    "cifar-resnet k3 32->32 16x16 b64": ("conv2d", (64, 32, 16, 16), (32, 32, 3, 3),
                                         dict(padding=1)),
    "cifar-resnet k3 64->64 8x8 b64": ("conv2d", (64, 64, 8, 8), (64, 64, 3, 3),
                                       dict(padding=1)),
}


def make_runner(lib, fn_name, x_shape, w_shape, kwargs, backward):
    """A closure running one call of the case in `lib` ('minifm' or 'torch')."""
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = None if w_shape is None else rng.standard_normal(w_shape, dtype=np.float32) * 0.05
    if lib == "torch":
        import torch
        fn = getattr(torch.nn.functional, fn_name)
        tensor = lambda a: torch.tensor(a, requires_grad=backward)  # noqa: E731
        no_grad = torch.no_grad
    else:
        import minifm
        import minifm.nn.functional  # noqa: F401  (minifm does not import nn by itself)
        fn = getattr(minifm.nn.functional, fn_name)
        tensor = lambda a: minifm.tensor(a, requires_grad=backward)  # noqa: E731
        no_grad = minifm.no_grad
    args = [tensor(x)] + ([] if w is None else [tensor(w)])
    grad = None

    def run():
        nonlocal grad
        if not backward:
            with no_grad():
                return fn(*args, **kwargs)
        for a in args:
            a.grad = None
        y = fn(*args, **kwargs)
        if grad is None:
            grad = y.detach()  # any fixed tensor of y's shape
        y.backward(grad)
    return run


SETTLE_S = 0.01


def time_case(case, backward, warmup, repeats, threads):
    fn_name, x_shape, w_shape, kwargs = CASES[case]
    runners = {lib: make_runner(lib, fn_name, x_shape, w_shape, kwargs, backward)
               for lib in ("minifm", "torch")}
    times = {lib: [] for lib in runners}
    settle = SETTLE_S if threads > 1 else 0.0
    for i in range(warmup + repeats):
        for lib, run in runners.items():
            if settle:  # as common.time_interleaved: a pause, then one untimed call
                time.sleep(settle)
                run()
            start = time.perf_counter()
            run()
            if i >= warmup:
                times[lib].append(time.perf_counter() - start)
    return {lib: statistics.median(t) for lib, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up")
    parser.add_argument("--cases", default=None,
                        help="comma-separated substrings: run only the cases naming one")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup = 3, 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)

    rows = []
    cases = [c for c in CASES if args.cases is None
             or any(part in c for part in args.cases.split(","))]
    for case in cases:
        for backward in (False, True):
            t = time_case(case, backward, args.warmup, args.repeats, args.threads)
            rows.append(dict(case=case, pass_="fwd+bwd" if backward else "fwd",
                             minifm_ms=t["minifm"] * 1e3, torch_ms=t["torch"] * 1e3,
                             ratio=t["minifm"] / t["torch"]))
            r = rows[-1]
            print(f"{case:42s} {r['pass_']:8s} minifm {r['minifm_ms']:8.2f} ms  torch "
                  f"{r['torch_ms']:8.2f} ms  ratio {r['ratio']:5.2f}", file=sys.stderr)

    print("| case | pass | minifm (ms) | PyTorch (ms) | minifm / PyTorch |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['case']} | {r['pass_']} | {r['minifm_ms']:.2f} | {r['torch_ms']:.2f} | "
              f"{r['ratio']:.2f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = dict(threads=args.threads, repeats=args.repeats, warmup=args.warmup,
                machine=machine_info())
    results = [{("pass" if k == "pass_" else k): v for k, v in r.items()} for r in rows]
    if args.cases is None:  # a partial run leaves the results file alone
        out = results_file(args.threads)
        out.write_text(json.dumps(dict(meta=meta, results=results), indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
