"""A W&B run's summary on its best validation, so a dashboard compares runs at their best."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from srlab.data.val_sets import val_set_metric_names
from srlab.metrics import lower_is_better
from srlab.runs.naming import shown_path


class BestInSummary(L.Callback):
    """Keeps a W&B run's summary on its best validation: best PSNR/SSIM/LPIPS/DISTS, their step and the best checkpoint.

    W&B's summary holds a metric's last value unless told otherwise; a dashboard that compares
    runs wants the best. ``val/psnr``, ``val/ssim`` and every metric of the ``data.val_sets``
    benchmarks (``val/<set>/psnr_y`` ...) are defined with ``summary="max"``, the distances
    (``val/<set>/lpips``, ``lpips_vgg``, ``dists``) with ``summary="min"``, and the checkpoint's
    monitor with its mode; ``best/step`` and ``best/epoch`` say when the monitored metric peaked and
    ``best/checkpoint`` is the file the checkpoint callback kept for it, relative to the folder the
    run was started in.

    Args:
        metrics: validation metrics whose summary is their best (the minimum for a distance).
    """

    def __init__(self, metrics: tuple[str, ...] | list[str] = ("val/psnr", "val/ssim")) -> None:
        self.metrics = list(metrics)
        self.best: float | None = None
        self.step = self.epoch = -1

    @staticmethod
    def _monitor(trainer: L.Trainer) -> ModelCheckpoint | None:
        return next((cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)), None)

    @staticmethod
    def _runs(trainer: L.Trainer) -> list:
        return [lg.experiment for lg in trainer.loggers if isinstance(lg, WandbLogger)]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        ckpt = self._monitor(trainer)
        sets = [{"name": b.spec.name, "metrics": b.spec.metrics}
                for b in getattr(trainer.datamodule, "val_benchmarks", None) or []]
        named = [*self.metrics, *(m for m in val_set_metric_names(sets) if not m.endswith("_bicubic"))]
        summaries = {metric: "min" if lower_is_better(metric) else "max" for metric in named}
        if ckpt is not None:
            summaries[ckpt.monitor] = ckpt.mode
        for run in self._runs(trainer):
            for metric, summary in summaries.items():
                run.define_metric(metric, summary=summary)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = self._monitor(trainer)
        value = trainer.callback_metrics.get(ckpt.monitor) if ckpt else None
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is None or (value > self.best if ckpt.mode == "max" else value < self.best):
            self.best, self.step, self.epoch = value, trainer.global_step, trainer.current_epoch
            self._write(trainer, {"best/step": self.step, "best/epoch": self.epoch})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the checkpoint callbacks save after this callback's validation hook: the final best file is known now
        ckpt = self._monitor(trainer)
        if ckpt is not None and ckpt.best_model_path:
            self._write(trainer, {"best/checkpoint": shown_path(ckpt.best_model_path)})

    def _write(self, trainer: L.Trainer, values: dict) -> None:
        if trainer.is_global_zero:
            for run in self._runs(trainer):
                run.summary.update(values)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "step": self.step, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.step, self.epoch = state_dict["best"], state_dict["step"], state_dict["epoch"]
