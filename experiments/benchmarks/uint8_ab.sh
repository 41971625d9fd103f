#!/usr/bin/env bash
# Issue 15, before/after the uint8 loader batches: loader samples/s (section data) and the CPU
# training step (section train) of two trees, interleaved round by round so that the load of
# other processes hits both alike. From the repository root:
#   BEFORE=/tmp/srlab-before OUT=/tmp/srlab-ab bash experiments/benchmarks/uint8_ab.sh
# BEFORE is a plain copy of the earlier commit (git archive <commit> | tar -x -C "$BEFORE").
set -eu
BEFORE=${BEFORE:?a copy of the earlier tree}
AFTER=${AFTER:-$(pwd)}
OUT=${OUT:-/tmp/srlab-ab}
ROUNDS=${ROUNDS:-2}
MODELS=${MODELS:-quickstart,esrgan}
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=disabled
mkdir -p "$OUT"
for round in $(seq "$ROUNDS"); do
  for tree in before after; do
    dir=$BEFORE; [[ $tree == after ]] && dir=$AFTER
    echo "=== round $round $tree ($dir) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/ab.log"
    (cd "$dir" && python -m srlab.bench --sections data,train --models "$MODELS" --quick \
      --out "$OUT/$tree-$round") 2>&1 | grep -E "^\|" | tee -a "$OUT/ab.log"
  done
done
