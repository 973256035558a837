"""Where a two-thread training step waits: every call that shares work between minifm's
threads (kernels/cpu_tasks.run_parts: the convolution's chunk shares and row-cut products,
batch norm, ReLU, pooling, the SGD step), its parts timed.

For each kind of call, per training step: the call's wall time, the calling thread's own
part, how long after the call began the helper thread started its part (its wake-up, then
the GIL), and the helper's part. Wall time above the larger of the two parts (the helper's
late start, then the caller's wait for its result) is what the hand-offs cost. The model
and step are bench_train_vision's.

Usage:
  python benchmarks/profile_handoffs.py [--model resnet20] [--threads 2] [--steps 3]
"""
from __future__ import annotations

import argparse
import collections
import time

import bench_train_vision
from common import limit_threads


def timed_run_parts(run_parts, log):
    """run_parts, recording (wall, caller's part, helper's start delay, helper's part) of
    each call under the name of the function it runs."""
    def wrapper(fn, parts):
        began = time.perf_counter()
        spans = {}

        def part(i, *args):
            start = time.perf_counter()
            result = fn(*args)
            spans[i] = (start - began, time.perf_counter() - start)
            return result

        results = run_parts(part, [(i, *args) for i, args in enumerate(parts)])
        wall = time.perf_counter() - began
        helper = spans.get(1, (0.0, 0.0))
        log[getattr(fn, "__qualname__", repr(fn))].append((wall, spans[0][1], *helper))
        return results
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20", choices=list(bench_train_vision.MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    limit_threads("minifm", args.threads)
    from minifm.kernels import conv_cpu, cpu_tasks

    log = collections.defaultdict(list)
    wrapped = timed_run_parts(cpu_tasks.run_parts, log)
    cpu_tasks.run_parts = conv_cpu.run_parts = wrapped
    bench_train_vision.warm_up_kernels("minifm")
    step = bench_train_vision.build("minifm", args.model)
    for _ in range(3):
        step()
    log.clear()
    began = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - began) / args.steps
    print(f"minifm {args.model}, {args.threads} threads: {1e3 * per_step:.1f} ms a step "
          f"(timed parts included); ms per step:")
    print("| call | calls | wall | caller's part | helper starts after | helper's part | "
          "wall - larger part |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    lost = 0.0
    for name, rows in sorted(log.items(), key=lambda item: -sum(r[0] for r in item[1])):
        wall, caller, delay, helper = (1e3 * sum(r[k] for r in rows) / args.steps
                                       for k in range(4))
        over = 1e3 * sum(r[0] - max(r[1], r[3]) for r in rows) / args.steps
        lost += over
        print(f"| {name} | {len(rows) // args.steps} | {wall:.2f} | {caller:.2f} | {delay:.2f} "
              f"| {helper:.2f} | {over:.2f} |")
    print(f"hand-offs: {lost:.1f} ms of a {1e3 * per_step:.1f} ms step")


if __name__ == "__main__":
    main()
