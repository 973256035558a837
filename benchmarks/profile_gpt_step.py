"""Where one GPT training step spends its time: minifm.profiler on nanoGPT's small CPU config.

The step is bench_train_gpt.py's (forward with targets, backward, AdamW step, zero_grad),
its three phases marked with record_function, profiled after two warm-up steps (the first
loads kernels and allocates the optimizer state). Prints the table of ops by self time and
writes it to benchmarks/results/profile_gpt_step.txt, with a chrome trace beside it
(profile_gpt_step.json: open it in https://ui.perfetto.dev or chrome://tracing). It also
times unprofiled steps against profiled ones: the profiler's cost while it records.

Usage: python benchmarks/profile_gpt_step.py [--threads N] [--rows 15]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_train_gpt import CONFIGS, build_minifm
from minifm.profiler import profile, record_function
from minifm.runtime import limit_threads

RESULTS = Path(__file__).resolve().parent / "results"


def step(model, optimizer, x, y):
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
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    threads = limit_threads(args.threads)
    config = CONFIGS["small"]
    model, optimizer, x, y = build_minifm(config["model"], config["batch_size"])
    for _ in range(2):
        step(model, optimizer, x, y)

    with profile() as prof:
        step(model, optimizer, x, y)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)

    def profiled():
        with profile():
            step(model, optimizer, x, y)

    plain, recorded = median_ms(lambda: step(model, optimizer, x, y)), median_ms(profiled)
    header = (f"One GPT training step (nanoGPT's small CPU config: {config['model']}, "
              f"batch {config['batch_size']}), {threads} thread(s), {len(prof.events)} events.\n"
              f"Step time: {plain:.1f} ms unprofiled, {recorded:.1f} ms profiled "
              f"(median of 5).\n\n")
    print(header + table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_gpt_step.txt").write_text(header + table)
    prof.export_chrome_trace(str(RESULTS / "profile_gpt_step.json"))


if __name__ == "__main__":
    main()
