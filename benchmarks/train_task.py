"""Run one `minifm train` job as a user would, time it, and record its results.

    python benchmarks/train_task.py bert
    python benchmarks/train_task.py dcgan
    python benchmarks/train_task.py gpt -- --data ../shared/data/tinyshakespeare.txt \\
        --max-steps 2000 --val-frac 0.1 --test-frac 0 --eval-iters 200

Everything after `--` goes to `minifm train TASK` unchanged. The job runs in a subprocess
(with the CLI's own thread defaults) and writes to a temporary --out-dir; its summary.json,
the validation rows of its metrics.jsonl and the wall time of the whole command go to
benchmarks/results/<task>.json (or --output), next to a description of the machine, and
the run's loss plot and sample grid (DCGAN) are copied beside it, named after it
(bert.json: bert_loss.png).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_info, write_json

RESULTS = Path(__file__).resolve().parent / "results"
COPIED = {"loss.png": "loss", "samples_seed0.png": "samples"}  # run file: suffix


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("gpt", "bert", "dcgan", "resnet"))
    parser.add_argument("--output", type=Path, help="default benchmarks/results/<task>.json")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1:]  # after --: for minifm train
    if any(arg.startswith("--out-dir") for arg in extra):
        parser.error("--out-dir is chosen by this script (a temporary folder)")
    output = args.output or RESULTS / f"{args.task}.json"
    output.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as out_dir:
        command = [sys.executable, "-m", "minifm", "train", args.task, "--out-dir", out_dir,
                   *extra]
        start = time.perf_counter()
        done = subprocess.run(command, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"train_task: `minifm train {args.task}` exited with {done.returncode}")
        run = Path(out_dir)
        summary = json.loads((run / "summary.json").read_text())
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for name, suffix in COPIED.items():
            if (run / name).exists():
                shutil.copyfile(run / name, output.with_name(f"{output.stem}_{suffix}.png"))
    summary.pop("loss_plot", None)  # a path in the deleted temporary folder
    write_json(output, {
        "task": args.task,
        "command": shlex.join(["minifm", "train", args.task, *extra]),
        "machine": machine_info(),
        "wall_seconds_total": round(wall, 1),
        "summary": summary,
        "val_history": [row for row in rows if row.get("split") == "val"],
    })
    print(f"{args.task}: {wall:.0f} s; results in {output}")


if __name__ == "__main__":
    main()
