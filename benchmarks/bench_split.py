"""When does sharing a CPU kernel's work between two threads pay? Serial against split, per
kernel and size, to set the work weights of kernels/cpu_tasks.py.

A kernel that splits its rows between the calling thread and a helper pays a hand-off: the
launch of its parallel twin under Numba's OpenMP layer (microseconds while OpenMP's workers
spin; more once they sleep, `python benchmarks/bench_handoff.py`). A memory-bound kernel
(ReLU, SGD) has to be larger before half its time is worth that than a kernel with more
arithmetic per element (GELU, softmax). Each row here times one kernel's forward and
backward through minifm's public function, at two Numba threads, with cpu_tasks forced to
run every call serially and then forced to split every call, in alternating rounds.
PyTorch's forward and backward at two threads is printed beside for scale, timed after all
of minifm's rows: its OpenMP threads spin for a while after each call, and interleaved they
took the cores from whichever minifm call came next (the first version of this script did
so, and its split rows came out 1.0-1.4x where these come out 0.7-0.8x).

    python benchmarks/bench_split.py [--repeats 7] [--kernels relu,gelu] [--out ...]
"""
from __future__ import annotations

import argparse
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
import minifm.kernels.cpu_tasks as cpu_tasks  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from minifm.quantization.int8_matmul import int8_matmul  # noqa: E402
from benchmarks.common import machine_info, median, time_interleaved, write_json  # noqa: E402

SIZES = tuple(1 << p for p in range(13, 23))  # elements of the kernel's input: 8 K .. 4 M
# The int8 matmul (minifm.quantization, forward only, no PyTorch twin) does K = 128
# multiply-adds an output: its inputs (rows, 128) against (512, 128) weights, 4 .. 512 rows.
INT8_SIZES = tuple(1 << p for p in range(9, 17))
KERNELS = ("relu", "batch_norm", "max_pool", "softmax", "layer_norm", "gelu", "int8_matmul",
           "sgd")
NEVER, ALWAYS = 1 << 62, 0  # cpu_tasks.SERIAL_BELOW forcing serial / split calls


def _shape(kernel, elements):
    """An input of `elements` elements shaped as the kernel meets it in the models."""
    if kernel in ("batch_norm", "max_pool"):  # (64, 32, side, side): 8x8 .. 45x45
        side = round(np.sqrt(elements / 2048))
        return (64, 32, side, side)
    if kernel in ("softmax", "layer_norm", "int8_matmul"):
        return (elements // 128, 128)
    return (elements,)


def _int8_case(shape, rng):
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = rng.integers(-127, 128, (512, shape[1]), dtype=np.int8)
    return lambda: int8_matmul(a, 3, b)


def _sgd_case(lib, shape, rng):
    """One SGD step (momentum 0.9, weight decay 5e-4) of a parameter of `shape`."""
    mod, optim = (minifm, minifm.optim) if lib == "minifm" else (torch, torch.optim)
    p = mod.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    p.grad = mod.tensor(rng.standard_normal(shape).astype(np.float32))
    return optim.SGD([p], lr=0.01, momentum=0.9, weight_decay=5e-4).step


def _case(kernel, lib, shape, rng):
    """A zero-argument forward + backward of `kernel` in `lib` ("minifm" or "torch") (an
    optimizer step for SGD); None for the int8 matmul in PyTorch."""
    if kernel == "int8_matmul":
        return _int8_case(shape, rng) if lib == "minifm" else None
    if kernel == "sgd":
        return _sgd_case(lib, shape, rng)
    mod, fn = (minifm, F) if lib == "minifm" else (torch, TF)
    x_np = rng.standard_normal(shape).astype(np.float32)
    g_np = rng.standard_normal(shape).astype(np.float32)
    x = (minifm.tensor(x_np, requires_grad=True) if lib == "minifm"
         else torch.from_numpy(x_np).requires_grad_())
    g = minifm.tensor(g_np) if lib == "minifm" else torch.from_numpy(g_np)
    channels = shape[-1] if kernel == "layer_norm" else shape[1] if len(shape) > 1 else 1
    ones, zeros = mod.ones(channels), None  # the norms' weight and bias
    forward = {
        "relu": lambda: fn.relu(x),
        "gelu": lambda: fn.gelu(x),
        "softmax": lambda: fn.softmax(x, dim=-1),
        "layer_norm": lambda: fn.layer_norm(x, (shape[-1],), ones, zeros),
        "batch_norm": lambda: fn.batch_norm(x, None, None, ones, zeros, training=True),
        "max_pool": lambda: fn.max_pool2d(x, 3, 2, 1),
    }[kernel]
    probe = forward()
    g = g if tuple(probe.shape) == shape else (
        minifm.tensor(rng.standard_normal(tuple(probe.shape)).astype(np.float32))
        if lib == "minifm" else torch.randn(tuple(probe.shape)))

    def step():
        x.grad = None
        forward().backward(g)
    return step


def measure(kernels, repeats):
    rng = np.random.default_rng(0)
    if numba.config.NUMBA_NUM_THREADS < 2:
        sys.exit("bench_split.py: needs two Numba threads (NUMBA_NUM_THREADS is "
                 f"{numba.config.NUMBA_NUM_THREADS})")
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    rows = []
    for kernel in kernels:
        for elements in INT8_SIZES if kernel == "int8_matmul" else SIZES:
            shape = _shape(kernel, elements)
            mine = _case(kernel, "minifm", shape, rng)

            def forced(serial_below):
                def run():
                    cpu_tasks.SERIAL_BELOW = serial_below
                    mine()
                return run
            default = cpu_tasks.SERIAL_BELOW
            try:
                samples = time_interleaved({"serial": forced(NEVER), "split": forced(ALWAYS)},
                                           repeats=repeats, warmup=2)
            finally:
                cpu_tasks.SERIAL_BELOW = default
            row = {"kernel": kernel, "shape": list(shape), "elements": int(np.prod(shape)),
                   **{f"{k}_ms": median(v) * 1e3 for k, v in samples.items()}}
            row["split_over_serial"] = row["split_ms"] / row["serial_ms"]
            rows.append(row)
    for row in rows:
        theirs = _case(row["kernel"], "torch", tuple(row["shape"]), rng)
        row["torch_ms"] = theirs and median(time_interleaved(
            {"torch": theirs}, repeats=repeats, warmup=2)["torch"]) * 1e3
        torch_ms = "-" if theirs is None else f"{row['torch_ms']:8.3f} ms"
        print(f"{row['kernel']:11s} {str(tuple(row['shape'])):20s} serial {row['serial_ms']:8.3f}"
              f" ms  split {row['split_ms']:8.3f} ms  split/serial "
              f"{row['split_over_serial']:5.2f}  (PyTorch, 2 threads: {torch_ms})")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--out", default="benchmarks/results/split.json")
    args = parser.parse_args()
    kernels = [k for k in args.kernels.split(",") if k]
    unknown = sorted(set(kernels) - set(KERNELS))
    if unknown:
        parser.error(f"unknown kernels: {', '.join(unknown)}")
    rows = measure(kernels, args.repeats)
    path = write_json(args.out, {"machine": machine_info(threads=2), "repeats": args.repeats,
                                 "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
