#!/usr/bin/env bash
# Trains one corpus's shipped twins the paper's way: the binary base, then its SM and binary continuations.
# Each step resumes where it stopped if run again. Usage: bash configs/continued/run.sh shakespeare|python
set -euo pipefail
corpus=$1
smkit=${SMKIT:-smkit}
for stage in base sm binary; do
  cfg=configs/continued/$corpus-$stage.yaml
  out=runs/continued/$corpus-$stage
  if [ -d "$out/model" ]; then continue; fi
  resume=false; [ -d "$out/last" ] && resume=true
  $smkit train --config "$cfg" --resume $resume --progress false
done
