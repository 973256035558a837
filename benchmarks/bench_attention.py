"""Attention, three ways in one run: minifm's reference (materialized scores), minifm's
FlashAttention kernel (Numba on the CPU, Numba-CUDA with --device cuda), and torch's
scaled_dot_product_attention on the same device.

For each sequence length T (queries = keys = T; B=4, H=8, head size 64, float32 by
default), causal and not, it measures
  - forward time (no graph recorded) and forward + backward time: the median over
    --repeats after --warmup rounds, the three implementations taking turns so that load
    on a shared machine hits all of them (benchmarks/common.py);
  - the peak extra memory of one forward + backward: the growth of the process's resident
    set for all three, and for minifm also the exact peak of NumPy allocations
    (tracemalloc); benchmarks/common.py says what each sees and misses;
  - apart, the Numba kernels' first calls in a new process: compiling (an empty cache
    directory) and loading from Numba's cache.
The reference needs (B, H, T, T) score arrays (2 GiB each at T=4096): it is skipped, and
said so, when one would exceed --ref-max-mib.

Numba and PyTorch get the same number of threads (--threads, by default Numba's, which
is the core count); NumPy's BLAS, used by the reference, keeps its own default.

With --device cuda the arrays live on the GPU (CuPy for minifm), every timed call ends with
a synchronize of its framework, memory is the peak of GPU allocations above what the
inputs hold (minifm.cuda's and torch.cuda's max_memory_allocated), and the Numba compile
times are not measured. The Numba-CUDA kernel is left out, and said so, where Numba's CUDA
target is missing, and torch where it has no CUDA (on the CuPy stand-in of the tests).

Results go to benchmarks/results/attention_cpu.json (attention_gpu.json with --device cuda)
and a plot beside them.

    python benchmarks/bench_attention.py                      # T = 128 .. 4096, minutes
    python benchmarks/bench_attention.py --max-T 1024 --quick # a quick look
    python benchmarks/bench_attention.py --device cuda --min-T 512 --max-T 8192
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minifm  # noqa: E402
from minifm import kernels  # noqa: E402
from minifm.ops.attention import scaled_dot_product_attention as sdpa  # noqa: E402
from common import (  # noqa: E402
    SETTLE_S, fix_malloc_threshold, machine_info, median, peak_rss_delta, peak_traced,
    time_interleaved, write_json,
)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
IMPLS = ("minifm reference", "minifm numba", "minifm cuda", "torch")
KERNEL = {"cpu": "minifm numba", "cuda": "minifm cuda"}  # the fused kernel's row per device


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--min-T", type=int, default=128)
    p.add_argument("--max-T", type=int, default=4096)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for Numba and PyTorch (default: Numba's default)")
    p.add_argument("--ref-max-mib", type=float, default=1024,
                   help="skip the reference when one (B, H, T, T) score array exceeds this")
    p.add_argument("--quick", action="store_true", help="3 repeats and T up to 1024")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", default=None,
                   help="the JSON file (default results/attention_cpu.json or _gpu.json)")
    args = p.parse_args(argv)
    if args.out is None:
        name = "attention_gpu.json" if args.device == "cuda" else "attention_cpu.json"
        args.out = os.path.join(RESULTS, name)
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.max_T = min(args.max_T, 1024)
    return args


def lengths(args):
    T, out = args.min_T, []
    while T <= args.max_T:
        out.append(T)
        T *= 2
    return out


def minifm_runner(backend, arrays, grad, causal, backward, device="cpu"):
    """A zero-argument call of minifm's attention on the given backend; on a GPU it waits
    for the GPU to finish."""
    ts = [minifm.tensor(a, requires_grad=backward, device=device) for a in arrays]
    g = minifm.tensor(grad, device=device)

    def run():
        kernels.set_backend("attention", backend)
        if not backward:
            with minifm.no_grad():
                sdpa(*ts, is_causal=causal)
        else:
            for t in ts:
                t.grad = None
            sdpa(*ts, is_causal=causal).backward(g)
        if device == "cuda":
            minifm.cuda.synchronize()
    return run


def torch_runner(torch, arrays, grad, causal, backward, device="cpu"):
    F = torch.nn.functional
    ts = [torch.from_numpy(a).to(device).requires_grad_(backward) for a in arrays]
    g = torch.from_numpy(grad).to(device)

    def run():
        if not backward:
            with torch.no_grad():
                F.scaled_dot_product_attention(*ts, is_causal=causal)
        else:
            for t in ts:
                t.grad = None
            F.scaled_dot_product_attention(*ts, is_causal=causal).backward(g)
        if device == "cuda":
            torch.cuda.synchronize()
    return run


def gpu_peak_extra(torch, name, run):
    """The peak bytes of GPU allocations while run() runs, above those held before it."""
    gpu = torch.cuda if name == "torch" else minifm.cuda
    gpu.synchronize()
    gpu.reset_peak_memory_stats()
    before = gpu.memory_allocated()
    run()
    return gpu.max_memory_allocated() - before


def implementations(args, torch):
    """(the implementations this run measures, why any was left out)."""
    impls, left_out = ["minifm reference", KERNEL[args.device], "torch"], []
    if args.device == "cuda" and "cuda" not in kernels.available_backends("attention"):
        impls.remove("minifm cuda")
        left_out.append("minifm cuda: Numba's CUDA target is not usable here")
    if args.device == "cuda" and not torch.cuda.is_available():
        impls.remove("torch")
        left_out.append("torch: this PyTorch has no CUDA")
    return impls, left_out


FIRST_CALLS = """
import json, sys, time
import numpy as np
from minifm.kernels import flash_attention_cpu as fa
rng = np.random.default_rng(0)
q, k, v, g = (rng.standard_normal((2, 64, int(sys.argv[2]))).astype(sys.argv[1])
              for _ in range(4))
start = time.perf_counter()
out, lse = fa.attention_forward(q, k, v, is_causal=True, scale=0.125)
middle = time.perf_counter()
fa.attention_backward(q, k, v, out, lse, g, is_causal=True, scale=0.125)
end = time.perf_counter()
print(json.dumps({"forward_s": middle - start, "backward_s": end - middle,
                  "from_cache": bool(fa._forward.stats.cache_hits)}))
"""


def first_calls(dtype, head_dim, fresh_cache):
    """Seconds of the Numba kernels' first forward and backward calls in a new process:
    the compile time with an empty cache directory, else the load from Numba's cache."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = cache
        done = subprocess.run([sys.executable, "-c", FIRST_CALLS, dtype, str(head_dim)],
                              env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def measure(args, torch, T, causal, available):
    """Rows of results (one per implementation) for one length and masking."""
    B, H, D = args.batch, args.heads, args.head_dim
    rng = np.random.default_rng(T)
    arrays = [rng.standard_normal((B, H, T, D)).astype(args.dtype) for _ in range(3)]
    grad = rng.standard_normal((B, H, T, D)).astype(args.dtype)
    score_mib = B * H * T * T * np.dtype(args.dtype).itemsize / 2**20
    impls = [i for i in available if i != "minifm reference" or score_mib <= args.ref_max_mib]
    device = args.device

    def runners(backward):
        made = {"minifm reference": lambda: minifm_runner("reference", arrays, grad, causal,
                                                          backward, device),
                "minifm numba": lambda: minifm_runner("numba", arrays, grad, causal, backward),
                "minifm cuda": lambda: minifm_runner("cuda", arrays, grad, causal, backward,
                                                     device),
                "torch": lambda: torch_runner(torch, arrays, grad, causal, backward, device)}
        return {name: made[name]() for name in impls}

    settle = SETTLE_S if device == "cpu" and torch.get_num_threads() > 1 else 0.0
    forward = time_interleaved(runners(False), args.repeats, args.warmup, settle)
    both = time_interleaved(runners(True), args.repeats, args.warmup, settle)
    rows = []
    for name, run in runners(True).items():
        row = {"T": T, "causal": causal, "impl": name,
               "forward_ms": 1e3 * median(forward[name]),
               "forward_backward_ms": 1e3 * median(both[name]),
               "forward_samples_ms": [1e3 * s for s in forward[name]],
               "forward_backward_samples_ms": [1e3 * s for s in both[name]]}
        if device == "cuda":
            row["gpu_peak_extra_mib"] = gpu_peak_extra(torch, name, run) / 2**20
        else:
            _, rss = peak_rss_delta(run)
            row["rss_peak_extra_mib"] = None if rss is None else rss / 2**20
            row["numpy_peak_mib"] = peak_traced(run)[1] / 2**20 if name.startswith("minifm") \
                else None
        rows.append(row)
    skipped = None
    if "minifm reference" in available and "minifm reference" not in impls:
        skipped = (f"T={T}: reference skipped, one (B, H, T, T) score array is "
                   f"{score_mib:.0f} MiB > --ref-max-mib {args.ref_max_mib:.0f}")
    return rows, skipped


def print_rows(rows):
    torch_row = {r["impl"]: r for r in rows}.get("torch")

    def ratio(r, key):
        return f"{r[key] / torch_row[key]:6.2f}x" if torch_row else f"{'-':>7}"

    def mib(r, key):
        return "" if r.get(key) is None else f"{r[key]:8.0f}"
    for r in rows:
        memory = mib(r, "gpu_peak_extra_mib") if "gpu_peak_extra_mib" in r else \
            f"{mib(r, 'rss_peak_extra_mib'):>8} {mib(r, 'numpy_peak_mib'):>8}"
        print(f"{r['T']:5d} {'causal' if r['causal'] else 'full':6s} {r['impl']:17s} "
              f"{r['forward_ms']:9.1f} {ratio(r, 'forward_ms')} {r['forward_backward_ms']:10.1f} "
              f"{ratio(r, 'forward_backward_ms')} {memory:>8}", flush=True)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = dict(zip(IMPLS, ("tab:gray", "tab:blue", "tab:green", "tab:orange")))
    for ax, key, title in zip(axes, ("forward_ms", "forward_backward_ms"),
                              ("forward", "forward + backward")):
        for impl in IMPLS:
            for causal, style in ((False, "-"), (True, "--")):
                rows = [r for r in results if r["impl"] == impl and r["causal"] == causal]
                if rows:
                    ax.plot([r["T"] for r in rows], [r[key] for r in rows], style, marker="o",
                            color=colors[impl], label=f"{impl}{' causal' if causal else ''}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms (median)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    import numba
    import torch

    threads, first, machine = None, None, {}
    if args.device == "cpu":
        fix_malloc_threshold()  # so the RSS growth of every call shows (benchmarks/common.py)
        # minifm picks Numba's threading layer on first selecting a kernel, which must come
        # before set_num_threads below starts Numba's threads
        kernels.select("attention", "cpu", dtype=np.dtype(args.dtype), head_dim=args.head_dim,
                       value_dim=args.head_dim)
        threads = args.threads or numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
        first = {kind: first_calls(args.dtype, args.head_dim, kind == "compile")
                 for kind in ("compile", "cache_load")}
        for kind, t in first.items():
            print(f"Numba kernels' first call in a new process, {kind.replace('_', ' ')}: "
                  f"forward {t['forward_s']:.1f} s, backward {t['backward_s']:.1f} s")
        machine = dict(threads=threads, numba_threading_layer=numba.threading_layer())
        print(f"B={args.batch} H={args.heads} D={args.head_dim} {args.dtype}, {threads} "
              f"threads for Numba ({numba.threading_layer()} layer) and PyTorch; ratios are "
              f"to torch")
        memory = f"{'RSS MiB':>8} {'NumPy MiB':>8}"
    else:
        machine = dict(gpu=minifm.cuda.get_device_name())
        print(f"B={args.batch} H={args.heads} D={args.head_dim} {args.dtype} on "
              f"{machine['gpu']}; ratios are to torch")
        memory = f"{'GPU MiB':>8}"
    available, left_out = implementations(args, torch)
    for why in left_out:
        print(f"left out: {why}")
    print(f"{'T':>5} {'mask':6s} {'impl':17s} {'fwd ms':>9} {'ratio':>7} {'fwd+bwd ms':>10} "
          f"{'ratio':>7} {memory}")
    results, skipped = [], list(left_out)
    for T in lengths(args):
        for causal in (False, True):
            rows, skip = measure(args, torch, T, causal, available)
            print_rows(rows)
            results += rows
            if skip and skip not in skipped:
                skipped.append(skip)
                print("  " + skip)
    kernels.set_backend("attention", None)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    path = write_json(args.out, {
        "machine": machine_info(**machine),
        "config": config, "numba_first_call": first, "skipped": skipped, "results": results})
    png = os.path.splitext(args.out)[0] + ".png"
    plot(results, png)
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
