"""Vision training steps, minifm against PyTorch: ResNet-18, CIFAR ResNet-20 and DCGAN.

A step is forward, loss, backward, optimizer step, zero_grad(set_to_none=True), with the
settings of the tasks in minifm/train/tasks:

- resnet18: torchvision's ResNet-18 (minifm.models.resnet18, num_classes=10) on 32x32 RGB
  images, batch 16, cross-entropy, SGD (lr 0.1, momentum 0.9, weight decay 5e-4).
- resnet20: He et al.'s CIFAR ResNet-20 (minifm.models.resnet20) on 32x32 RGB, batch 64,
  the same loss and optimizer.
- dcgan: the dcgan task's default shapes (16x16 grey images, nz 32, ngf 32, ndf 32, batch
  64) and Adam (lr 2e-4, betas (0.5, 0.999)). One step is one discriminator update
  (BCE-with-logits on a real batch and on G(z).detach()) and one generator update (the
  discriminator's BCE on G(z) against "real"), as in PyTorch's DCGAN example.

The PyTorch twins are in benchmarks/torch_models.py (the same module trees).

Method (as bench_train_gpt.py; the harness is in common.py)
- Each framework and model runs in a fresh subprocess, with the thread count set before
  NumPy / PyTorch load (OMP/OpenBLAS/MKL/Numba variables, threadpoolctl,
  torch.set_num_threads), so neither sees the other's memory or thread pools.
- Time: each of `rounds` rounds runs minifm's worker, then PyTorch's; a worker times
  `repeats` steps after `warmup` steps. The figure is the median over all timed steps of
  all rounds, and the ratio is minifm / PyTorch (below 1 is faster).
- Memory: resident set size (RSS) from /proc/self/status, which counts every allocator
  (NumPy's, Numba's runtime, PyTorch's) alike; tracemalloc would see only NumPy's arrays
  and so cannot be compared with PyTorch. `base` is the RSS once the framework and its
  kernels are loaded (a step of a tiny network with the same layer types runs first: it
  compiles or loads minifm's Numba kernels); the high-water mark (VmHWM, reset at base
  through /proc/self/clear_refs) covers building the model, the warm-up and the timed
  steps. `peak - base` is what the model and its training step hold at their peak:
  parameters, gradients, optimizer state, activations, and what each allocator keeps
  after freeing (minifm asks glibc to keep freed blocks; PyTorch's CPU allocator is
  glibc's malloc too).
- --device cuda: models are built on the CPU from the same seed and moved; each timed step
  ends with a synchronize, and GPU memory is the peak of bytes allocated (after the
  warm-up network), beside the host's RSS.

Usage:
  python benchmarks/bench_train_vision.py [--quick] [--threads 1,2] [--rounds R]
                                          [--models resnet18,resnet20,dcgan]
  python benchmarks/bench_train_vision.py --device cuda   # writes results/gpu/train_vision.json
  python benchmarks/bench_train_vision.py --profile resnet20   # where minifm's step goes

Writes benchmarks/results/train_vision.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from common import (add_harness_arguments, alternate_rounds, harness_counts, limit_threads,
                    machine_info, print_worker_result, spawn_worker, write_json)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "train_vision.json"
GPU_RESULTS = ROOT / "benchmarks" / "results" / "gpu" / "train_vision.json"

MODELS = {
    "resnet18": dict(batch_size=16, image=(3, 32, 32)),
    "resnet20": dict(batch_size=64, image=(3, 32, 32)),
    "dcgan": dict(batch_size=64, image=(1, 16, 16), nz=32, ngf=32, ndf=32),
}


# ----------------------------------------------------------------------------- the models
def _library(framework):
    """(top-level module, nn, functional, optim, models) of one framework: the APIs agree,
    so the code below builds and trains either."""
    if framework == "torch":
        import torch
        import torch.nn.functional as F
        import torch_models  # benchmarks/torch_models.py, beside this script
        return torch, torch.nn, F, torch.optim, torch_models
    import minifm
    import minifm.models
    import minifm.nn.functional as F
    return minifm, minifm.nn, F, minifm.optim, minifm.models


def build(framework, name, device="cpu", seed=0):
    """A closure running one training step of model `name`, and its inputs made once."""
    lib, nn, F, optim, models = _library(framework)
    spec = MODELS[name]
    lib.manual_seed(seed)
    shape = (spec["batch_size"], *spec["image"])
    if name == "dcgan":
        netG = models.Generator(spec["nz"], spec["ngf"], spec["image"][0], spec["image"][1])
        netD = models.Discriminator(spec["image"][0], spec["ndf"], spec["image"][1])
        nets = (netG.to(device), netD.to(device))
        optG, optD = (optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in nets)
        real = (lib.rand(*shape) * 2 - 1).to(device)
        z = lib.randn(spec["batch_size"], spec["nz"], 1, 1).to(device)
        ones = lib.ones(spec["batch_size"]).to(device)
        zeros = lib.zeros(spec["batch_size"]).to(device)

        def step():
            fake = netG(z)
            loss_d = (F.binary_cross_entropy_with_logits(netD(real), ones)
                      + F.binary_cross_entropy_with_logits(netD(fake.detach()), zeros))
            optD.zero_grad(set_to_none=True)  # before each backward, as the Trainer does:
            loss_d.backward()                 # G's backward also reaches D's parameters
            optD.step()
            loss_g = F.binary_cross_entropy_with_logits(netD(fake), ones)
            optG.zero_grad(set_to_none=True)
            loss_g.backward()
            optG.step()
            return loss_d + loss_g
        return step
    model = getattr(models, name)(num_classes=10).to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = lib.randn(*shape).to(device)
    y = lib.randint(10, (spec["batch_size"],)).to(device)

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    return step


def warm_up_kernels(framework, device="cpu"):
    """Training steps of a tiny network with every layer type of the three models, so
    that the kernels are compiled or loaded before memory is measured. The batch (8) is
    large enough for minifm's convolutions to run their compiled chunk shares on two
    threads too (with 2 samples they ran from Python, and loading the compiled passes
    during the timed model added ~3 MB to its peak); for minifm a second step runs with
    every call shared among the threads (cpu_tasks.SERIAL_BELOW and matmul_cpu.SPLIT_FROM
    0), which loads the kernels' parallel twins (loaded during DCGAN's timed steps, where
    its batch norms first shared their calls, they added 2.7 MB to its peak)."""
    lib, nn, F, optim, _ = _library(framework)
    lib.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 7, 2, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4),
        nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(4, 4, 1, 2, bias=False),
        nn.ConvTranspose2d(4, 4, 4, 2, 1, bias=False), nn.Tanh(), nn.Conv2d(4, 4, 4, 2, 1),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 2)).to(device)
    x = lib.randn(8, 3, 16, 16).to(device)
    for opt in (optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4),
                optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))):
        for shared in (False, True) if framework == "minifm" else (False,):
            with _every_call_shared(shared):
                out = net(x)
                loss = (F.cross_entropy(out, lib.zeros(8, dtype=lib.int64).to(device))
                        + F.binary_cross_entropy_with_logits(out[:, 0], lib.ones(8).to(device)))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)


@contextlib.contextmanager
def _every_call_shared(shared):
    """Where `shared`, minifm's kernels share every call among their threads."""
    if not shared:
        yield
        return
    from minifm.kernels import cpu_tasks, matmul_cpu
    saved = cpu_tasks.SERIAL_BELOW, matmul_cpu.SPLIT_FROM
    cpu_tasks.SERIAL_BELOW = matmul_cpu.SPLIT_FROM = 0
    try:
        yield
    finally:
        cpu_tasks.SERIAL_BELOW, matmul_cpu.SPLIT_FROM = saved


# ----------------------------------------------------------------------------- one worker
def run_worker(framework, name, threads, warmup, repeats, device="cpu"):
    """Time `repeats` steps of one framework on one model; print the result as JSON."""
    limit_threads(framework, threads)
    warm_up_kernels(framework, device)
    print_worker_result(framework, name, threads, lambda: build(framework, name, device),
                        warmup, repeats, device)


# ----------------------------------------------------------------------------- profile
def profile_minifm(name, threads, steps=3):
    """cProfile minifm's training steps (after two warm-up steps), by own time: which ops
    a step is slower in."""
    import cProfile
    import pstats

    limit_threads("minifm", threads)
    step = build("minifm", name)
    step()
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    print(f"minifm, {name}, {threads} thread(s), {steps} steps, sorted by own time:")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(20)


# ----------------------------------------------------------------------------- report
def markdown(rows, gpu=False):
    head = ("| model | threads | minifm step (ms) | PyTorch step (ms) | ratio | "
            "minifm peak - base (MB) | PyTorch peak - base (MB) | memory ratio |")
    lines = [head + (" minifm GPU peak (MB) | PyTorch GPU peak (MB) |" if gpu else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if gpu else "")]
    for r in rows:
        m, t = r["minifm"], r["torch"]
        line = (f"| {r['model']} | {r['threads']} | {1e3 * m['median_s']:.1f} "
                f"| {1e3 * t['median_s']:.1f} | {r['ratio']:.2f}x "
                f"| {m['model_and_training_mb']:.0f} | {t['model_and_training_mb']:.0f} "
                f"| {r['memory_ratio']:.2f}x |")
        if gpu:
            line += f" {m['gpu_peak_mb']:.0f} | {t['gpu_peak_mb']:.0f} |"
        lines.append(line)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--profile", metavar="MODEL", help="cProfile minifm's steps of MODEL")
    add_harness_arguments(parser, RESULTS, GPU_RESULTS)
    args = parser.parse_args()
    warmup, repeats, rounds = harness_counts(args, warmup=2)

    if args.worker:
        return run_worker(args.worker, args.models, int(args.threads), warmup, repeats,
                          args.device)
    if args.profile:
        return profile_minifm(args.profile, int(args.threads.split(",")[0]))

    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        for name in args.models.split(","):
            result = alternate_rounds(lambda fw: spawn_worker(__file__, fw, "--models", name,
                                                              threads, warmup, repeats,
                                                              args.device), rounds)
            m, t = result["minifm"], result["torch"]
            rows.append(dict(model=name, threads=threads, **MODELS[name], **result,
                             ratio=m["median_s"] / t["median_s"],
                             memory_ratio=m["model_and_training_mb"]
                             / max(t["model_and_training_mb"], 1e-9)))
            print(f"{name}, {threads} thread(s): minifm {1e3 * m['median_s']:.1f} ms, torch "
                  f"{1e3 * t['median_s']:.1f} ms", file=sys.stderr, flush=True)
    report = {
        "benchmark": "vision training step (forward, loss, backward, optimizer step, "
                     "zero_grad); dcgan: one D and one G update",
        "device": args.device, "rounds": rounds, "warmup": warmup, "repeats": repeats,
        "memory": "peak RSS (VmHWM) minus RSS after loading the kernels, in a fresh "
                  "subprocess per framework and model",
        "machine": machine_info(), "rows": rows,
    }
    if args.device == "cuda":
        import torch
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    out = write_json(args.output or (RESULTS if args.device == "cpu" else GPU_RESULTS), report)
    print(markdown(rows, gpu=args.device == "cuda"))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
