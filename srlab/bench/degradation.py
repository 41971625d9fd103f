"""Section ``degradation``: the Real-ESRGAN degradation's share of a training step.

Each model is composed as ``python -m srlab.train model=NAME data/degradation=realesrgan`` (bench
batch and patch, VGG random, sample photos). Batches are drawn once by the real dataset (kernels
and parameters: the workers' part) and replayed from memory, so the loader does not mix into the
step; ``Trainer.fit`` then runs them through ``on_after_batch_transfer``, where the batch is
degraded on its device. Reported per model:

- ``step``: seconds per batch of ``Trainer.fit`` with the degradation inside (median);
- ``degrade``: seconds of the on-device degradation alone on the same batches (median, timed
  between the steps' blocks, so the same machine load hits both);
- ``share``: degrade / step, the fraction of the step spent degrading (target under 10%); also
  in CPU time of this process (``time.process_time``), which other processes' load on a shared
  machine distorts far less than wall-clock time;
- ``draw``: the workers' seconds per batch to crop and draw kernels and parameters; in parallel
  workers, so it costs a step only when the loader is the bottleneck (``of a core``: that time at
  the step's pace, the fraction of one CPU core it takes).
"""

from __future__ import annotations

import time

import hydra
import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.utils.data import DataLoader, default_collate

from srlab.bench.train import StepTimer, compose_config, make_trainer, quiet_lightning
from srlab.bench.utils import median, spread, sync
from srlab.train import build_model

MODELS = ("realesrnet", "realesrgan")


def _draw_batches(cfg, n: int) -> tuple[list[dict], list[float], object]:
    """``n`` collated batches drawn by the real training dataset, the seconds each took, and the data module."""
    dm = hydra.utils.instantiate(cfg.data, _convert_="all", num_workers=0, samples_per_epoch=10_000)
    dm.prepare_data()
    dm.setup("fit")
    bs, batches, seconds = int(cfg.data.batch_size), [], []
    for b in range(n):
        start = time.perf_counter()
        batches.append((dm.collate or default_collate)([dm.train_set[b * bs + i] for i in range(bs)]))
        seconds.append(time.perf_counter() - start)
    return batches, seconds, dm


class _CpuStepTimer(StepTimer):
    """:class:`StepTimer` that also records this process's CPU time at every batch start and at the end."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device, flops_batch=None)
        self.cpu: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        self.cpu.append(time.process_time())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.cpu_end = time.process_time()

    def cpu_times(self, skip: int = 1) -> list[float]:
        bounds = self.cpu + [self.cpu_end]
        return [b - a for a, b in zip(bounds[:-1], bounds[1:])][skip:]


def _degrade_times(dm, batches: list[dict], device: torch.device) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the on-device degradation of each batch."""
    wall, cpu = [], []
    for batch in batches:
        batch = move_data_to_device(batch, device)  # as Lightning moves it: the host lists stay
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        dm.batch_degradation(batch, training=True)
        sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def run(device: torch.device, quick: bool = False, models: tuple[str, ...] = MODELS,
        overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Step, degradation and draw seconds per batch, and the degradation's share, for every model."""
    quiet_lightning()
    n = 2 if quick else 4
    rows = []
    for name in models:
        cfg = compose_config(name, device, ["data=samples", "data/degradation=realesrgan", *overrides])
        L.seed_everything(0, verbose=False)
        batches, draw, dm = _draw_batches(cfg, n + 1)
        model = build_model(cfg)
        model.batch_degradation = dm.batch_degradation
        degrade, degrade_cpu = _degrade_times(dm, batches[1:], device)  # the first batch warms caches, as the step's
        timer = _CpuStepTimer(device)
        make_trainer(cfg, timer, n + 1).fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
        steps, steps_cpu = timer.step_times(skip=1), timer.cpu_times(skip=1)
        after, after_cpu = _degrade_times(dm, batches[1:], device)
        degrade, degrade_cpu = degrade + after, degrade_cpu + after_cpu
        step, deg = median(steps), median(degrade)
        rows.append({"model": name, "batch": int(cfg.data.batch_size), "patch": int(cfg.data.patch_size),
                     "crop": int(batches[0]["gt"].shape[-1]), "s_per_step": step, "step_spread": spread(steps),
                     "degrade_s": deg, "degrade_spread": spread(degrade), "share": deg / step,
                     "cpu_s_per_step": median(steps_cpu), "cpu_degrade_s": median(degrade_cpu),
                     "cpu_share": median(degrade_cpu) / median(steps_cpu),
                     "draw_s": median(draw), "draw_core_fraction": median(draw) / step})
        del model
    return {"rows": rows, "overrides": list(overrides), "device": str(device)}


def table(result: dict) -> list[str]:
    lines = [
        "`data.degradation=realesrgan` (Real-ESRGAN's defaults), sample photos; step = one batch of `Trainer.fit` "
        "with the on-device degradation inside; degrade = that degradation alone; draw = the loader's "
        "per-batch kernel and parameter draws (parallel workers). Medians (min-max).",
        "",
        "| model | batch | patch (crop) | s/step | degrade s | share of step | CPU s/step | CPU degrade s | share of CPU "
        "| draw s/batch | draw, of a core |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if result.get("overrides"):
        lines[1:1] = ["", "Overrides: " + " ".join(f"`{o}`" for o in result["overrides"]) + "."]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['batch']} | {r['patch']} ({r['crop']}) | {r['s_per_step']:.3f} "
                     f"({r['step_spread']}) | {r['degrade_s']:.3f} ({r['degrade_spread']}) | {r['share']:.1%} | "
                     f"{r['cpu_s_per_step']:.3f} | {r['cpu_degrade_s']:.3f} | {r['cpu_share']:.1%} | "
                     f"{r['draw_s']:.3f} | {r['draw_core_fraction']:.0%} |")
    return lines
