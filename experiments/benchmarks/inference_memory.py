"""Speed and peak memory of srlab.infer.upscale_array for one (net, image size, tile) setting.

Run one setting per process, so that the peak resident set size (ru_maxrss) belongs to it:

    python experiments/benchmarks/inference_memory.py --net full --size 256x256 --tile 128

Prints input/output size, seconds, output MP/s, the RSS just before inference (imports, net,
input image) and the peak RSS during it (the kernel's VmHWM, reset right before inference). Random weights: speed and memory do not depend on them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from srlab.infer import SRGenerator, upscale_array
from srlab.nets.rrdbnet import RRDBNet

NETS = {
    "tiny": dict(num_feat=8, num_block=1, num_grow_ch=4),
    "quickstart": dict(num_feat=32, num_block=2, num_grow_ch=16),
    "full": dict(num_feat=64, num_block=23, num_grow_ch=32),  # ESRGAN / Real-ESRGAN x4plus
}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024  # KiB


def reset_peak() -> None:
    """Reset the kernel's peak RSS (VmHWM) to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--net", choices=tuple(NETS), default="tiny")
    p.add_argument("--size", default="256x256", help="input HxW")
    p.add_argument("--tile", type=int, default=0)
    p.add_argument("--tile-pad", type=int, default=16)
    args = p.parse_args()
    h, w = map(int, args.size.split("x"))
    gen = SRGenerator(RRDBNet(**NETS[args.net]), 4, {}).eval()
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with torch.inference_mode():  # warm-up on a small input so one-time allocations are not timed
        gen(torch.rand(1, 3, 16, 16))
    reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    out = upscale_array(gen, img, args.tile, args.tile_pad)
    secs = time.perf_counter() - start
    mp = out.shape[0] * out.shape[1] / 1e6
    print(
        f"net={args.net} in={w}x{h} out={out.shape[1]}x{out.shape[0]} tile={args.tile} pad={args.tile_pad} "
        f"threads={torch.get_num_threads()} time={secs:.2f}s out_MP/s={mp / secs:.3f} "
        f"rss_before={before:.0f}MB rss_peak={_status_mb('VmHWM'):.0f}MB growth={_status_mb('VmHWM') - before:.0f}MB"
    )


if __name__ == "__main__":
    main()
