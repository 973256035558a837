"""GPT training throughput with 1 and 2 MPI ranks (one thread each), and the time each
step spends waiting on communication, with DDP's overlapped buckets and with one
all-reduce after backward (no overlap).

    python benchmarks/bench_distributed.py [--steps 40]

Every run trains nanoGPT's small CPU configuration on a global batch of 12 windows of 64
tokens (each of 2 ranks takes 6). Writes benchmarks/results/distributed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import minifm
import minifm.distributed as dist
from minifm import runtime
from minifm.models.gpt import GPT, GPTConfig
from minifm.nn.parallel import DistributedDataParallel, all_reduce_gradients

BATCH, BLOCK = 12, 64
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def worker(mode, steps):
    """One rank's training loop; rank 0 prints its timings as JSON."""
    runtime.limit_threads(1)
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    minifm.manual_seed(0)
    model = GPT(GPTConfig(block_size=BLOCK, vocab_size=65, n_layer=4, n_head=4, n_embd=128,
                          bias=False))
    ddp = DistributedDataParallel(model) if mode == "overlap" else model
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    tokens = np.random.default_rng(0).integers(0, 65, (BATCH, BLOCK + 1))
    mine = tokens[rank * BATCH // world:(rank + 1) * BATCH // world]
    x, y = minifm.tensor(mine[:, :-1]), minifm.tensor(mine[:, 1:])
    step_times, waits = [], []
    for _ in range(steps):
        waited_before = ddp.reducer.comm_wait_seconds if mode == "overlap" else 0.0
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ddp(x, y)[1].backward()
        backward_end = time.perf_counter()
        if mode == "after-backward":
            all_reduce_gradients(model.parameters())
        waits.append(ddp.reducer.comm_wait_seconds - waited_before if mode == "overlap"
                     else time.perf_counter() - backward_end)
        opt.step()
        step_times.append(time.perf_counter() - start)
    skip = steps // 4  # warm-up
    if rank == 0:
        step = statistics.median(step_times[skip:])
        print(json.dumps({"mode": mode, "ranks": world, "threads_per_rank": 1,
                          "step_ms": round(step * 1e3, 2),
                          "tokens_per_s": round(BATCH * BLOCK / step),
                          "comm_wait_ms": round(statistics.median(waits[skip:]) * 1e3, 2)}))


def run(nproc, mode, steps):
    command = dist.mpiexec_command(nproc, [])[:-3] + [sys.executable, __file__, "--worker",
                                                      mode, "--steps", str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--worker", choices=("single", "overlap", "after-backward"))
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)
    rows = [run(1, "single", args.steps), run(2, "overlap", args.steps),
            run(2, "after-backward", args.steps)]
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "distributed.json"), "w") as f:
        json.dump({"machine": f"{os.cpu_count()} cores", "global_batch_tokens": BATCH * BLOCK,
                   "runs": rows}, f, indent=2)
    lines = ["| ranks | gradient averaging | step (ms) | tokens/s | waiting on communication (ms/step) |",
             "|---|---|---|---|---|"]
    names = {"single": "none (one process)", "overlap": "DDP buckets during backward",
             "after-backward": "one all-reduce after backward"}
    lines += [f"| {r['ranks']} | {names[r['mode']]} | {r['step_ms']} | {r['tokens_per_s']:,} | "
              f"{r['comm_wait_ms']} |" for r in rows]
    with open(os.path.join(RESULTS, "distributed.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
