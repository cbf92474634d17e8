#!/usr/bin/env bash
# The shipped sudoku pair (issue 22): a binary base on varied difficulty, then its SM and binary twins side by
# side, one thread each (configs/tasks/sudoku-base.yaml, sudoku-sm-twin.yaml, sudoku-binary-twin.yaml), then a
# second round of twins from the binary twin (sudoku-sm-round2.yaml with its gate starting open, and
# sudoku-binary-round2.yaml): the shipped pair.
# Re-run to continue: a finished run (out/model exists) is skipped, a started one resumes from out/last.
# While a run trains, every checkpoint's model (out/last, every checkpoint_every updates) is also kept as
# out/snapshots/step-N (weights and manifest only, no optimizer), for the curve of solved share against updates.
# Usage: bash configs/tasks/solver.sh   (SMKIT=command to choose the smkit command; logs in runs/solver/*.log)
set -euo pipefail
smkit=${SMKIT:-smkit}
root=runs/solver

snapshot() {  # snapshot OUT: copy OUT/last's model into OUT/snapshots/step-N if N is new
  local out=$1 step
  [ -f "$out/last/smkit.json" ] || return 0
  step=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['trainer']['step'])" "$out/last/smkit.json" \
         2>/dev/null) || return 0
  [ -d "$out/snapshots/step-$step" ] && return 0
  mkdir -p "$out/snapshots/.tmp"
  for f in "$out"/last/*; do
    case $(basename "$f") in optimizer.safetensors|ema.safetensors) ;; *) cp "$f" "$out/snapshots/.tmp/" ;; esac
  done
  mv "$out/snapshots/.tmp" "$out/snapshots/step-$step"
}

train() {  # train NAME: runs/solver/NAME from configs/tasks/NAME.yaml
  local name=$1 out=$root/$1
  if [ -d "$out/model" ]; then return 0; fi
  local resume=false; [ -d "$out/last" ] && resume=true
  mkdir -p "$root"
  (while sleep 20; do snapshot "$out"; done) &
  local watcher=$!
  $smkit train --config configs/tasks/$name.yaml --resume $resume --progress false >> "$out.log" 2>&1 || {
    kill $watcher; return 1; }
  kill $watcher
  snapshot "$out"
}

train sudoku-base
train sudoku-sm-twin & sm=$!            # the twins side by side, one thread each
train sudoku-binary-twin & binary=$!
wait $sm
wait $binary
train sudoku-sm-round2 & sm=$!
train sudoku-binary-round2 & binary=$!
wait $sm
wait $binary
