#!/usr/bin/env bash
# Before/after: the GPT training step benchmark of two commits, run alternately in one
# session (so that the machine's state is shared), each commit from a clean `git archive`
# copy importing its own minifm (kernels/ placed as minifm/kernels). Prints each run's table
# row: config, minifm ms, PyTorch ms, ratio (median), ratio (min), memory.
#
#   bash benchmarks/compare_commits.sh BASE_REV [HEAD_REV] [ROUNDS] [THREADS]
#
# Needs the project's environment (PyTorch, Numba) active. Copies go to a temporary folder.
set -euo pipefail
base=${1:?usage: compare_commits.sh BASE_REV [HEAD_REV] [ROUNDS]}
head=${2:-HEAD}
rounds=${3:-3}
threads=${4:-1}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for rev in "$base" "$head"; do
    mkdir -p "$work/$rev"
    git archive "$rev" minifm kernels benchmarks tests | tar -x -C "$work/$rev"
    mv "$work/$rev/kernels" "$work/$rev/minifm/kernels"
done
for round in $(seq "$rounds"); do
    for rev in "$base" "$head"; do
        row=$(cd "$work" && PYTHONPATH="$work/$rev" python "$work/$rev/benchmarks/bench_train_gpt.py" \
              --threads "$threads" --configs small --rounds 3 --output "$work/$rev-$round.json" | grep '^| small')
        echo "$rev round $round $row"
    done
done
