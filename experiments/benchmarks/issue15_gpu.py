"""Issue 15's GPU targets in one process: the ESRGAN training step (batch 16, HR 128, bf16-mixed)
eager and compiled, and RRDBNet inference eager and compiled, each against the bf16 conv ceiling.

    python experiments/benchmarks/issue15_gpu.py [--steps esrgan_eager,esrgan_cudagraphs,infer,esrgan_compile]

One process: the ceilings are measured once and every variant is compared to the same figure.
The steps run in the order given (most telling first, so that a lease's deadline cuts the least
useful); a step that fails prints its error and the next one runs. Targets (issue 15): step at
35% or more of the bf16 conv ceiling, inference at 70% or more.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from srlab.bench import ceilings, levers, train  # noqa: E402

TRAIN_VARIANTS = {
    "esrgan_eager": [],
    "esrgan_cudagraphs": ["model.compile=reduce-overhead"],
    "esrgan_compile": ["model.compile=true"],
}
INFER_TILE = 512


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="esrgan_eager,esrgan_cudagraphs,infer,esrgan_compile")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train.quiet_lightning()
    ceiling = ceilings.run(device)
    print("\n".join(ceilings.table(ceiling)), flush=True)
    bf16 = ceiling["conv_ceiling_bf16_gflops"]
    for step in args.steps.split(","):
        start = time.perf_counter()
        print(f"\n## {step}", flush=True)
        try:
            if step in TRAIN_VARIANTS:
                precision = "bf16-mixed" if device.type == "cuda" else "32-true"
                result = train.run(device, ceiling, models=("esrgan",),
                                   overrides=[f"trainer.precision={precision}", *TRAIN_VARIANTS[step]])
                print("\n".join(train.table(result)))
            elif step == "infer":
                tile = INFER_TILE if device.type == "cuda" else 32
                result = levers.infer_levers(device, tile, ("channels_last", "bf16", "bf16_compile"))
                print("\n".join(levers.infer_table(result)))
                for row in result["rows"]:
                    print(f"{row['lever']}: {row['gflops'] / bf16:.0%} of the bf16 conv ceiling ({bf16:.0f} GFLOP/s)")
            else:
                print(f"unknown step {step}")
        except Exception:  # noqa: BLE001 - a lease's other steps still run; the error is printed whole
            traceback.print_exc()
        print(f"({step}: {time.perf_counter() - start:.0f} s with compiling)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
