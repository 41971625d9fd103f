"""Section ``infer``: speed and peak memory of ``srlab.infer.upscale_array`` with RRDBNet x4 (23 blocks).

Every other x4 generator, on both backends, is timed by :mod:`srlab.bench.infer_nets` in the same section.

A full RRDBNet costs about 36 MFLOP per *input* pixel, so on a CPU a 4000x3000 image would take
hours. Speed is therefore measured on a **bounded number of tiles** and **extrapolated**: the
tiled path runs on a crop holding 2x2 tiles of the real image (``upscale_array`` itself, same tile
size and pad), the time per padded input pixel is multiplied by the padded pixels of the whole
image's tile grid. Where the whole job is small enough (GPU, or a small image) it is run in full.

Peak memory is split the way it grows: with **tile size** (activations of one tile: measured on
one tile of a 1-block RRDBNet of full width, since in inference each block frees the previous
one's activations) and with **image size** (input copy and uint8 output: measured on the whole
image with a zero-cost nearest-neighbour stand-in for the net).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srlab.bench.ceilings import bf16_skip_reason
from srlab.bench.utils import PeakMemory, count_flops, gib, interleave, median, timed
from srlab.config import TILE_PAD, model_net_config
from srlab.infer import SRGenerator, build_net, to_device, upscale_array

IMAGES = {"1000x1000": (1000, 1000), "4000x3000": (3000, 4000)}  # name -> (H, W)


def rrdbnet_x4(device: torch.device, variant: str = "fp32", num_block: int | None = None) -> SRGenerator:
    """RRDBNet x4 as ``conf/model/esrgan.yaml`` builds it (seeded random weights), in ``fp32`` or ``bf16``.

    Put on ``device`` by :func:`srlab.infer.to_device`, as ``srlab.upscale`` loads a generator.
    """
    cfg = model_net_config("esrgan")
    if num_block is not None:
        cfg["num_block"] = num_block
    torch.manual_seed(0)
    gen = SRGenerator(build_net(cfg, "bench"), 4, cfg).eval().requires_grad_(False)
    return to_device(gen, device, variant)


class NearestStandIn(nn.Module):
    """x4 nearest-neighbour upsampling with one dummy parameter: upscale_array's own memory, no net cost."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # upscale_array reads device/dtype here

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lq, scale_factor=4, mode="nearest")


def test_image(h: int, w: int) -> np.ndarray:
    """A smooth-ish RGB uint8 test image (content does not change the speed of a conv net)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([np.sin(x / 37.0), np.cos(y / 23.0), np.sin((x + y) / 51.0)], axis=2)
    return ((img + 1) * 127.5).astype(np.uint8)


def padded_pixels(h: int, w: int, tile: int, pad: int) -> int:
    """Input pixels the net processes for ``upscale_array``'s tile grid (tiles plus their clamped pads)."""
    total = 0
    for ty in range(math.ceil(h / tile)):
        for tx in range(math.ceil(w / tile)):
            y0, x0 = ty * tile, tx * tile
            hh = min(y0 + tile, h) + min(pad, h - min(y0 + tile, h)) - max(y0 - pad, 0)
            ww = min(x0 + tile, w) + min(pad, w - min(x0 + tile, w)) - max(x0 - pad, 0)
            total += hh * ww
    return total


def flops_per_pixel(gen: SRGenerator, device: torch.device) -> float:
    """FLOPs per input pixel (every conv is 3x3, stride 1, padded: linear in the pixel count)."""
    x = torch.rand(1, 3, 32, 32, device=device, dtype=next(gen.parameters()).dtype)
    with torch.inference_mode():
        return count_flops(lambda: gen(x)) / (32 * 32)


def speed(device: torch.device, ceiling: dict | None, quick: bool, tile: int) -> list[dict]:
    """Tiled throughput per variant on 2x2 tiles from the middle of the 4000x3000 image, extrapolated.

    Every image is cut into the same ``tile`` x ``tile`` tiles, so one per-pixel time serves both
    images; the extrapolation goes by padded pixels (the crop's tiles get context on their inner
    sides only, the whole image's interior tiles on all four). bf16 runs where the device computes
    it natively (the rule of ``--precision auto``), loaded as ``srlab.upscale`` loads it; elsewhere
    its rows say why not. On a CPU ``upscale_array`` feeds every tile as channels_last (NCHW vs
    channels_last: section ``levers``).
    """
    variants = ["fp32", "bf16"]
    rows, skipped = [], {}
    reason = bf16_skip_reason(device, ceiling)
    if reason:
        skipped["bf16"] = reason
    gens = {v: rrdbnet_x4(device, v) for v in variants if v not in skipped}
    fpp = flops_per_pixel(gens["fp32"], device)
    if device.type == "cuda":  # fast enough to run the whole images
        targets = {name: test_image(ih, iw) for name, (ih, iw) in IMAGES.items()}
    else:
        h, w = IMAGES["4000x3000"]
        y0, x0 = (h // 2 // tile) * tile, (w // 2 // tile) * tile
        targets = {"crop": test_image(h, w)[y0 : y0 + 2 * tile, x0 : x0 + 2 * tile]}  # 2x2 tiles from the middle
    times = {}
    for key, img in targets.items():
        fns = {v: (lambda g=g, img=img: upscale_array(g, img, tile, TILE_PAD)) for v, g in gens.items()}
        for v, ts in interleave(fns, reps=1 if quick else 2, device=device, warmup=0 if key == "crop" else 1).items():
            times[key, v] = (median(ts), padded_pixels(*img.shape[:2], tile, TILE_PAD))
    for v in variants:
        for name, (ih, iw) in IMAGES.items():
            total_px = padded_pixels(ih, iw, tile, TILE_PAD)
            row = {"image": name, "variant": v, "tile": tile, "pad": TILE_PAD,
                   "tiles": math.ceil(ih / tile) * math.ceil(iw / tile)}
            if v in skipped:
                rows.append({**row, "skipped": skipped[v]})
                continue
            secs, measured_px = times["crop" if "crop" in targets else name, v]
            est = secs / measured_px * total_px
            row.update({"measured_px": measured_px, "fraction_measured": measured_px / total_px, "s_measured": secs,
                        "s_full_extrapolated": est, "out_mp_per_s": ih * iw * 16 / 1e6 / est,
                        "gflops": fpp * measured_px / secs / 1e9})
            if ceiling:
                key = "conv_ceiling_bf16_gflops" if "bf16" in v else "conv_ceiling_gflops"
                row["fraction_of_conv_ceiling"] = row["gflops"] / ceiling[key]
            rows.append(row)
    return rows


def memory(device: torch.device, quick: bool, variants: tuple[str, ...] = ("fp32",)) -> list[dict]:
    """Peak memory growth by tile size (one tile, 1-block full-width RRDBNet) and by image size (stand-in net)."""
    rows = []
    for variant in variants:
        one_block = rrdbnet_x4(device, variant, num_block=1)
        upscale_array(one_block, test_image(16, 16), 0, 0)  # one-time allocations out of the way
        for tile in (64, 128) if quick else (64, 128, 256, 512):
            img = test_image(tile + 2 * TILE_PAD, tile + 2 * TILE_PAD)
            with PeakMemory(device) as mem:
                secs = timed(lambda: upscale_array(one_block, img, 0, 0), device)
            rows.append({"what": f"one {tile} px tile (+{TILE_PAD} px pad each side), {variant}", "tile": tile,
                         "variant": variant, "peak_growth_gib": gib(mem.growth), "peak_gib": gib(mem.peak),
                         "seconds": secs, "exact": mem.exact})
    stand_in = SRGenerator(NearestStandIn(), 4, {}).to(device)
    for name, (h, w) in IMAGES.items():
        img = test_image(h, w)
        with PeakMemory(device) as mem:
            secs = timed(lambda: upscale_array(stand_in, img, 128, TILE_PAD), device)
        rows.append({"what": f"whole {name} image (tiles of 128), nearest stand-in for the net", "image": name,
                     "peak_growth_gib": gib(mem.growth), "peak_gib": gib(mem.peak), "seconds": secs,
                     "exact": mem.exact, "output_uint8_gib": gib(h * w * 48)})
    return rows


def run(device: torch.device, ceiling: dict | None, quick: bool = False, tile: int | None = None) -> dict:
    """Tiled speed (bounded, extrapolated on a CPU) and the two parts of peak memory."""
    tile = tile or (512 if device.type == "cuda" else (64 if quick else 128))
    variants = ("fp32",) if bf16_skip_reason(device, ceiling) else ("fp32", "bf16")
    return {"speed": speed(device, ceiling, quick, tile), "memory": memory(device, quick, variants), "tile": tile}


def table(result: dict) -> list[str]:
    lines = [
        "RRDBNet x4, 23 blocks, 64 features (ESRGAN / Real-ESRGAN x4plus size), random weights, through "
        f"`srlab.infer.upscale_array` (tile {result['tile']}, pad {TILE_PAD}).",
    ]
    if any(r.get("fraction_measured", 1) < 1 for r in result["speed"]):
        lines.append("**Extrapolated**: only 2x2 tiles from the middle of the 4000x3000 image were run; the time "
                     "per padded input pixel is scaled to each image's full tile grid.")
    lines += ["", "| image | variant | tiles | measured | s (whole image) | output MP/s | GFLOP/s | of conv ceiling |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["speed"]:
        if "skipped" in r:
            lines.append(f"| {r['image']} | {r['variant']} | {r['tiles']} | | | | | {r['skipped']} |")
            continue
        frac = f"{r['fraction_of_conv_ceiling']:.0%}" if "fraction_of_conv_ceiling" in r else "n/a"
        lines.append(f"| {r['image']} | {r['variant']} | {r['tiles']} | {r['fraction_measured']:.2%} | "
                     f"{r['s_full_extrapolated']:.0f} | {r['out_mp_per_s']:.4f} | {r['gflops']:.1f} | {frac} |")
    lines += ["", "Peak memory growth (above the resident size before the call; GPU: allocator peak):", "",
              "| what | peak growth GiB | s |", "|---|---:|---:|"]
    lines += [f"| {r['what']} | {r['peak_growth_gib']:.3f} | {r['seconds']:.1f} |" for r in result["memory"]]
    return lines
