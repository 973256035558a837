"""Before/after for the CPU kernels: this checkout's kernels against those of an earlier
commit, in one process, called in alternating turns.

compare_commits.sh times whole training steps in separate processes; a kernel change
smaller than this VM's drift (20-45% between runs) needs a finer measure. Here the old
commit's kernels/ is loaded beside the current one as a package of its own (`git
archive` into a temporary folder), both are warmed up, and each round times one call
batch of the old and one of the new on the same inputs. A round's new/old ratio shares
that moment's load, so the median ratio is steady where the absolute times are not.

    python benchmarks/compare_kernels.py BASE_REV [--threads 1] [--rounds 9]

Cases: softmax, log_softmax, GELU and layer norm forward + backward at (8, 256, 384)
float32; flash attention forward + backward (48 heads, causal) at T = 64, D = 32 (the GPT
benchmark's) and T = 256, D = 64.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from minifm.runtime import limit_threads

ROOT = Path(__file__).resolve().parent.parent


def load_kernels(rev, folder):
    """The kernels package of commit `rev`, imported as `kernels_<rev>`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "kernels"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    name = f"kernels_{rev.replace('~', '_').replace('^', '_')}"
    spec = importlib.util.spec_from_file_location(
        name, Path(folder) / "kernels" / "__init__.py",
        submodule_search_locations=[str(Path(folder) / "kernels")])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return lambda module: importlib.import_module(f"{name}.{module}")


def cases(kernels):
    """{case: (callable, calls per timing)} for one version's kernels (a module getter)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 256, 384), dtype=np.float32)
    softmax, gelu = kernels("softmax_cpu"), kernels("gelu_cpu")
    found = {
        "softmax (8, 256, 384) fwd+bwd":
            (lambda: softmax.softmax_backward(x, softmax.softmax_forward(x)), 20),
        "log_softmax (8, 256, 384) fwd+bwd":
            (lambda: softmax.softmax_backward(x, softmax.softmax_forward(x, log=True), log=True),
             20),
        "gelu (8, 256, 384) fwd+bwd":
            (lambda: gelu.gelu_backward(x, gelu.gelu_forward(x)), 20),
    }
    layer_norm = kernels("layer_norm_cpu")
    rows = x.reshape(-1, x.shape[-1])
    weight, bias = rng.standard_normal((2, x.shape[-1]), dtype=np.float32)

    def layer_norm_step():
        _, mean, rstd = layer_norm.layer_norm_forward(rows, weight, bias, 1e-5)
        layer_norm.layer_norm_backward(rows, rows, mean, rstd, weight)
    found["layer_norm (8, 256, 384) fwd+bwd"] = (layer_norm_step, 20)
    attention = kernels("flash_attention_cpu")
    for length, dim, calls in ((64, 32, 20), (256, 64, 3)):
        q, k, v = (rng.standard_normal((48, length, dim), dtype=np.float32) for _ in range(3))
        scale = 1 / np.sqrt(dim)
        out, lse = attention.attention_forward(q, k, v, is_causal=True, scale=scale)
        g = rng.standard_normal(out.shape, dtype=np.float32)

        def step(q=q, k=k, v=v, out=out, lse=lse, g=g, scale=scale):
            attention.attention_forward(q, k, v, is_causal=True, scale=scale)
            attention.attention_backward(q, k, v, out, lse, g, is_causal=True, scale=scale)
        found[f"attention T={length} D={dim} causal fwd+bwd"] = (step, calls)
    return found


def ms_per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the earlier commit (any git revision)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    limit_threads(args.threads)
    from minifm import kernels as current  # after the thread count is set
    print(f"new = this checkout, old = {args.base}; {args.threads} thread(s), "
          f"{args.rounds} alternating rounds; ms per call (best round), new/old per round")
    with tempfile.TemporaryDirectory() as folder:  # the old sources stay while they compile
        old_cases = cases(load_kernels(args.base, folder))
        new_cases = cases(lambda module: importlib.import_module(f"{current.__name__}.{module}"))
        for case, (new, calls) in new_cases.items():
            old, _ = old_cases[case]
            new(), old()  # compiled, or loaded from the cache
            times = {"old": [], "new": []}
            for _ in range(args.rounds):
                times["old"].append(ms_per_call(old, calls))
                times["new"].append(ms_per_call(new, calls))
            ratios = [n / o for n, o in zip(times["new"], times["old"])]
            print(f"{case:42s} old {min(times['old']):8.3f}  new {min(times['new']):8.3f}  "
                  f"new/old median {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
