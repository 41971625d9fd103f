"""Part of section ``infer``: every x4 generator on a 1000x1000 output, torch and onnxruntime backends.

Each net is built from its ``conf/model`` config (seeded random weights: content does not change
a conv net's speed), loaded as ``srlab.upscale`` loads it (``srlab.infer.to_device``) and run
by ``srlab.infer.upscale_array`` on a 250x250 input, tiled as ``srlab.upscale`` tiles it,
once per backend: torch, and onnxruntime on the graph
``srlab.infer.onnx.export_onnx`` writes (when the deploy extra is installed). Candidates alternate, so
the load of other processes hits each alike.
"""

from __future__ import annotations

import torch

from srlab.bench.infer import flops_per_pixel, test_image
from srlab.config import TILE_PAD
from srlab.bench.utils import interleave, median, spread
from srlab.errors import SRLabError
from srlab.config import model_net_config
from srlab.infer import SRGenerator, build_net, to_device, upscale_array

NETS = ("esrgan", "srvgg", "edsr", "msrresnet", "swinir_light", "swinir")  # conf/model names; esrgan = RRDBNet 23 blocks
INPUT = 250  # x4 -> a 1000x1000 output
TILE = 128


def _generator(model: str) -> SRGenerator:
    cfg = model_net_config(model, scale=4)
    torch.manual_seed(0)
    return to_device(SRGenerator(build_net(cfg, "bench"), 4, cfg).eval().requires_grad_(False), "cpu")


def _backends(gen: SRGenerator) -> dict[str, object]:
    from srlab.infer.onnx import onnx_generator, require

    try:
        require("bench onnxruntime")
    except SRLabError:  # no deploy extra: torch only
        return {"torch": gen}
    return {"torch": gen, "onnxruntime": onnx_generator(gen)}


def run(device: torch.device, ceiling: dict | None, quick: bool, models: tuple[str, ...] = NETS) -> list[dict]:
    """Seconds per 1000x1000 output for every net and backend (CPU only: the GPU runs ``speed``)."""
    if device.type != "cpu":
        return []
    img = test_image(INPUT, INPUT)
    rows = []
    for model in models[:2] if quick else models:
        gen = _generator(model)
        fpp = flops_per_pixel(gen, device)
        fns = {name: (lambda g=g: upscale_array(g, img, TILE, TILE_PAD)) for name, g in _backends(gen).items()}
        for backend, ts in interleave(fns, reps=1 if quick else 2, device=device, warmup=0).items():
            secs = median(ts)
            row = {"model": model, "net": type(gen.net).__name__, "backend": backend, "s": secs,
                   "spread": spread(ts), "params_m": sum(p.numel() for p in gen.parameters()) / 1e6,
                   "gflops": fpp * INPUT * INPUT / secs / 1e9}  # fmt: skip
            if ceiling:
                row["fraction_of_conv_ceiling"] = row["gflops"] / ceiling["conv_ceiling_gflops"]
            rows.append(row)
    return rows


def table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "", f"Every x4 generator on a {INPUT}x{INPUT} input (a {4 * INPUT}x{4 * INPUT} output), tile {TILE}, "
        f"pad {TILE_PAD}, random weights, fp32; onnxruntime runs the graph of `srlab.export --onnx`:", "",
        "| model | net | params M | backend | s (min-max) | GFLOP/s | of conv ceiling |",
        "|---|---|---:|---|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        frac = f"{r['fraction_of_conv_ceiling']:.0%}" if "fraction_of_conv_ceiling" in r else "n/a"
        lines.append(f"| {r['model']} | {r['net']} | {r['params_m']:.2f} | {r['backend']} | {r['s']:.1f} "
                     f"({r['spread']}) | {r['gflops']:.1f} | {frac} |")  # fmt: skip
    return lines
