"""A training budget in time rather than steps: stop when it is spent, anneal the learning rate over it."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L

from srlab.errors import ConfigError

CLOCKS = ("wall", "cpu")
ANNEALS = ("cosine", "linear", "none")


def _now(clock: str) -> float:
    # cpu: seconds this process ran on a core (all its threads); other processes on a shared
    # machine do not spend it, so runs compared at equal cpu budgets got equal compute
    return time.process_time() if clock == "cpu" else time.monotonic()


def annealed(anneal: str, fraction: float, final: float) -> float:
    """The learning-rate factor ``fraction`` of the way through the budget: 1 at the start, ``final`` at the end."""
    fraction = min(max(fraction, 0.0), 1.0)
    if anneal == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * fraction))
    if anneal == "linear":
        return 1.0 + (final - 1.0) * fraction
    return 1.0


class TrainingBudget(L.Callback):
    """Trains for ``minutes`` of training time (validation not counted), whatever the step count.

    The learning rate of every optimizer group follows ``anneal`` from its configured value down to
    ``final_lr_factor`` times it at the end of the budget, so a fast net and a slow one both finish
    their schedule: the way to compare architectures at equal time. The time spent is saved in the
    checkpoint, so a resumed run spends only what is left.

    Args:
        minutes: the budget.
        clock: ``wall`` (time as on a clock) or ``cpu`` (this process's CPU time, all threads: under
            ``OMP_NUM_THREADS=1`` with ``data.num_workers=0`` it is the wall time the run takes alone
            on one core, also on a machine shared with other work).
        anneal: ``cosine``, ``linear`` or ``none`` (keep the model's own scheduler).
        final_lr_factor: the learning rate at the end, as a fraction of the start.
    """

    def __init__(self, minutes: float, clock: str = "wall", anneal: str = "cosine",
                 final_lr_factor: float = 0.01) -> None:
        if not isinstance(minutes, (int, float)) or minutes <= 0:
            raise ConfigError(f"callbacks.training_budget.minutes={minutes!r} must be a number > 0")
        if clock not in CLOCKS:
            raise ConfigError(f"callbacks.training_budget.clock={clock!r} must be one of {', '.join(CLOCKS)}")
        if anneal not in ANNEALS:
            raise ConfigError(f"callbacks.training_budget.anneal={anneal!r} must be one of {', '.join(ANNEALS)}")
        self.budget_s = 60.0 * minutes
        self.clock = clock
        self.anneal = anneal
        self.final_lr_factor = final_lr_factor
        self.spent_s = 0.0
        self._mark: float | None = None
        self._base_lrs: list[list[float]] = []

    @property
    def fraction(self) -> float:
        return self.spent_s / self.budget_s

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.anneal != "none" and trainer.lr_scheduler_configs:
            raise ConfigError("callbacks.training_budget.anneal sets the learning rate over the budget: "
                              "set model.scheduler=null (and model.scheduler_d=null), or anneal=none")
        if not self._base_lrs:  # a resumed run keeps the rates it started from, not the annealed ones
            self._base_lrs = [[g["lr"] for g in opt.param_groups] for opt in trainer.optimizers]
        self._set_lrs(trainer)
        self._mark = _now(self.clock)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._spend()
        pl_module.log("budget/fraction", self.fraction)
        if self.fraction >= 1.0:
            trainer.should_stop = True  # Lightning validates once more before it stops
        self._set_lrs(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._spend()
        self._mark = None  # validation is not training time

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = _now(self.clock)

    def _spend(self) -> None:
        if self._mark is not None:
            now = _now(self.clock)
            self.spent_s += now - self._mark
            self._mark = now

    def _set_lrs(self, trainer: L.Trainer) -> None:
        if self.anneal == "none":
            return
        factor = annealed(self.anneal, self.fraction, self.final_lr_factor)
        for opt, bases in zip(trainer.optimizers, self._base_lrs):
            for group, base in zip(opt.param_groups, bases):
                group["lr"] = base * factor

    def state_dict(self) -> dict[str, Any]:
        return {"spent_s": self.spent_s, "base_lrs": self._base_lrs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.spent_s = float(state_dict["spent_s"])
        self._base_lrs = state_dict["base_lrs"]
