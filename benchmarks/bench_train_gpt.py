"""One GPT training step, minifm against PyTorch, on the CPU (or a GPU with --device cuda).

A step is what nanoGPT's train.py does per iteration: forward with targets, backward,
AdamW step, zero_grad(set_to_none=True). Two configurations: nanoGPT's small CPU config
(shakespeare_char on a laptop: 4 layers, 4 heads, 128 wide, 64 tokens, batch 12) and a
larger one (6 layers, 6 heads, 384 wide, 256 tokens, batch 8). Vocabulary 65, dropout 0.

Method
- Each framework runs in its own subprocess, with the same thread count set before NumPy
  / PyTorch load (OMP/OpenBLAS/MKL/Numba variables, threadpoolctl, torch.set_num_threads):
  neither sees the other's memory or thread pools. One thread by default: on a shared
  2-core machine a second thread mostly measures the neighbours' load.
- Time: each of `rounds` rounds runs minifm's worker, then PyTorch's; a worker times
  `repeats` steps after `warmup` steps (the first step loads kernels and allocates the
  optimizer state). The reported time is the median over all timed steps of all rounds,
  so a burst of load from other processes hits both frameworks alike. The ratio is
  minifm / PyTorch: below 1 is faster.
- Memory: RSS (resident set size, from /proc/self/status), which counts every allocator,
  NumPy's and PyTorch's alike (tracemalloc would see only NumPy's). `base` is the RSS
  once the framework and its kernels are loaded (a step of a tiny GPT runs first: minifm
  loads Numba lazily, which alone is ~130 MB); `peak` is the high-water mark (VmHWM) over
  the real model's build, warm-up and timed steps, and `peak - base` what the model and
  its training take: parameters, activations, gradients, optimizer state, and whatever
  the allocator keeps after freeing (minifm asks glibc to keep freed memory, see
  minifm.backend).
- On a GPU (--device cuda) both models are built on the CPU from the same seed and moved;
  each timed step ends with a synchronize (torch.cuda's, minifm.cuda's), so the time is
  the GPU's work plus the host's. GPU memory is the peak of bytes allocated to live
  arrays (max_memory_allocated, after reset_peak_memory_stats once the kernels are
  loaded), next to the host's RSS.

Usage:
  python benchmarks/bench_train_gpt.py [--quick] [--threads N] [--rounds R] [--configs small,medium]
  python benchmarks/bench_train_gpt.py --device cuda   # writes results/gpu/train_gpt.json
  python benchmarks/bench_train_gpt.py --profile small   # cProfile of minifm's steps

Writes benchmarks/results/train_gpt.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import (add_harness_arguments, alternate_rounds, harness_counts, limit_threads,
                    machine_info, print_worker_result, spawn_worker)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "train_gpt.json"
GPU_RESULTS = ROOT / "benchmarks" / "results" / "gpu" / "train_gpt.json"

CONFIGS = {
    "small": dict(model=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65,
                             dropout=0.0), batch_size=12),
    "medium": dict(model=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65,
                              dropout=0.0), batch_size=8),
}


# ----------------------------------------------------------------------------- one framework
def build_minifm(config, batch_size, seed=0, device="cpu"):
    import minifm
    from minifm.models import GPT, GPTConfig

    minifm.manual_seed(seed)
    model = GPT(GPTConfig(**config))
    if device != "cpu":
        model.to(device)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=6e-4,
                                           betas=(0.9, 0.95))
    gen = minifm.Generator().manual_seed(seed)
    shape = (batch_size, config["block_size"])
    x = minifm.randint(config["vocab_size"], size=shape, generator=gen)
    y = minifm.randint(config["vocab_size"], size=shape, generator=gen)
    if device != "cpu":
        x, y = x.to(device), y.to(device)
    return model, optimizer, x, y


def build_torch(config, batch_size, seed=0, device="cpu"):
    import torch
    import torch_models  # benchmarks/torch_models.py, beside this script

    torch.manual_seed(seed)
    model = torch_models.GPT(torch_models.GPTConfig(**config))
    if device != "cpu":
        model.to(device)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=6e-4,
                                           betas=(0.9, 0.95))
    shape = (batch_size, config["block_size"])
    x = torch.randint(config["vocab_size"], shape)
    y = torch.randint(config["vocab_size"], shape)
    if device != "cpu":
        x, y = x.to(device), y.to(device)
    return model, optimizer, x, y


def train_step(model, optimizer, x, y):
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def run_worker(framework, name, threads, warmup, repeats, device="cpu"):
    """Time `repeats` steps of one framework on one config; print the result as JSON."""
    limit_threads(framework, threads)
    build = build_minifm if framework == "minifm" else build_torch
    tiny = dict(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=65, dropout=0.0)
    train_step(*build(tiny, 1, device=device))  # load the kernels before measuring memory
    spec = CONFIGS[name]

    def make_step():
        model, optimizer, x, y = build(spec["model"], spec["batch_size"], device=device)
        return lambda: train_step(model, optimizer, x, y)

    print_worker_result(framework, name, threads, make_step, warmup, repeats, device)


# ----------------------------------------------------------------------------- profile
def profile_minifm(name, threads, steps=5):
    """cProfile minifm's training steps (after one warm-up step): where the time goes."""
    import cProfile
    import pstats

    limit_threads("minifm", threads)
    spec = CONFIGS[name]
    model, optimizer, x, y = build_minifm(spec["model"], spec["batch_size"])
    train_step(model, optimizer, x, y)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        train_step(model, optimizer, x, y)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    print(f"minifm, {name} config, {steps} steps, sorted by own time:")
    stats.print_stats(25)


# ----------------------------------------------------------------------------- report
def gpu_markdown(rows):
    lines = ["| config | minifm GPU peak allocated (MB) | PyTorch GPU peak allocated (MB) |",
             "|---|---:|---:|"]
    lines += [f"| {r['config']} | {r['minifm']['gpu_peak_mb']:.0f} "
              f"| {r['torch']['gpu_peak_mb']:.0f} |" for r in rows]
    return "\n".join(lines)


def markdown(rows):
    lines = ["| config | minifm step (ms) | PyTorch step (ms) | ratio (median) | ratio (min) "
             "| minifm peak RSS (MB) | PyTorch peak RSS (MB) | minifm peak - base (MB) "
             "| PyTorch peak - base (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, t = r["minifm"], r["torch"]
        lines.append(f"| {r['config']} | {1e3 * m['median_s']:.1f} | {1e3 * t['median_s']:.1f} "
                     f"| {r['ratio']:.2f}x | {m['min_s'] / t['min_s']:.2f}x "
                     f"| {m['peak_rss_mb']:.0f} | {t['peak_rss_mb']:.0f} "
                     f"| {m['model_and_training_mb']:.0f} | {t['model_and_training_mb']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for both frameworks")
    parser.add_argument("--configs", default="small,medium")
    parser.add_argument("--profile", metavar="CONFIG", help="cProfile minifm on one config")
    add_harness_arguments(parser, RESULTS, GPU_RESULTS)
    args = parser.parse_args()
    warmup, repeats, rounds = harness_counts(args, warmup=3)

    if args.worker:
        return run_worker(args.worker, args.configs, args.threads, warmup, repeats,
                          args.device)
    if args.profile:
        return profile_minifm(args.profile, args.threads)

    rows = []
    for name in args.configs.split(","):
        result = alternate_rounds(lambda fw: spawn_worker(__file__, fw, "--configs", name,
                                                          args.threads, warmup, repeats,
                                                          args.device), rounds)
        rows.append(dict(config=name, **CONFIGS[name], **result,
                         ratio=result["minifm"]["median_s"] / result["torch"]["median_s"]))
        print(f"{name}: minifm {1e3 * result['minifm']['median_s']:.1f} ms, torch "
              f"{1e3 * result['torch']['median_s']:.1f} ms", file=sys.stderr)
    import torch
    report = {
        "benchmark": "GPT training step (forward, backward, AdamW step, zero_grad)",
        "device": args.device,
        "threads": args.threads, "rounds": rounds, "warmup": warmup, "repeats": repeats,
        "machine": machine_info(),  # BLAS kernels as the workers, with the same environment
        "rows": rows,
    }
    if args.device == "cuda":
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    out = Path(args.output or (RESULTS if args.device == "cpu" else GPU_RESULTS))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(rows))
    if args.device == "cuda":
        print("\n" + gpu_markdown(rows))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
