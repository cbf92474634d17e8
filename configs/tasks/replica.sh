#!/usr/bin/env bash
# One training replica of the PREVIOUS sudoku pair (trained to 68 givens), whose tables docs/results.md labels as
# such and study/tasks_study.py reproduces (the tasks testbed asked for 3 training seeds and an iso-compute binary
# twin). The shipped sudoku-sm / sudoku-binary were retrained since by configs/tasks/solver.sh (report card:
# docs/results/solver/). Replica R trains, with that pair's configs and only the seeds and folders changed:
#   sm        configs/tasks/sudoku-sm.yaml (seed 2R), then sudoku-sm-continued.yaml from it (seed 2R+1)
#   binary    the same with the binary configs (iso-update: equal updates)
#   binary-iso the binary configs with forward_budget set to the SM run's forward passes (iso-compute: an SM
#             update costs two forward passes when its soft pass runs, p_sm of the time)
#   binary-uncond the binary configs with task_condition off: the givens are masked and scored like every other
#             cell (the question the tasks testbed asks to decide by measurement: train with the givens fixed or not)
# Replica 0 is that pair with its configs' own seeds (0, then 1) in runs/tasks/sudoku-*; the others go to
# runs/tasks/rR/.
# Each run resumes where it stopped if this is run again; finished runs are skipped.
# Usage: bash configs/tasks/replica.sh R [twins]   (twins: only the sm and binary pair; SMKIT=path/to/smkit to
# choose the command)
set -euo pipefail
r=$1 only=${2:-all}
smkit=${SMKIT:-smkit}
root=runs/tasks; [ "$r" = 0 ] || root=runs/tasks/r$r
seed_base=$((2 * r)); seed_cont=$((2 * r + 1))

train() {  # train OUT CONFIG [flags...]
  local out=$1 cfg=$2; shift 2
  if [ -d "$out/model" ]; then return 0; fi
  local resume=false; [ -d "$out/last" ] && resume=true
  mkdir -p "$(dirname "$out")"
  $smkit train --config "$cfg" --out-dir "$out" --resume $resume --progress false "$@" >> "$out.log" 2>&1
}
forward_passes() { tail -n 1 "$1/metrics.csv" | cut -d, -f2; }

for kind in sm binary; do
  train $root/sudoku-$kind configs/tasks/sudoku-$kind.yaml --seed $seed_base
  train $root/sudoku-$kind-continued configs/tasks/sudoku-$kind-continued.yaml --seed $seed_cont \
    --init-from $root/sudoku-$kind/model
done
[ "$only" = twins ] && exit 0
train $root/sudoku-binary-iso configs/tasks/sudoku-binary.yaml --seed $seed_base \
  --steps none --forward-budget "$(forward_passes $root/sudoku-sm)"
train $root/sudoku-binary-iso-continued configs/tasks/sudoku-binary-continued.yaml --seed $seed_cont \
  --steps none --forward-budget "$(forward_passes $root/sudoku-sm-continued)" --init-from $root/sudoku-binary-iso/model
train $root/sudoku-binary-uncond configs/tasks/sudoku-binary.yaml --seed $seed_base --task-condition false
train $root/sudoku-binary-uncond-continued configs/tasks/sudoku-binary-continued.yaml --seed $seed_cont \
  --task-condition false --init-from $root/sudoku-binary-uncond/model
