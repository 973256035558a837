"""Helpers shared by the benchmark scripts: interleaved timing with medians, peak memory,
and results written as JSON with a description of the machine.

Timing. The machines these run on are shared and noisy, so implementations are timed in
turns (A, B, C, A, B, C, ...) after a warm-up, and each is summarized by the median of
its repeats: a burst of load then hits every side instead of whichever ran at that moment.

Memory, two ways. `peak_traced` is exact for NumPy arrays (NumPy reports its allocations to
tracemalloc) and blind to everything else (PyTorch, Numba's own runtime). `peak_rss_delta` samples the resident set size (RSS) of this process from
/proc/self/statm in a background thread while a call runs, and reports the peak minus the
RSS before the call. It sees every allocator (NumPy, Numba's runtime, PyTorch), which
tracemalloc does not, but it samples (every ~1 ms, so a spike shorter than that can be
missed) and it counts pages, so memory an allocator reuses from earlier frees does not
show. glibc maps large blocks fresh and unmaps them on free, but by default it raises that
"large" threshold (up to 32 MiB) after each such free, after which freed memory is kept and
reused unseen; `fix_malloc_threshold` pins it at glibc's default of 128 KiB so that large
arrays keep showing. Linux only: elsewhere these return None / do nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def time_interleaved(fns, repeats=5, warmup=1, settle=0.0):
    """{name: [seconds per call, one per repeat]} for a dict of zero-argument callables,
    called in turns after `warmup` untimed rounds. With `settle` (SETTLE_S where several
    threads run), each timed call follows a pause of `settle` seconds and one untimed call
    of the same callable: OpenMP's workers, PyTorch's and minifm's alike, spin for a few
    milliseconds after a call and would take a core from the other framework's next call;
    after the pause they sleep, and the untimed call wakes the next framework's own (on this
    VM a sleeping thread's wake-up can take milliseconds), so the timed call runs as calls
    do in a loop of that framework alone."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
                fn()
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


SETTLE_S = 0.01  # see time_interleaved


def median(samples):
    return statistics.median(samples)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def fix_malloc_threshold(nbytes=128 * 1024):
    """Make glibc serve every block of at least nbytes by a fresh mapping, returned to the
    system on free (mallopt M_MMAP_THRESHOLD; setting it also stops the dynamic raise).
    Returns whether it took effect."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_MMAP_THRESHOLD = -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes))


def peak_rss_delta(fn, interval=1e-3):
    """(result of fn(), peak RSS growth in bytes while it ran, or None off Linux)."""
    if not os.path.exists("/proc/self/statm"):
        return fn(), None
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    return result, peak[0] - base


def peak_traced(fn):
    """(result of fn(), peak bytes allocated through tracemalloc while it ran, above what
    was allocated before)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    return result, peak


def machine_info(**extra):
    """What a result depends on: CPU, core count, Python and library versions."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for module in ("numpy", "numba", "torch"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            pass
    info["blas"] = blas_info()
    info.update(extra)
    return info


def blas_info():
    """The BLAS libraries loaded in this process and the kernel set each chose (OpenBLAS
    picks one per CPU when it loads, unless OPENBLAS_CORETYPE names one), from
    threadpoolctl; None without it. A matmul-heavy figure means little without this.
    Thread counts are left out: scripts that time a child process call this in the
    parent, whose count is not the child's. (PyTorch's MKL, linked statically, is not seen.)"""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("internal_api", "version", "architecture")
    return {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "libraries": [{key: lib.get(key) for key in keys} for lib in threadpool_info()]}


def write_json(path, payload):
    """Write payload as indented JSON, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# ----------------------------------------------------------------------------- training steps
# The training benchmarks (bench_train_gpt.py, bench_train_vision.py) time each framework in a
# fresh subprocess per round, alternating minifm and PyTorch, and summarize the rounds.

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak_rss():
    """Start a new RSS high-water mark (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def limit_threads(framework, threads):
    """BLAS (and Numba, or PyTorch's intra-op) threads of this process."""
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    else:
        from minifm.runtime import limit_threads as minifm_limit_threads
        minifm_limit_threads(threads)  # minifm's kernels; OpenBLAS on one thread (runtime.py)


def cuda_module(framework):
    """torch.cuda or minifm.cuda: the same functions under the same names."""
    if framework == "torch":
        import torch
        return torch.cuda
    import minifm
    return minifm.cuda


def time_training_steps(make_step, warmup, repeats, gpu=None):
    """Build with make_step() (a zero-argument callable returning a step function that
    returns the loss), run `warmup` steps, then time `repeats` steps. Returns the times,
    the last loss and the memory: RSS before building and its peak after, and with `gpu`
    (torch.cuda or minifm.cuda) the allocated and peak device memory. Call it after the
    kernels are loaded, so that the base RSS includes them."""
    base = _status_kb("VmRSS")
    peak_reset = _reset_peak_rss()
    if gpu:
        gpu.synchronize()
        gpu.reset_peak_memory_stats()
        gpu_base = gpu.memory_allocated()
    step = make_step()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        if gpu:
            gpu.synchronize()
        times.append(time.perf_counter() - start)
    peak = _status_kb("VmHWM")
    result = {"times_s": times, "final_loss": float(loss.item()), "base_rss_mb": base / 1024,
              "peak_rss_mb": peak / 1024, "peak_is_since_base": peak_reset}
    if gpu:
        result.update(gpu_base_mb=gpu_base / 2**20,
                      gpu_peak_mb=gpu.max_memory_allocated() / 2**20)
    return result


def print_worker_result(framework, name, threads, make_step, warmup, repeats, device="cpu"):
    """A worker's answer: time_training_steps on `device`, printed as one JSON line."""
    gpu = cuda_module(framework) if device != "cpu" else None
    result = {"framework": framework, "config": name, "threads": threads,
              **time_training_steps(make_step, warmup, repeats, gpu)}
    if gpu:
        result["device"] = device
    print(json.dumps(result))


def spawn_worker(script, framework, name_option, name, threads, warmup, repeats, device):
    """Run `script --worker framework name_option name ...` in a fresh Python with every
    thread variable set to `threads` and the repository on PYTHONPATH; its last line of
    output, parsed as JSON."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARIABLES})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(script), "--worker", framework, name_option, name,
           "--threads", str(threads), "--warmup", str(warmup), "--repeats", str(repeats),
           "--device", device]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} worker on {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs):
    """One framework's rounds on one config -> median/min step time and memory."""
    times = [t for run in runs for t in run["times_s"]]
    base = min(run["base_rss_mb"] for run in runs)
    peak = max(run["peak_rss_mb"] for run in runs)
    summary = {"median_s": statistics.median(times), "min_s": min(times), "steps": len(times),
               "base_rss_mb": base, "peak_rss_mb": peak, "model_and_training_mb": peak - base,
               "final_loss": runs[-1]["final_loss"], "runs": runs}
    if "gpu_peak_mb" in runs[0]:
        summary.update(gpu_base_mb=min(run["gpu_base_mb"] for run in runs),
                       gpu_peak_mb=max(run["gpu_peak_mb"] for run in runs))
    return summary


def add_harness_arguments(parser, results, gpu_results):
    """The options of both training benchmarks beside their own (threads, what to run,
    --profile): --quick, --rounds, --warmup, --repeats, --device, --output and the hidden
    --worker (harness_counts reads the first four)."""
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 1 warm-up step and 3 timed steps")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--worker", choices=["minifm", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None,
                        help=f"default {Path(results).relative_to(root)} (cpu), "
                             f"{Path(gpu_results).relative_to(root)} (cuda)")


def harness_counts(args, warmup):
    """(warmup, repeats, rounds): those given, else 1, 3, 1 with --quick, else `warmup`
    (the script's own), 5, 3."""
    return (args.warmup if args.warmup is not None else (1 if args.quick else warmup),
            args.repeats if args.repeats is not None else (3 if args.quick else 5),
            args.rounds if args.rounds is not None else (1 if args.quick else 3))


def alternate_rounds(spawn, rounds):
    """{framework: summarize(its runs)} for spawn(framework) called `rounds` times in turns,
    minifm then torch, so that load on the machine hits both sides."""
    runs = {"minifm": [], "torch": []}
    for _ in range(rounds):
        for fw in runs:
            runs[fw].append(spawn(fw))
    return {fw: summarize(r) for fw, r in runs.items()}
