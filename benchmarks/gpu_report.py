"""benchmarks/gpu_check.sh's results as one JSON file and one Markdown page.

Reads, from the results folder of one run of the check:
  stages.jsonl     one line per stage: status (ok, failed, timeout, skipped), seconds, note
  env.json         package versions and what minifm.cuda sees (the env stage)
  attention.json   benchmarks/bench_attention.py's results
  train_gpt.json   benchmarks/bench_train_gpt.py's results
and writes gpu_check.json (all of it, attention rows with their TFLOP/s added) and
gpu_check.md (tables). A stage that failed or was skipped leaves its file missing; the
report says so and goes on.

Attention TFLOP/s follow the FlashAttention papers' convention: a forward pass is
4 * B * H * T^2 * D floating-point operations (two T x T x D matmuls, 2 flops per
multiply-add), half that when causal, and a backward pass 2.5 times the forward (five
matmuls instead of two), so forward + backward is 3.5 times the forward.

    python benchmarks/gpu_report.py benchmarks/results/gpu/nvidia-h100 [--dry-run]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

BACKWARD_OVER_FORWARD = 2.5


def attention_flops(batch, heads, T, head_dim, causal):
    """Forward-pass flops of attention over T queries and T keys (FlashAttention's count)."""
    flops = 4 * batch * heads * T * T * head_dim
    return flops // 2 if causal else flops


def tflops(flops, ms):
    return flops / (ms * 1e-3) / 1e12


def attention_rows(payload):
    """bench_attention.py's rows, each with forward and forward + backward TFLOP/s."""
    config = payload["config"]
    rows = []
    for row in payload["results"]:
        forward = attention_flops(config["batch"], config["heads"], row["T"],
                                  config["head_dim"], row["causal"])
        both = forward * (1 + BACKWARD_OVER_FORWARD)
        rows.append(dict(row, forward_tflops=tflops(forward, row["forward_ms"]),
                         forward_backward_tflops=tflops(both, row["forward_backward_ms"])))
    return rows


def _load(path):
    return json.loads(path.read_text()) if path.exists() else None


def collect(folder: Path, dry_run=False):
    """Everything the check produced, in one dict."""
    stages = [json.loads(line) for line in (folder / "stages.jsonl").read_text().splitlines()
              if line.strip()]
    env = _load(folder / "env.json")
    attention = _load(folder / "attention.json")
    if attention is not None:
        attention = dict(attention, results=attention_rows(attention))
    return {"gpu": (env or {}).get("gpu_name"), "dry_run": dry_run, "env": env,
            "stages": stages, "attention": attention, "train_gpt": _load(folder / "train_gpt.json")}


def _log_tail(folder, stage, lines=8):
    log = folder / stage["log"] if stage.get("log") else None
    if log is None or not log.exists():
        return []
    return log.read_text(errors="replace").splitlines()[-lines:]


def stages_markdown(report, folder):
    lines = ["| stage | status | seconds | note |", "|---|---|---:|---|"]
    for s in report["stages"]:
        lines.append(f"| {s['stage']} | {s['status']} | {s['seconds']:.1f} | {s['note'] or ''} |")
    for s in report["stages"]:
        if s["status"] in ("failed", "timeout"):
            tail = _log_tail(folder, s) or ["(empty)"]
            lines += ["", f"{s['stage']} ({s['status']}), last lines of {s['log']}:", "```",
                      *tail, "```"]
    return lines


def env_markdown(env):
    if env is None:
        return ["No environment probe (see the env stage)."]
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    lines = [f"Packages: {packages}.",
             f"minifm.cuda.is_available(): {env['minifm_cuda_available']}; attention "
             f"backends: {', '.join(env['attention_backends'])}."]
    if "torch_cuda_available" in env:
        lines.append(f"torch CUDA {env['torch_cuda']}, available: {env['torch_cuda_available']}.")
    if env["missing"]:
        lines.append(f"Missing: {'; '.join(env['missing'])}.")
    return lines


def attention_markdown(attention):
    if attention is None:
        return ["No attention results (see the attention stage)."]
    c = attention["config"]
    lines = [f"B={c['batch']} H={c['heads']} D={c['head_dim']} {c['dtype']}; medians of "
             f"{c['repeats']} repeats. TFLOP/s: forward 4*B*H*T^2*D (half when causal), "
             f"backward {BACKWARD_OVER_FORWARD}x the forward.", "",
             "| T | mask | implementation | fwd ms | fwd TFLOP/s | fwd+bwd ms | fwd+bwd TFLOP/s |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in attention["results"]:
        lines.append(f"| {r['T']} | {'causal' if r['causal'] else 'full'} | {r['impl']} "
                     f"| {r['forward_ms']:.2f} | {r['forward_tflops']:.3g} "
                     f"| {r['forward_backward_ms']:.2f} | {r['forward_backward_tflops']:.3g} |")
    lines += [f"- {s}" for s in attention.get("skipped", [])]
    return lines


def train_markdown(train):
    if train is None:
        return ["No GPT training-step results (see the train_gpt stage)."]
    device = train.get("device", "cpu")
    lines = [f"{train['benchmark']} on {device}; median of {train['repeats']} steps x "
             f"{train['rounds']} rounds after {train['warmup']} warm-up steps. Ratio: minifm / "
             f"PyTorch (below 1 is faster).", ""]
    memory = "GPU peak allocated (MB)" if device == "cuda" else "peak RSS (MB)"
    lines += [f"| config | minifm step (ms) | PyTorch step (ms) | ratio | minifm {memory} "
              f"| PyTorch {memory} |", "|---|---:|---:|---:|---:|---:|"]
    key = "gpu_peak_mb" if device == "cuda" else "peak_rss_mb"
    for r in train["rows"]:
        m, t = r["minifm"], r["torch"]
        lines.append(f"| {r['config']} | {1e3 * m['median_s']:.1f} | {1e3 * t['median_s']:.1f} "
                     f"| {r['ratio']:.2f}x | {m[key]:.0f} | {t[key]:.0f} |")
    return lines


def markdown(report, folder):
    title = "dry run on the CPU, no GPU" if report["dry_run"] else (report["gpu"] or "no GPU found")
    return "\n".join([
        f"# minifm GPU check: {title}", "",
        "## Stages", "", *stages_markdown(report, folder), "",
        "## Environment", "", *env_markdown(report["env"]), "",
        "## Attention", "", *attention_markdown(report["attention"]), "",
        "## GPT training step", "", *train_markdown(report["train_gpt"]), "",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the results folder of one gpu_check.sh run")
    parser.add_argument("--dry-run", action="store_true", help="the run was a --dry-run")
    args = parser.parse_args(argv)
    report = collect(args.folder, args.dry_run)
    (args.folder / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.folder / "gpu_check.md").write_text(markdown(report, args.folder))


if __name__ == "__main__":
    main()
