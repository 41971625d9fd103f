#!/usr/bin/env bash
# Bicubic x4 baselines on Set5/Set14 with both bicubic implementations and the report's blur degradation.
# Usage: experiments/benchmarks/bicubic_baseline.sh [DATASETS_DIR] [OUT_DIR]
set -euo pipefail
data=${1:-../shared/datasets}
out=${2:-outputs/bicubic_baseline}
for resize in pil matlab; do
  python -m srlab.evaluate "benchmarks=[$data/Set5,$data/Set14]" resize=$resize "out=$out/$resize"
done
python -m srlab.evaluate "benchmarks=[$data/Set5,$data/Set14]" degradation=blur "out=$out/blur"
