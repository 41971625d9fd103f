"""Issue 15: training DataLoader samples/s with uint8 samples (now) vs float32 samples (before), one process.

The earlier datasets returned ``to_tensor`` (float32 in [0, 1]); here the same dataset's uint8
samples are converted per sample as they were, and the two loaders are timed in alternating
rounds, so that the load of other processes hits both alike.

    python experiments/benchmarks/uint8_loader.py [--workers 0] [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import hydra  # noqa: E402

from srlab.bench.data import BATCH, PATCH, _data_cfg  # noqa: E402
from srlab.bench.utils import median  # noqa: E402


class AsFloat(Dataset):
    """The dataset as it was: every sample's images float32 in [0, 1]."""

    def __init__(self, ds) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key):
        out = self.ds[key]
        return {k: v.float().div_(255.0) if k in ("lq", "gt") else v for k, v in out.items()}


def rate(loader, seconds: float) -> float:
    it = iter(loader)
    next(it)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        n += 1
    return n * BATCH / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    dm = hydra.utils.instantiate(_data_cfg(["data=samples"]), _convert_="all", num_workers=args.workers,
                                 samples_per_epoch=BATCH * 100_000)
    dm.prepare_data()
    dm.setup("fit")
    uint8 = dm.train_dataloader()
    dm.train_set = AsFloat(dm.train_set)
    as_float = dm.train_dataloader()
    rates: dict[str, list[float]] = {"uint8": [], "float32": []}
    for r in range(args.rounds):
        for name, loader in (("uint8", uint8), ("float32", as_float))[:: 1 if r % 2 == 0 else -1]:
            rates[name].append(rate(loader, args.seconds))
    u, f = median(rates["uint8"]), median(rates["float32"])
    print(f"data=samples, batch {BATCH}, HR patch {PATCH}, {args.workers} workers, {args.rounds} rounds of "
          f"{args.seconds:.0f} s: uint8 {u:.1f} samples/s, float32 {f:.1f} samples/s, ratio {u / f:.2f} "
          f"(per round uint8 {[round(x, 1) for x in rates['uint8']]}, float32 {[round(x, 1) for x in rates['float32']]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
