"""Sections ``overhead`` and ``profile``: the ESRGAN step under Lightning vs a bare loop, and where its time goes.

``overhead``: the same module (same nets, losses, EMA) trained alternately by ``Trainer.fit``
over N synthetic batches and by the bare PyTorch loop of :mod:`srlab.bench.plain` over N
batches, a few rounds in alternating order; ratio = bare-loop step / Lightning step (1.0 = no
overhead; the target is >= 0.95). The first batch of every block is not timed.

``profile``: one bare-loop ESRGAN step split into phases (wall clock, GPU synchronised at every
boundary), VGG and D forwards timed by hooks, and the top operators of ``torch.profiler``.
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch.profiler import ProfilerActivity, profile

from srlab.bench.plain import PlainStep
from srlab.bench.train import compose_config, lightning_steps, quiet_lightning, synthetic_batches
from srlab.bench.utils import median, spread, timed
from srlab.train import build_model


def _esrgan(device: torch.device):
    quiet_lightning()
    cfg = compose_config("esrgan", device)
    L.seed_everything(0, verbose=False)
    return cfg, build_model(cfg)


def overhead(device: torch.device, quick: bool = False) -> dict:
    """Median step of Trainer.fit vs the bare loop on the same ESRGAN module, and their ratio."""
    cfg, model = _esrgan(device)
    n, rounds = (2, 1) if quick else (2, 4)
    plain = PlainStep(model, device, autocast_dtype=torch.bfloat16 if "bf16" in str(cfg.trainer.precision) else None)
    batches = synthetic_batches(cfg, n + 1, device)
    times: dict[str, list[float]] = {"lightning": [], "plain": []}
    round_ratios = []
    for r in range(rounds):
        block: dict[str, list[float]] = {}
        for kind in ("lightning", "plain") if r % 2 == 0 else ("plain", "lightning"):
            if kind == "lightning":
                block[kind] = lightning_steps(cfg, model, n, device, flops=False)[0]
            else:
                model.to(device).train()  # Trainer.fit's teardown moved it back to the CPU
                block[kind] = []
                for i, batch in enumerate(batches):
                    secs = timed(lambda b=batch: plain(b), device)
                    if i:  # the first of a block is not timed, as for Lightning
                        block[kind].append(secs)
            times[kind] += block[kind]
        round_ratios.append(median(block["plain"]) / median(block["lightning"]))
    ratio = median(times["plain"]) / median(times["lightning"])
    return {"lightning_s": median(times["lightning"]), "lightning_spread": spread(times["lightning"]),
            "plain_s": median(times["plain"]), "plain_spread": spread(times["plain"]), "ratio": ratio,
            "round_ratios": round_ratios, "ratio_paired": median(round_ratios),
            "steps_each": len(times["plain"]), "batch": int(cfg.data.batch_size),
            "precision": str(cfg.trainer.precision)}


def overhead_table(r: dict) -> list[str]:
    return [
        f"ESRGAN, batch {r['batch']}, {r['precision']}, {r['steps_each']} timed steps each, alternating blocks.", "",
        "| loop | s/step (min-max) |", "|---|---:|",
        f"| srlab AdversarialModule in `Trainer.fit` | {r['lightning_s']:.3f} ({r['lightning_spread']}) |",
        f"| bare PyTorch loop, same nets and losses | {r['plain_s']:.3f} ({r['plain_spread']}) |",
        "", f"Ratio bare / Lightning: **{r['ratio']:.3f}** from the medians; per round (adjacent blocks) "
        f"{', '.join(f'{x:.3f}' for x in r['round_ratios'])}, median **{r['ratio_paired']:.3f}** (target >= 0.95).",
    ]


def _forward_timer(store: dict, key: str, device: torch.device):
    def pre(module, args):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        store.setdefault("_start", {})[key] = time.perf_counter()

    def post(module, args, out):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        store[key] = store.get(key, 0.0) + time.perf_counter() - store["_start"][key]

    return pre, post


def profile_step(device: torch.device, quick: bool = False) -> dict:
    """Phase times (median of 2 steps after a warm-up) and the top operators of one profiled step."""
    cfg, model = _esrgan(device)
    plain = PlainStep(model, device)
    batch = synthetic_batches(cfg, 1, device)[0]
    plain(batch)
    plain.timing = True
    hooked: dict = {}
    handles = []
    for key, mod in (("VGG forward (sr and gt)", model.perceptual_loss), ("D forward (all 4)", model.discriminator)):
        pre, post = _forward_timer(hooked, key, device)
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    runs: list[dict] = []
    for _ in range(1 if quick else 2):
        hooked.clear()
        total = timed(lambda: plain(batch), device)
        runs.append({**plain.phases, **{k: v for k, v in hooked.items() if k != "_start"}, "total": total})
    for h in handles:
        h.remove()
    plain.timing = False
    phases = {k: median([r.get(k, 0.0) for r in runs]) for k in runs[0]}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        plain(batch)
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, sort), reverse=True)
    total_self = sum(getattr(e, sort) for e in events) or 1.0
    top = [{"op": e.key, "calls": e.count, "self_ms": getattr(e, sort) / 1e3, "share": getattr(e, sort) / total_self}
           for e in events[:12]]
    return {"phases": phases, "top_ops": top, "batch": int(cfg.data.batch_size)}


def profile_table(r: dict) -> list[str]:
    total = r["phases"]["total"]
    lines = [f"One bare-loop ESRGAN step, batch {r['batch']} (phases sum to less than the total: Python glue).", "",
             "| phase | s | share |", "|---|---:|---:|"]
    for k, v in r["phases"].items():
        if k != "total":
            lines.append(f"| {k} | {v:.3f} | {v / total:.1%} |")
    lines += [f"| **step total** | {total:.3f} | 100% |", "",
              "Top operators by self time (torch.profiler, one step):", "",
              "| operator | calls | self ms | share |", "|---|---:|---:|---:|"]
    lines += [f"| `{o['op']}` | {o['calls']} | {o['self_ms']:.0f} | {o['share']:.1%} |" for o in r["top_ops"]]
    return lines
