"""Layer norm, softmax, log_softmax, GELU and batch norm: minifm's NumPy path vs its Numba
kernels vs PyTorch.

Each op is timed through minifm's public function with the backend forced to "reference"
(the NumPy code in minifm/ops) and to "numba" (minifm/kernels), and as torch's function,
at GPT-like shapes (batch, time, width), batch norm (training mode) at the (N, C, H, W)
shapes of ResNet-18 on 32x32 (batch 16), CIFAR ResNet-20 (batch 64) and the DCGAN of
the dcgan task (batch 64): forward under no_grad, and forward + backward
(output.backward(g) with a fixed random g: the op's own backward, on a dense gradient, and
nothing else; the inputs' gradients are cleared before each call, so none is accumulated). Sides take
turns within each repeat and each figure is the median over repeats of the mean time of a
loop; run with one and with two threads (Numba's and PyTorch's; NumPy's elementwise code
is single-threaded anyway). Ratios are what to read: the machine is shared and noisy.

    python benchmarks/bench_norm.py [--quick] [--repeats 7] [--ops softmax,gelu] [--threads 1,2]
                                    [--out benchmarks/results/norm.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
import minifm.kernels as kernels  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from benchmarks.common import (SETTLE_S, machine_info, median, time_interleaved,  # noqa: E402
                               write_json)

SHAPES = ((12, 64, 128), (8, 256, 384), (32, 128, 768))
BN_SHAPES = ((16, 64, 8, 8), (64, 16, 32, 32), (64, 64, 4, 4))
OPS = ("layer_norm", "softmax", "log_softmax", "gelu", "batch_norm")
KERNEL_OP = {"layer_norm": "layer_norm", "softmax": "softmax", "log_softmax": "softmax",
             "gelu": "gelu", "batch_norm": "batch_norm"}


def _minifm_call(op, x, w, b):
    if op == "batch_norm":
        return F.batch_norm(x, None, None, w, b, training=True)
    if op == "layer_norm":
        return F.layer_norm(x, x.shape[-1:], w, b)
    if op == "gelu":
        return F.gelu(x)
    return getattr(F, op)(x, dim=-1)


def _torch_call(op, x, w, b):
    if op == "batch_norm":
        return TF.batch_norm(x, None, None, w, b, training=True)
    if op == "layer_norm":
        return TF.layer_norm(x, x.shape[-1:], w, b)
    if op == "gelu":
        return TF.gelu(x)
    return getattr(TF, op)(x, dim=-1)


def _looped(fn, loops):
    def run():
        for _ in range(loops):
            fn()
    return run


def _clear_grads(*tensors):
    for t in tensors:
        t.grad = None


def _sides(op, shape, backward):
    """{side: zero-argument callable} for one op, shape and mode."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape, dtype=np.float32)
    g_np = rng.standard_normal(shape, dtype=np.float32)
    params = shape[1:2] if op == "batch_norm" else shape[-1:]
    w_np = rng.standard_normal(params, dtype=np.float32)
    b_np = rng.standard_normal(params, dtype=np.float32)
    mx, mw, mb = (minifm.tensor(a, requires_grad=backward) for a in (x_np, w_np, b_np))
    tx, tw, tb = (torch.tensor(a, requires_grad=backward) for a in (x_np, w_np, b_np))
    mg, tg = minifm.tensor(g_np), torch.tensor(g_np)

    def minifm_side(backend):
        def run():
            kernels.set_backend(KERNEL_OP[op], backend)
            if backward:
                _clear_grads(mx, mw, mb)
                _minifm_call(op, mx, mw, mb).backward(mg)
            else:
                with minifm.no_grad():
                    _minifm_call(op, mx, mw, mb)
        return run

    def torch_side():
        if backward:
            _clear_grads(tx, tw, tb)
            _torch_call(op, tx, tw, tb).backward(tg)
        else:
            with torch.no_grad():
                _torch_call(op, tx, tw, tb)

    return {"numpy": minifm_side("reference"), "numba": minifm_side("numba"), "torch": torch_side}


def _loops_for(fn, budget=0.02):
    fn()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        fn()
        n += 1
    return max(1, n)


def measure(repeats, ops=OPS, thread_counts=(1, 2)):
    rows = []
    for threads in thread_counts:
        kernels.set_num_threads(threads)  # picks minifm's threading layer first
        torch.set_num_threads(threads)
        for op in ops:
            for shape in BN_SHAPES if op == "batch_norm" else SHAPES:
                for backward in (False, True):
                    sides = _sides(op, shape, backward)
                    loops = {name: _loops_for(fn) for name, fn in sides.items()}
                    samples = time_interleaved(
                        {name: _looped(fn, loops[name]) for name, fn in sides.items()},
                        repeats=repeats, settle=SETTLE_S if threads > 1 else 0.0)
                    ms = {name: 1e3 * median(s) / loops[name] for name, s in samples.items()}
                    rows.append({"op": op, "shape": list(shape), "threads": threads,
                                 "mode": "forward+backward" if backward else "forward",
                                 **{f"{name}_ms": round(t, 4) for name, t in ms.items()}})
                    r = rows[-1]
                    print(f"{op:12s} {str(shape):15s} {r['mode']:17s} threads={threads}  "
                          f"numpy {ms['numpy']:8.3f} ms  numba {ms['numba']:8.3f} ms  "
                          f"torch {ms['torch']:8.3f} ms  numpy/numba {ms['numpy'] / ms['numba']:5.2f}"
                          f"  numba/torch {ms['numba'] / ms['torch']:5.2f}", flush=True)
    for op in set(KERNEL_OP.values()):
        kernels.set_backend(op, None)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of "
                        + ", ".join(OPS))
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "norm.json"))
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    rows = measure(repeats, args.ops.split(","), [int(t) for t in args.threads.split(",")])
    machine = machine_info(numba_threading_layer=numba.threading_layer())
    path = write_json(args.out, {"machine": machine, "dtype": "float32", "repeats": repeats,
                                 "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
