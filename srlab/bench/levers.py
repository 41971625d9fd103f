"""Section ``levers``: A/B measurements of the speed levers, interleaved in one run (slow; run by hand).

Training levers run the bare-loop step (:mod:`srlab.bench.plain`) of one model built from its
config, once per variant (same seed, same weights), and time the variants alternately:

- ``baseline``: the config as it is;
- ``channels_last``: every net (G, D, VGG, EMA) and the batch in channels_last memory format;
- ``for_loop`` / ``foreach`` / ``fused``: Adam's three implementations (``foreach=False, fused=False`` /
  ``foreach=True`` / ``fused=True``), whatever the config says;
- ``finite_checks``: plus the module's per-step ``bool(torch.isfinite(loss))`` host reads;
- ``bf16``: forward passes under bf16 autocast;
- ``compile``: ``torch.compile`` of the generator (compile time reported separately);
- ``cl_bf16``, ``cl_fused``, ``cl_compile``: channels_last combined with the other lever.

Inference levers time the forward of one padded tile of RRDBNet x4 (23 blocks):

- ``nchw``: the plain layout under ``torch.inference_mode``;
- ``channels_last``: the input tile in channels_last (what ``upscale_array`` does on a CPU);
- ``channels_last_no_grad``: the same under ``torch.no_grad`` (as Real-ESRGAN) instead;
- ``compile``: ``torch.compile`` with inductor weight freezing, channels_last (compile time reported);
- ``bf16``, ``bf16_compile``: the net loaded in bf16 as ``srlab.upscale --precision bf16`` loads it
  (channels_last, autocast), eager and compiled like ``compile``.
"""

from __future__ import annotations

import time
from typing import Callable

import lightning as L
import torch

from srlab.bench.infer import flops_per_pixel, rrdbnet_x4
from srlab.config import TILE_PAD
from srlab.bench.plain import PlainStep
from srlab.bench.train import compose_config, synthetic_batches
from srlab.bench.utils import interleave, median, paired_speedup, spread
from srlab.train import build_model

TRAIN_LEVERS = ("baseline", "channels_last", "for_loop", "foreach", "fused", "finite_checks", "bf16")
OPTIONAL_TRAIN_LEVERS = ("compile", "cl_bf16", "cl_fused", "cl_compile")  # run only when named
INFER_LEVERS = ("nchw", "channels_last", "channels_last_no_grad")
OPTIONAL_INFER_LEVERS = ("compile", "bf16", "bf16_compile")  # run only when named
CL = torch.channels_last


def _variant(name: str, cfg, device: torch.device) -> tuple[Callable[[dict], None], bool]:
    """(step function, wants channels_last batches) of one lever."""
    L.seed_everything(0, verbose=False)
    module = build_model(cfg)
    kwargs: dict = {}
    cl = name == "channels_last" or name.startswith("cl_")
    if cl:
        module = module.to(memory_format=CL)
    if name == "foreach":
        kwargs["optimizer_kwargs"] = {"foreach": True, "fused": False}
    if name in ("fused", "cl_fused"):
        kwargs["optimizer_kwargs"] = {"fused": True}
    if name == "for_loop":
        kwargs["optimizer_kwargs"] = {"foreach": False, "fused": False}
    if name == "finite_checks":
        kwargs["finite_checks"] = True
    if name in ("bf16", "cl_bf16"):
        kwargs["autocast_dtype"] = torch.bfloat16
    if name in ("compile", "cl_compile"):
        module.generator = torch.compile(module.generator)
    return PlainStep(module, device, **kwargs), cl


def train_levers(device: torch.device, model: str = "esrgan", levers: tuple[str, ...] = TRAIN_LEVERS,
                 reps: int = 3, extra: list[str] | None = None) -> dict:
    """Median step time of each lever's variant, and its speed relative to ``baseline``."""
    cfg = compose_config(model, device, extra)
    batches = synthetic_batches(cfg, 2, device)
    cl_batches = [{k: v.contiguous(memory_format=CL) if torch.is_tensor(v) else v for k, v in b.items()}
                  for b in batches]
    fns, first_call = {}, {}
    for name in levers:
        step, cl = _variant(name, cfg, device)
        data, counter = (cl_batches if cl else batches), iter(range(10**9))

        def call(step=step, data=data, counter=counter) -> None:
            step(data[next(counter) % len(data)])

        start = time.perf_counter()
        call()  # first call: compile time for `compile`, lazy init for the others
        first_call[name] = time.perf_counter() - start
        fns[name] = call
    times = interleave(fns, reps=reps, device=device, warmup=1)
    base = median(times[levers[0]])
    base_min = min(times[levers[0]])
    rows = [{"lever": k, "s_per_step": median(v), "spread": spread(v), "speedup": base / median(v),
             "speedup_of_min": base_min / min(v), "speedup_paired": paired_speedup(times[levers[0]], v),
             "first_call_s": first_call[k]} for k, v in times.items()]
    return {"model": model, "batch": int(cfg.data.batch_size), "reps": reps, "rows": rows}


def table(result: dict) -> list[str]:
    lines = [f"Bare-loop {result['model']} step, batch {result['batch']}, {result['reps']} interleaved reps.", "",
             "| lever | s/step (min-max) | speed vs baseline: medians | minima | paired rounds | first call s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['lever']} | {r['s_per_step']:.3f} ({r['spread']}) | {r['speedup']:.2f}x | "
              f"{r['speedup_of_min']:.2f}x | {r['speedup_paired']:.2f}x | {r['first_call_s']:.1f} |"
              for r in result["rows"]]
    return lines


def infer_levers(device: torch.device, tile: int = 128, levers: tuple[str, ...] = INFER_LEVERS, reps: int = 3) -> dict:
    """Seconds per padded tile forward of each inference lever, and GFLOP/s."""
    gen = rrdbnet_x4(device, "fp32")
    side = tile + 2 * TILE_PAD
    x = torch.rand(1, 3, side, side, device=device)
    x_cl = x.contiguous(memory_format=CL)
    fpp = flops_per_pixel(gen, device)
    fns, first_call = {}, {}
    for name in levers:
        net, inp = gen, (x if name == "nchw" else x_cl)
        ctx = torch.no_grad if "no_grad" in name else torch.inference_mode
        if name.startswith("bf16"):
            net = rrdbnet_x4(device, "bf16")
        if name.endswith("compile"):
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # constant weights: prepacked oneDNN convs with fused activations
            net = torch.compile(net if name.startswith("bf16") else rrdbnet_x4(device, "fp32"))

        def call(net=net, inp=inp, ctx=ctx) -> None:
            with ctx():
                net(inp)

        start = time.perf_counter()
        call()
        first_call[name] = time.perf_counter() - start
        fns[name] = call
    times = interleave(fns, reps=reps, device=device, warmup=0)
    base = median(times[levers[0]])
    rows = [{"lever": k, "s_per_tile": median(v), "spread": spread(v), "speedup": base / median(v),
             "gflops": fpp * side * side / median(v) / 1e9, "first_call_s": first_call[k]} for k, v in times.items()]
    return {"tile": tile, "side": side, "reps": reps, "rows": rows}


def infer_table(result: dict) -> list[str]:
    lines = [f"RRDBNet x4 forward of one {result['side']}x{result['side']} tile ({result['tile']} + {TILE_PAD} pad "
             f"each side), {result['reps']} interleaved reps.", "",
             "| lever | s/tile (min-max) | speed vs first | GFLOP/s | first call s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['lever']} | {r['s_per_tile']:.3f} ({r['spread']}) | {r['speedup']:.2f}x | {r['gflops']:.1f} | "
              f"{r['first_call_s']:.1f} |" for r in result["rows"]]
    return lines
