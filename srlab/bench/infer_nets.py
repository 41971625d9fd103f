"""Part of section ``infer``: every x4 generator on a 1000x1000 output, torch and onnxruntime backends.

Each net is built from its ``conf/model`` config (seeded random weights: content does not change
a conv net's speed), loaded as ``srlab.upscale`` loads it (``srlab.infer.to_device``) and run
by ``srlab.infer.upscale_array`` on a 250x250 input, tiled as ``srlab.upscale`` tiles it,
once per backend: torch, and onnxruntime on the graph
``srlab.infer.onnx.export_onnx`` writes (when the deploy extra is installed). Candidates alternate, so
the load of other processes hits each alike. Any ``conf/model`` name runs (``--models``); each row
carries the net's cost as model cards state it (:mod:`srlab.infer.efficiency`: params, MACs per
256x256 LR) beside its ms per output megapixel and its share of the conv ceiling.
"""

from __future__ import annotations

import torch

from srlab.bench.infer import flops_per_pixel, padded_pixels, test_image
from srlab.bench.utils import interleave, median, spread
from srlab.config import TILE_PAD, model_names, model_net_config
from srlab.errors import SRLabError, first_line
from srlab.infer import SRGenerator, build_net, load_generator, to_device, upscale_array
from srlab.infer.efficiency import efficiency

NETS = ("esrgan", "srvgg", "edsr", "msrresnet", "swinir_light", "swinir")  # conf/model names; esrgan = RRDBNet 23 blocks
INPUT = 250  # x4 -> a 1000x1000 output
TILE = 128


def _generator(model: str) -> SRGenerator:
    """A ``conf/model`` name's x4 net with seeded random weights, or stored weights (a shipped name, a file)."""
    if model not in model_names():
        return load_generator(model, device="cpu")  # what upscale --weights MODEL runs, its scale included
    cfg = model_net_config(model, scale=4)
    torch.manual_seed(0)
    return to_device(SRGenerator(build_net(cfg, "bench"), 4, cfg).eval().requires_grad_(False), "cpu")


def _backends(gen: SRGenerator) -> tuple[dict[str, object], str | None]:
    """(backend -> generator, why onnxruntime is left out or None)."""
    from srlab.infer.onnx import onnx_generator, require

    try:
        require("bench onnxruntime")
    except SRLabError:  # no deploy extra: torch only
        return {"torch": gen}, None
    try:
        onnx = onnx_generator(gen)
    except Exception as exc:  # noqa: BLE001 - a net ONNX cannot express: its torch row still counts
        return {"torch": gen}, f"not run: ONNX export failed ({type(exc).__name__}: {first_line(exc, 100)})"
    try:  # an odd size, unlike the export's example: a graph that baked in its shapes fails here, not mid-run
        upscale_array(onnx, test_image(2 * TILE_PAD + 9, 2 * TILE_PAD + 13), 0)
    except Exception as exc:  # noqa: BLE001
        return {"torch": gen}, ("not run: the ONNX graph fails on other input sizes "
                                f"({type(exc).__name__}: {first_line(exc, 100)})")
    return {"torch": gen, "onnxruntime": onnx}, None


def run(device: torch.device, ceiling: dict | None, quick: bool, models: tuple[str, ...] | None = None) -> list[dict]:
    """Seconds per 1000x1000 output for every net and backend (CPU only: the GPU runs ``speed``).

    ``models``: conf/model names or stored weights (default :data:`NETS`, its first two with
    ``quick``: names given are all run); stored weights run at their own scale. GFLOP/s counts the
    work the tiles do: FLOPs per LR pixel (from the MACs of a 256x256 forward) times the padded
    pixels of the tile grid.
    """
    if device.type != "cpu":
        return []
    img = test_image(INPUT, INPUT)
    work_px = padded_pixels(INPUT, INPUT, TILE, TILE_PAD)
    rows = []
    for model in models or (NETS[:2] if quick else NETS):
        gen = _generator(model)
        cost = efficiency(gen, gen.scale, measure_speed=False)
        fpp = 2 * cost["macs_256"] / 256**2 if cost["macs_256"] else flops_per_pixel(gen, device)
        backends, onnx_skipped = _backends(gen)
        fns = {name: (lambda g=g: upscale_array(g, img, TILE, TILE_PAD)) for name, g in backends.items()}
        for backend, ts in interleave(fns, reps=1 if quick else 2, device=device, warmup=0).items():
            secs = median(ts)
            row = {"model": model, "net": type(gen.net).__name__, "backend": backend, "s": secs,
                   "spread": spread(ts), "params_m": cost["params"] / 1e6,
                   "macs_256_g": (cost["macs_256"] or 0) / 1e9, "ms_per_mp": secs * 1e3 / ((gen.scale * INPUT) ** 2 / 1e6),
                   "gflops": fpp * work_px / secs / 1e9}  # fmt: skip
            if ceiling:
                row["fraction_of_conv_ceiling"] = row["gflops"] / ceiling["conv_ceiling_gflops"]
            rows.append(row)
        if onnx_skipped:
            rows.append({"model": model, "net": type(gen.net).__name__, "backend": "onnxruntime",
                         "params_m": cost["params"] / 1e6, "skipped": onnx_skipped})
    return rows


def table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "", f"Every x4 generator on a {INPUT}x{INPUT} input (a {4 * INPUT}x{4 * INPUT} output), tile {TILE}, "
        f"pad {TILE_PAD}, fp32, conf/model nets with random weights, stored ones (shipped names, files) with "
        "their own at their own scale; onnxruntime runs the graph of `srlab.export --onnx`. GMACs: one "
        "forward on a 256x256 LR, as model cards count them; ms/MP: this run's wall time per output megapixel; "
        "GFLOP/s: the FLOPs of the padded tiles over that time:", "",
        "| model | net | params M | GMACs (256² LR) | backend | s (min-max) | ms/MP | GFLOP/s | of conv ceiling |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['net']} | {r['params_m']:.2f} | | {r['backend']} | | | | "
                         f"{r['skipped']} |")
            continue
        frac = f"{r['fraction_of_conv_ceiling']:.0%}" if "fraction_of_conv_ceiling" in r else "n/a"
        macs = f"{r['macs_256_g']:.1f}" if "macs_256_g" in r else "n/a"  # rows of reports before the column
        ms = f"{r['ms_per_mp']:.0f}" if "ms_per_mp" in r else "n/a"
        lines.append(f"| {r['model']} | {r['net']} | {r['params_m']:.2f} | {macs} | {r['backend']} | {r['s']:.3g} "
                     f"({r['spread']}) | {ms} | {r['gflops']:.1f} | {frac} |")  # fmt: skip
    return lines
