"""Numerical faults in training: NaN/Inf losses and gradients stop the run or skip the batch."""

from __future__ import annotations

from typing import Iterable

import lightning as L
import torch

from srlab.errors import ConfigError, SRLabError

NONFINITE_MODES = ("stop", "skip")


def check_nonfinite_mode(mode: str) -> str:
    """Return ``mode`` if it is ``stop`` or ``skip``; else raise naming ``model.on_nonfinite``."""
    if mode not in NONFINITE_MODES:
        raise ConfigError(f"model.on_nonfinite={mode!r}: use 'stop' or 'skip'")
    return mode


def gradient_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """Total L2 norm of the gradients of ``params`` (0 when none has one); NaN/Inf when any gradient is."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


def loss_scaler_active(trainer: L.Trainer | None) -> bool:
    """True under fp16 AMP: its GradScaler produces Inf gradients on purpose and skips those steps itself."""
    plugin = getattr(trainer, "precision_plugin", None) if trainer is not None else None
    return getattr(plugin, "scaler", None) is not None


def nonfinite_message(what: str, batch: int, epoch: int) -> str:
    """The one-line ``stop`` message, naming what went non-finite and where."""
    return (f"non-finite {what} at batch {batch} (epoch {epoch}); the last checkpoint is untouched. "
            "Lower the learning rate or set model.on_nonfinite=skip")


def finite_or_handle(
    module: L.LightningModule, what: str, value: torch.Tensor, batch: int, parts: dict | None = None
) -> bool:
    """True when ``value`` is finite; else raise (``stop``) or count one skipped batch (``skip``).

    Args:
        module: has ``on_nonfinite`` and a ``batches_skipped`` buffer.
        what: name for the message, e.g. ``loss`` or ``generator gradient norm``.
        value: scalar tensor to check.
        batch: batch number for the message.
        parts: the terms ``value`` sums, by name; the message names the non-finite ones instead of ``what``.
    """
    if bool(torch.isfinite(value)):
        return True
    if module.on_nonfinite == "stop":
        bad = [k for k, v in (parts or {}).items() if not bool(torch.isfinite(v))] or [what]
        raise SRLabError(nonfinite_message(", ".join(bad), batch, module.current_epoch))
    module.batches_skipped += 1
    module.log("train/skipped_batches", module.batches_skipped.float(), on_step=True)
    return False
