"""What it costs to share one kernel call between two threads, by mechanism.

minifm's CPU kernels share a call by a Numba `prange` over one range per thread, the
kernel's parallel twin (kernels/cpu_tasks.py), under the threading layer minifm picks
(OpenMP, "omp", kernels/__init__.py), whose workers spin for a while after a parallel
region before they sleep (GOMP_SPINCOUNT iterations). Before, they ran a share on the
calling thread and a share on a sleeping Python helper thread, which must be woken first.
This times one kernel (ReLU's range function, a copy-like pass) over 64 K, 256 K and 1 M
float32 elements, at two threads, three ways: serially; split on a Python helper thread
(the design before); and by ReLU's parallel twin over two tasks, under the workqueue layer
and under OpenMP with several spin counts (each in its own process: the layer is chosen
once per process). Each mechanism is timed in a block of its own after a pause; within a
block calls are back to back, so a spinning worker is still spinning at the next call: the
best case for OpenMP, where a training step runs Python between kernel calls.

    python benchmarks/bench_handoff.py [--repeats 9] [--out benchmarks/results/handoff.json]

It measures minifm against itself (the mechanisms), not against PyTorch: PyTorch shares
its calls through OpenMP, and its ReLU at these sizes is in bench_split.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from benchmarks.common import machine_info, write_json  # noqa: E402

SIZES = (1 << 16, 1 << 18, 1 << 20)
# (label, environment): the threading layer and OpenMP's spin count for each process
CONFIGS = (
    ("workqueue", {"NUMBA_THREADING_LAYER": "workqueue"}),
    ("omp, GOMP_SPINCOUNT=0", {"NUMBA_THREADING_LAYER": "omp", "GOMP_SPINCOUNT": "0"}),
    ("omp, GOMP_SPINCOUNT=10000", {"NUMBA_THREADING_LAYER": "omp", "GOMP_SPINCOUNT": "10000"}),
    ("omp, default spin", {"NUMBA_THREADING_LAYER": "omp"}),
)


def worker(repeats):
    """Time the mechanisms in this process (its threading layer set by the environment);
    print one JSON line per size."""
    import time
    import timeit

    from concurrent.futures import ThreadPoolExecutor

    import numba
    import numpy as np

    from minifm.kernels import relu_cpu

    numba.set_num_threads(2)
    range_fn = relu_cpu._forward_range
    helper = ThreadPoolExecutor(1)  # minifm's design before: a Python thread per share

    def python_threads(x, y, n):
        other = helper.submit(range_fn, x, y, n // 2, n)
        range_fn(x, y, 0, n // 2)
        other.result()

    for n in SIZES:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        calls = {"serial": lambda: range_fn(x, y, 0, n),
                 "python threads": lambda: python_threads(x, y, n),
                 "prange": lambda: relu_cpu._forward_shared(2, n, x, y)}
        medians = {}
        for name, fn in calls.items():  # one block each, after a pause: OpenMP's workers,
            time.sleep(0.05)             # spinning after a prange, would slow the others
            fn()
            medians[name] = float(np.median(
                [timeit.timeit(fn, number=20) / 20 * 1e6 for _ in range(repeats)]))
        print(json.dumps({"elements": n, "layer": numba.threading_layer(),
                          **{f"{k}_us": v for k, v in medians.items()}}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="benchmarks/results/handoff.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.repeats)
    rows = []
    print(f"{'mechanism':28s} {'elements':>9s} {'serial':>9s} {'python threads':>15s} "
          f"{'prange':>9s}   (us a call, 2 threads)")
    for label, env in CONFIGS:
        child = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
        child.update(env, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1",
                     PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        out = subprocess.run([sys.executable, __file__, "--worker", "--repeats",
                              str(args.repeats)], env=child, capture_output=True, text=True)
        if out.returncode:
            print(f"{label}: the worker failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        for line in out.stdout.splitlines():
            row = {"config": label, **json.loads(line)}
            rows.append(row)
            print(f"{label:28s} {row['elements']:9d} {row['serial_us']:9.1f} "
                  f"{row['python threads_us']:15.1f} {row['prange_us']:9.1f}")
    if not rows:
        sys.exit("bench_handoff.py: no worker ran; nothing written")
    path = write_json(args.out, {"machine": machine_info(threads=2), "repeats": args.repeats,
                                 "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
