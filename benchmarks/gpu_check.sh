#!/usr/bin/env bash
# Prove minifm's GPU path on a machine with an NVIDIA GPU, in under 8 minutes.
#
# Stages, each under its own `timeout` and all under one deadline; a stage that fails or
# runs out of time is recorded and the next one runs:
#   setup      install local wheels (--wheels DIR, pip --no-index: never the network) and
#              make minifm.kernels importable (an editable install of this checkout)
#   gpu        nvidia-smi: the GPU, its driver and memory
#   env        versions of numpy, cupy, numba, numba-cuda, torch; what minifm.cuda sees
#   tests      the pytest tests that run on CUDA (the `device` fixture's cuda cases, the
#              attention kernels on the real GPU, minifm.cuda against the GPU)
#   attention  benchmarks/bench_attention.py: minifm's kernels against PyTorch's SDPA
#   train_gpt  benchmarks/bench_train_gpt.py --device cuda: a GPT training step, minifm
#              on CuPy against PyTorch eager
#   train_vision  bench_train_vision.py --device cuda (ResNet-20, DCGAN), in the time left
#   report     benchmarks/gpu_report.py: gpu_check.json and gpu_check.md, with the GPU named
# Results and one log per stage go to benchmarks/results/gpu/<gpu name>/ (or --out DIR).
#
# --dry-run runs the same orchestration on the CPU: the GPU stages are skipped with the
# reason recorded, the benchmarks run at tiny sizes, and nothing is installed. It is what
# tests/test_cuda_api.py runs. Each stage's time limit can be lowered with an environment
# variable GPU_CHECK_TIMEOUT_<STAGE> (e.g. GPU_CHECK_TIMEOUT_ATTENTION=60).
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--out DIR] [--wheels DIR] [--python PYTHON]
set -u

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

DRY_RUN=0
OUT=""
WHEELS=""
PY="${PYTHON:-python}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out) OUT="$2"; shift ;;
        --wheels) WHEELS="$2"; shift ;;
        --python) PY="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1  # a stage stopped by its timeout still leaves its output in the log
BUDGET_S=450      # the stages' share of the 8 minutes; the report needs a few seconds
START_S=$(date +%s)

GPU_NAME=""
if [ "$DRY_RUN" = 0 ] && command -v nvidia-smi > /dev/null; then
    GPU_NAME="$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null |
                head -n 1)"
fi
if [ -z "$OUT" ]; then
    if [ "$DRY_RUN" = 1 ]; then SLUG="dry-run"; else SLUG="${GPU_NAME:-no-gpu}"; fi
    SLUG="$(printf '%s' "$SLUG" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')"
    OUT="$ROOT/benchmarks/results/gpu/$SLUG"
fi
mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
: > "$OUT/stages.jsonl"

# record NAME STATUS MILLISECONDS COMMAND NOTE: append one stage's outcome to stages.jsonl
record() {
    "$PY" -c 'import json, sys
name, status, ms, command, note = sys.argv[1:]
print(json.dumps({"stage": name, "status": status, "seconds": round(int(ms) / 1e3, 1),
                  "command": command, "log": name + ".log" if command else None,
                  "note": note or None}))' "$@" >> "$OUT/stages.jsonl"
}

skip_stage() {  # NAME REASON
    echo "== $1: skipped ($2)"
    record "$1" skipped 0 "" "$2"
}

# run_stage NAME LIMIT_S NOTE COMMAND...: run COMMAND under `timeout` (stdin passes
# through), log to NAME.log
run_stage() {
    local name="$1" limit="$2" note="$3"
    shift 3
    local var="GPU_CHECK_TIMEOUT_$(printf '%s' "$name" | tr 'a-z' 'A-Z')"
    limit="${!var:-$limit}"
    local left=$(( BUDGET_S - ($(date +%s) - START_S) ))
    if [ "$left" -lt 10 ]; then
        skip_stage "$name" "out of time: the whole check must finish in 8 minutes"
        return
    fi
    [ "$limit" -gt "$left" ] && limit="$left"
    echo "== $name (limit ${limit} s): $*"
    local start end rc status
    start=$(date +%s%N)
    timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    end=$(date +%s%N)
    case "$rc" in
        0) status=ok ;;
        124|137) status=timeout; note="${note:+$note; }stopped after ${limit} s" ;;
        *) status=failed; note="${note:+$note; }exit status $rc" ;;
    esac
    tail -n 15 "$OUT/$name.log" | sed 's/^/    /'
    echo "   -> $status"
    record "$name" "$status" "$(( (end - start) / 1000000 ))" "$*" "$note"
}

# ----------------------------------------------------------------------------- setup
if [ -n "$WHEELS" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        skip_stage setup "dry run: installs nothing"
    else
        run_stage setup 90 "local wheels from $WHEELS" \
            "$PY" -m pip install --no-index --find-links "$WHEELS" "$WHEELS"/*.whl
    fi
fi
if ! "$PY" -c "import minifm.kernels" > /dev/null 2>&1; then
    if [ "$DRY_RUN" = 1 ]; then
        skip_stage editable_install \
            "dry run: minifm.kernels is not importable and nothing is installed"
    else
        run_stage editable_install 60 "minifm.kernels maps to kernels/ only once installed" \
            "$PY" -m pip install --no-index --no-deps --no-build-isolation -e "$ROOT"
    fi
fi

# ----------------------------------------------------------------------------- the machine
if [ "$DRY_RUN" = 1 ]; then
    skip_stage gpu "dry run: no GPU stages"
elif command -v nvidia-smi > /dev/null; then
    run_stage gpu 20 "" nvidia-smi
else
    skip_stage gpu "nvidia-smi not found: no NVIDIA driver on this machine"
fi

PROBE='import importlib, importlib.metadata, json, sys
info = {"gpu_name": sys.argv[2] or None, "packages": {}, "missing": []}
for dist in ("numpy", "cupy-cuda12x", "cupy-cuda11x", "cupy", "numba", "numba-cuda", "torch"):
    try:
        info["packages"][dist] = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
if not any(name.startswith("cupy") for name in info["packages"]):
    info["missing"].append("cupy (CUDA arrays)")
if "numba-cuda" not in info["packages"]:
    info["missing"].append("numba-cuda (the attention kernels on the GPU)")
if "torch" not in info["packages"]:
    info["missing"].append("torch (the yardstick)")
import minifm
info["minifm_cuda_available"] = minifm.cuda.is_available()
info["minifm_device_count"] = minifm.cuda.device_count()
if info["minifm_cuda_available"]:
    info["gpu_name"] = minifm.cuda.get_device_name(0)
from minifm import kernels
info["attention_backends"] = kernels.available_backends("attention")
try:
    import torch
    info["torch_cuda"] = torch.version.cuda
    info["torch_cuda_available"] = torch.cuda.is_available()
except ImportError:
    pass
print(json.dumps(info, indent=2))
with open(sys.argv[1], "w") as f:
    json.dump(info, f, indent=2)'
run_stage env 60 "the probe is PROBE in gpu_check.sh" \
    "$PY" - "$OUT/env.json" "$GPU_NAME" <<< "$PROBE"

GPU_READY=0
WHY_NO_GPU="dry run: no GPU stages"
if [ "$DRY_RUN" = 0 ]; then
    READY='import json, sys; sys.exit(not json.load(open(sys.argv[1]))["minifm_cuda_available"])'
    if "$PY" -c "$READY" "$OUT/env.json" 2> /dev/null; then
        GPU_READY=1
    else
        WHY_NO_GPU="minifm.cuda.is_available() is False: CuPy missing or no GPU (see env.log)"
    fi
fi

# ----------------------------------------------------------------------------- tests
if [ "$GPU_READY" = 1 ]; then
    # -k cuda: the device fixture's cuda cases, the GPU attention tests and this file's;
    # not the simulator test (a CPU test) nor the dry run of this script. The files named
    # first run first: should CuPy's first kernel compilations use up the time, the op
    # table's hundreds of cases (tests/test_device.py) are the ones cut
    run_stage tests 150 "" "$PY" -m pytest -q -p no:cacheprovider -rs \
        -k "cuda and not simulator and not dry_run" tests/test_cuda_api.py \
        tests/test_attention_cuda_sim.py tests/test_train_cuda.py tests
else
    skip_stage tests "$WHY_NO_GPU"
fi

# ----------------------------------------------------------------------------- benchmarks
if [ "$GPU_READY" = 1 ]; then
    run_stage attention 150 "" "$PY" benchmarks/bench_attention.py --device cuda \
        --min-T 512 --max-T 8192 --out "$OUT/attention.json"
elif [ "$DRY_RUN" = 1 ]; then
    run_stage attention 120 "dry run: on the CPU, tiny" "$PY" benchmarks/bench_attention.py \
        --device cpu --min-T 64 --max-T 64 --batch 1 --heads 1 --head-dim 16 --repeats 1 \
        --warmup 0 --out "$OUT/attention.json"
else
    skip_stage attention "$WHY_NO_GPU"
fi

if [ "$GPU_READY" = 1 ]; then
    run_stage train_gpt 150 "" "$PY" benchmarks/bench_train_gpt.py --device cuda \
        --configs small,medium --rounds 1 --warmup 3 --repeats 10 --output "$OUT/train_gpt.json"
elif [ "$DRY_RUN" = 1 ]; then
    run_stage train_gpt 120 "dry run: on the CPU, one step" "$PY" benchmarks/bench_train_gpt.py \
        --device cpu --configs small --rounds 1 --warmup 0 --repeats 1 \
        --output "$OUT/train_gpt.json"
else
    skip_stage train_gpt "$WHY_NO_GPU"
fi

# last, in what time is left: ResNet-20 and DCGAN steps (results in train_vision.json)
if [ "$GPU_READY" = 1 ]; then
    run_stage train_vision 120 "" "$PY" benchmarks/bench_train_vision.py --device cuda \
        --models resnet20,dcgan --threads 1 --rounds 1 --warmup 3 --repeats 10 \
        --output "$OUT/train_vision.json"
else
    skip_stage train_vision "$WHY_NO_GPU"
fi

# ----------------------------------------------------------------------------- report
REPORT_ARGS=("$OUT")
[ "$DRY_RUN" = 1 ] && REPORT_ARGS+=(--dry-run)
if "$PY" benchmarks/gpu_report.py "${REPORT_ARGS[@]}"; then
    echo "== wrote $OUT/gpu_check.json and $OUT/gpu_check.md in $(( $(date +%s) - START_S )) s"
    cat "$OUT/gpu_check.md"
else
    echo "== gpu_report.py failed; the raw results are in $OUT" >&2
    exit 1
fi
