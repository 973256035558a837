"""Matrix products at two threads: minifm's (kernels/matmul_cpu.py, rows cut among Numba's
OpenMP threads, OpenBLAS on one thread in each) against the same product on one thread and
against PyTorch's, by size, to set matmul_cpu.SPLIT_FROM.

Shapes are those of a GPT's linear layers, forward and backward: (rows, k) @ (k, n) with
rows = batch * tokens. Each row times `minifm.matmul` forced whole (SPLIT_FROM huge) and
forced cut (SPLIT_FROM 0), in alternating rounds, then PyTorch's torch.matmul at two threads
(timed after minifm's rows: PyTorch's OpenMP workers spin after each call and would take a
core from whichever minifm call came next).

    python benchmarks/bench_matmul.py [--repeats 7] [--out benchmarks/results/matmul.json]
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
from minifm.kernels import matmul_cpu  # noqa: E402
from benchmarks.common import machine_info, median, time_interleaved, write_json  # noqa: E402

# (rows, k, n): multiply-adds from 16 K to 100 M
SHAPES = ((16, 32, 32), (32, 64, 64), (64, 64, 128), (64, 128, 128), (128, 128, 128),
          (256, 128, 128), (768, 128, 128), (768, 128, 512), (768, 512, 128),
          (3072, 128, 512), (768, 768, 768))
NEVER, ALWAYS = 1 << 62, 0


def _calls(shape):
    """Calls per timed sample: about 20 M multiply-adds' worth, so small products are timed
    over many calls."""
    return max(1, 20_000_000 // (shape[0] * shape[1] * shape[2]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/matmul.json")
    args = parser.parse_args()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    rows, operands = [], []
    for shape in SHAPES:
        m, k, n = shape
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        operands.append((a, b))
        ta, tb = minifm.tensor(a), minifm.tensor(b)
        calls = _calls(shape)

        def forced(split_from):
            def run():
                matmul_cpu.SPLIT_FROM = split_from
                for _ in range(calls):
                    minifm.matmul(ta, tb)
            return run

        samples = time_interleaved({"whole": forced(NEVER), "cut": forced(ALWAYS)},
                                   repeats=args.repeats)
        times = {name: median(values) / calls * 1e3 for name, values in samples.items()}
        rows.append({"shape": shape, "multiply_adds": m * k * n, "whole_ms": times["whole"],
                     "cut_ms": times["cut"]})
    for row, (a, b) in zip(rows, operands):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        calls = _calls(row["shape"])

        def run():
            for _ in range(calls):
                torch.matmul(ta, tb)

        row["torch_ms"] = median(time_interleaved({"torch": run}, args.repeats)["torch"]) \
            / calls * 1e3
        print(f"{str(row['shape']):18} {row['multiply_adds']:>11,} multiply-adds  "
              f"whole {row['whole_ms']:8.3f} ms  cut {row['cut_ms']:8.3f} ms  "
              f"cut/whole {row['cut_ms'] / row['whole_ms']:5.2f}  "
              f"(PyTorch, 2 threads: {row['torch_ms']:8.3f} ms)")
    write_json(args.out, {"machine": machine_info(threads=2), "rows": rows})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
