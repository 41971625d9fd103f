#!/usr/bin/env bash
# Every GPU check srlab's issues ask for, in one go, most important first: a lent GPU comes for
# minutes, so each step gets what is left of a deadline and the rest is skipped, not cut mid-way.
# From the repository root, on a machine with a CUDA GPU and srlab's dependencies importable:
#   OUT=/tmp/srlab-gpu DEADLINE_S=480 bash experiments/benchmarks/gpu_lease.sh
# ONLY="runs_vgg bench_overhead" runs just the named steps (a second, shorter lease).
# Appends every step's output to $OUT/lease.log (the markdown tables of `srlab.bench` are in it)
# and writes $OUT/runs_summary.md (the training runs' sweep summaries).
set -u
OUT=${OUT:-/tmp/srlab-gpu}
DEADLINE_S=${DEADLINE_S:-480}
PY=${PYTHON:-python3}
RUNS=${RUNS_DIR:-/tmp/srlab-gpu-runs}  # training outputs (checkpoints are large): not under $OUT
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1
START=$(date +%s)

# step NAME CAP_S COMMAND...: run with min(CAP_S, time left) seconds; full output to $OUT/lease.log
step() {
  local name=$1 cap=$2; shift 2
  if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then return; fi
  local left=$((DEADLINE_S - ($(date +%s) - START)))
  local limit=$((cap < left ? cap : left))
  echo; echo "=== $name (limit ${limit}s, at $(( $(date +%s) - START ))s)" | tee -a "$OUT/lease.log"
  if ((limit < 15)); then echo "skipped: out of time" | tee -a "$OUT/lease.log"; return; fi
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$OUT/lease.log" | grep -v "^\s*$" | tail -n 40
  echo "--- $name: exit ${PIPESTATUS[0]} after $(( $(date +%s) - START ))s" | tee -a "$OUT/lease.log"
}

step env 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c \"
import torch, lightning, hydra, albumentations, torchmetrics
print('torch', torch.__version__, 'lightning', lightning.__version__, 'torchmetrics', torchmetrics.__version__,
      'hydra', hydra.__version__, 'albumentations', albumentations.__version__)
print(torch.cuda.get_device_name(), torch.cuda.is_available())\""

# issue 15 (first: the targets): no host sync in a full ESRGAN step; the step and RRDBNet inference
# against the bf16 conv ceiling (targets: step >= 35%, inference >= 70%), eager, CUDA graphs, compiled
step sync_check 90 $PY experiments/benchmarks/sync_check.py
step sync_check_realesrgan 60 $PY experiments/benchmarks/sync_check.py data/degradation=realesrgan
step issue15 330 $PY experiments/benchmarks/issue15_gpu.py
# issue 14: the new generators' training step on the GPU (the infer section's other nets are CPU-only)
step bench_nets 120 $PY -m srlab.bench --sections ceilings,train --models srvgg,edsr,msrresnet,swinir_light,swinir \
  --set trainer.precision=bf16-mixed --no-write

# issue 6: the harness on the GPU with the GPU preset (trainer=gpu: bf16-mixed, batch 16)
step bench_main 120 $PY -m srlab.bench --sections ceilings,train --no-write
step bench_overhead 80 $PY -m srlab.bench --sections overhead,profile --no-write

# issue 3: every model trains some steps in 16-mixed and bf16-mixed with channels_last, on the sample photos
common=(trainer=gpu model.channels_last=true trainer.max_epochs=1 data.samples_per_epoch=320 data.batch_size=16
        data.patch_size=128 data.num_workers=6 data.pin_memory=true trainer.log_every_n_steps=5
        "trainer.precision=16-mixed,bf16-mixed")
step runs_no_vgg 100 $PY -m srlab.train -m model=autoencoder,rrdbnet,vanilla_gan "${common[@]}" \
  hydra.sweep.dir="$RUNS/no_vgg"
# `++`: the sweep's base config (model=quickstart) has no perceptual loss to override
step runs_vgg 130 $PY -m srlab.train -m model=srgan,esrgan "${common[@]}" \
  ++model.perceptual_loss.vgg_weights=random hydra.sweep.dir="$RUNS/vgg"
cat "$RUNS"/no_vgg/summary.md "$RUNS"/vgg/summary.md > "$OUT/runs_summary.md" 2>/dev/null

# which layout and precision are fastest (the GPU defaults follow this)
step bench_channels_last 70 $PY -m srlab.bench --sections train --models rrdbnet,srgan,esrgan \
  --set model.channels_last=true --no-write
step bench_fp16_cl 70 $PY -m srlab.bench --sections train --models rrdbnet,srgan,esrgan \
  --set model.channels_last=true --set trainer.precision=16-mixed --no-write
step bench_tf32 70 $PY -m srlab.bench --sections train --models rrdbnet,srgan,esrgan \
  --set trainer.precision=32-true --no-write

step bench_infer 100 $PY -m srlab.bench --sections infer --no-write
step bench_levers 90 $PY -m srlab.bench --sections levers --no-write \
  --levers baseline,channels_last,bf16,cl_bf16,fused,foreach,finite_checks,infer:nchw,infer:channels_last
step bench_data 60 $PY -m srlab.bench --sections data --quick --no-write
step bench_compile 150 $PY -m srlab.bench --sections levers --no-write --levers baseline,cl_bf16,cl_compile,infer:channels_last,infer:compile
echo "=== done after $(( $(date +%s) - START ))s"
