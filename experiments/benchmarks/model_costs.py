"""Params and MACs (one forward on a 256x256 LR input) of every conf/model generator at x4, as model cards count them.

    python experiments/benchmarks/model_costs.py > experiments/benchmarks/results/model_costs.md

Counted on the meta device by :func:`srlab.infer.efficiency.count_macs` (no arithmetic: seconds in all).
"""

from __future__ import annotations

import torch

from srlab.config import model_names, model_net_config
from srlab.errors import SRLabError
from srlab.infer import build_net
from srlab.infer.efficiency import efficiency


def main() -> None:
    print("| model | generator | params | buffers | GMACs (256² LR) | counted on |")
    print("|---|---|---:|---:|---:|---|")
    for name in model_names():
        try:
            config = model_net_config(name, scale=4)
        except SRLabError:  # a config without a generator node
            continue
        torch.manual_seed(0)
        net = build_net(config, name)
        cost = efficiency(net, 4, measure_speed=False)
        macs = f"{cost['macs_256'] / 1e9:.1f}" if cost["macs_256"] else "n/a"
        print(f"| {name} | {type(net).__name__} | {cost['params']:,} | {cost.get('buffers', 0):,} | {macs} | "
              f"{cost['macs_counted']} |")


if __name__ == "__main__":
    main()
