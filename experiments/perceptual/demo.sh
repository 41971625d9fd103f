#!/usr/bin/env bash
# The perceptual columns as evaluate writes them, on this machine (no network, no ImageNet weights):
# 1) offline: the n/a columns and the one line naming the files; 2) with seeded random backbones made
# by tests/metrics/backbones.py in a temporary hub folder (numbers show the plumbing, not quality).
# Run from the repository root; ../shared/datasets holds Set5.
set -euo pipefail
out=experiments/perceptual
data=${DATA:-../shared/datasets}  # DATA=../../shared/datasets from a worktree one folder deeper
hub=.demo_hub  # relative, so the recorded commands and lines name no path of this machine
rm -rf "$hub" .demo_torch_home
TORCH_HOME=.demo_torch_home /usr/bin/time -f "offline evaluate: %e s wall" python -m srlab.evaluate weights=srvgg-x4-bicubic \
    "benchmarks=[$data/Set5]" 'metrics=[psnr,ssim,lpips,dists]' speed=false figures.count=0 \
    out=$out/offline
python -c "from pathlib import Path; from tests.metrics.backbones import write_backbone; \
[write_backbone(Path('$hub'), n) for n in ('lpips', 'dists')]"
python -m srlab.evaluate weights=srvgg-x4-bicubic "benchmarks=[$data/Set5]" \
    'metrics=[psnr,ssim,lpips,lpips_vgg,dists]' hub_dir=$hub speed=false figures.count=0 out=$out/random_backbones
rm -rf "$hub" .demo_torch_home
