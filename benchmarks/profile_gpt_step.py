"""Where one GPT training step spends its time: minifm.profiler on nanoGPT's small CPU config.

The step is bench_train_gpt.py's (forward with targets, backward, AdamW step, zero_grad),
its three phases marked with record_function, profiled after two warm-up steps (the first
loads kernels and allocates the optimizer state). Prints the table of ops by self time and
writes it to benchmarks/results/profile_gpt_step.txt, with a chrome trace beside it
(profile_gpt_step.json: open it in https://ui.perfetto.dev or chrome://tracing). It also
times unprofiled steps against profiled ones: the profiler's cost while it records.

`--framework torch` profiles PyTorch's step (torch.profiler, the same table) into
profile_gpt_step_torch.txt, to set the two side by side op by op (minifm's LinearFunction
and its backward against PyTorch's addmm and mm, say); no trace is kept for it (0.85 MB).

Usage: python benchmarks/profile_gpt_step.py [--framework minifm|torch] [--threads N]
                                             [--rows 15]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_train_gpt import CONFIGS, build_minifm, build_torch
from common import limit_threads

RESULTS = Path(__file__).resolve().parent / "results"


def step(model, optimizer, x, y, record_function):
    with record_function("forward"):
        _, loss = model(x, y)
    with record_function("backward"):
        loss.backward()
    with record_function("optimizer.step"):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def median_ms(run, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("minifm", "torch"), default="minifm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    limit_threads(args.framework, args.threads)
    if args.framework == "minifm":
        from minifm.profiler import profile, record_function
        build, name = build_minifm, "profile_gpt_step"
    else:
        from torch.profiler import profile, record_function
        build, name = build_torch, "profile_gpt_step_torch"
    config = CONFIGS["small"]
    model, optimizer, x, y = build(config["model"], config["batch_size"])

    def run():
        step(model, optimizer, x, y, record_function)

    for _ in range(2):
        run()
    with profile() as prof:
        run()
    events = prof.key_averages()
    table = events.table(sort_by="self_cpu_time_total", row_limit=args.rows)

    def profiled():
        with profile():
            run()

    plain, recorded = median_ms(run), median_ms(profiled)
    header = (f"One GPT training step of {args.framework} (nanoGPT's small CPU config: "
              f"{config['model']}, batch {config['batch_size']}), {args.threads} thread(s), "
              f"{sum(e.count for e in events)} events.\n"
              f"Step time: {plain:.1f} ms unprofiled, {recorded:.1f} ms profiled "
              f"(median of 5).\n\n")
    print(header + table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.txt").write_text(header + table)
    if args.framework == "minifm":
        prof.export_chrome_trace(str(RESULTS / f"{name}.json"))


if __name__ == "__main__":
    main()
