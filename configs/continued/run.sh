#!/usr/bin/env bash
# Trains one corpus's shipped twins the paper's way: the binary base, then its SM and binary continuations
# (side by side, one thread each). Each run resumes where it stopped if this is run again.
# Usage: bash configs/continued/run.sh shakespeare|python      (SMKIT=path/to/smkit to choose the command)
set -euo pipefail
corpus=$1
smkit=${SMKIT:-smkit}
run() {
  local cfg=configs/continued/$corpus-$1.yaml out=runs/continued/$corpus-$1 resume=false
  if [ -d "$out/model" ]; then return 0; fi
  [ -d "$out/last" ] && resume=true
  $smkit train --config "$cfg" --resume $resume --progress false
}
run base
run sm & sm=$!
run binary & binary=$!
wait $sm
wait $binary
