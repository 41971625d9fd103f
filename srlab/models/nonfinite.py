"""Numerical faults in training: NaN/Inf losses and gradients stop the run or skip the batch.

The check runs on the device. Reading a flag on the host every batch (``if not torch.isfinite(loss)``)
waits for the GPU to finish the batch before the next one may be queued; on an H200 the per-step
checks alone cost an ESRGAN step 0.73x by medians. Here a non-finite value instead *masks* the
updates of its batch on the device, and the host reads the record only every ``log_every_n_steps``
batches and before a checkpoint is written.
"""

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


def gradient_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor | None:
    """Total L2 norm of the gradients of ``params`` (None when none has one); NaN/Inf when any gradient is."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


def loss_scaler_active(trainer: L.Trainer | None) -> bool:
    """True under fp16 AMP: its GradScaler produces Inf gradients on purpose and skips those steps itself."""
    plugin = getattr(trainer, "precision_plugin", None) if trainer is not None else None
    return getattr(plugin, "scaler", None) is not None


def nonfinite_message(what: str, batch: int, epoch: int) -> str:
    """The one-line ``stop`` message, naming what went non-finite and where."""
    return (f"non-finite {what} at batch {batch} (epoch {epoch}); the last checkpoint is untouched. "
            "Lower the learning rate or set model.on_nonfinite=skip")


def _torch_optimizer(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the torch one


class NonFiniteGuard:
    """The NaN/Inf policy of one training module, kept in device tensors.

    Each batch starts usable (:meth:`start_batch`); :meth:`check` folds ``isfinite`` of a loss or
    gradient norm into the batch's flag and records the first failure (batch, epoch, which value).
    :meth:`mask_step` hands the flag to a fused optimizer as ``found_inf`` (the path AMP's GradScaler
    uses), so a masked step leaves parameters, moments and step counts as they were; :meth:`usable`
    also masks the EMA update. ``skip`` counts masked batches on the device. ``stop`` masks every
    update from the first failure on and raises in :meth:`raise_if_stopped`, which the module calls
    every ``log_every_n_steps`` batches, before any checkpoint is written and at the end of training:
    the weights, and the last checkpoint, are those from before the failing batch.

    Args:
        mode: ``stop`` or ``skip`` (``model.on_nonfinite``).
    """

    def __init__(self, mode: str) -> None:
        self.mode = check_nonfinite_mode(mode)
        self.names: list[str] = []  # bit i of ``first_bits`` is names[i]
        self.ok = self.first_batch = self.first_epoch = self.first_bits = None
        self.batch = self.epoch = 0

    def start_batch(self, device: torch.device, batch: int, epoch: int) -> None:
        """Begin batch number ``batch`` (of the whole run) in ``epoch``: it is usable until a check fails."""
        if self.ok is None or self.ok.device != device:
            self.ok = torch.ones((), dtype=torch.bool, device=device)
            self.first_batch = torch.full((), -1, dtype=torch.long, device=device)
            self.first_epoch = torch.full((), -1, dtype=torch.long, device=device)
            self.first_bits = torch.zeros((), dtype=torch.long, device=device)
        self.ok.fill_(True)
        self.batch, self.epoch = batch, epoch

    def _bit(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return 1 << self.names.index(name)

    def check(self, what: str, value: torch.Tensor | None, parts: dict | None = None) -> None:
        """Fold ``isfinite(value)`` into the batch's flag; no host sync.

        Args:
            what: name for the message, e.g. ``loss`` or ``generator gradient norm``.
            value: scalar tensor (None: nothing to check, e.g. no parameter has a gradient).
            parts: the terms ``value`` sums, by name; the message names the non-finite ones instead of ``what``.
        """
        if value is None:
            return
        finite = torch.isfinite(value.detach())
        bits = torch.zeros((), dtype=torch.long, device=self.ok.device)
        for name, part in (parts or {}).items():
            bits = bits + torch.where(torch.isfinite(part.detach()), 0, self._bit(name))
        bits = torch.where(bits == 0, self._bit(what), bits)
        first = ~finite & (self.first_batch < 0)
        self.first_bits.copy_(torch.where(first, bits, self.first_bits))
        self.first_epoch.copy_(torch.where(first, self.epoch, self.first_epoch))
        self.first_batch.copy_(torch.where(first, self.batch, self.first_batch))
        self.ok &= finite

    def usable(self) -> torch.Tensor:
        """Device bool: may this batch update the weights (``stop``: and nothing failed before)?"""
        return self.ok & (self.first_batch < 0) if self.mode == "stop" else self.ok

    def mask_step(self, optimizer) -> None:
        """Make ``optimizer``'s next step a no-op unless :meth:`usable`; call :meth:`release` after it."""
        opt = _torch_optimizer(optimizer)
        if getattr(opt, "_step_supports_amp_scaling", False):  # fused Adam/AdamW/SGD: masked in the kernel
            opt.found_inf = (~self.usable()).float()
        elif not bool(self.usable()):  # others cannot take a device flag: one host check per step
            opt.zero_grad(set_to_none=True)  # the step leaves parameters without a gradient alone

    @staticmethod
    def release(optimizer) -> None:
        """Forget the mask, so that nothing else (e.g. a GradScaler) finds it."""
        _torch_optimizer(optimizer).__dict__.pop("found_inf", None)

    def end_batch(self, skipped: torch.Tensor) -> None:
        """Add this batch to the ``skipped`` counter (a device tensor) when ``skip`` masked it."""
        if self.mode == "skip" and self.ok is not None:
            skipped += (~self.ok).long()

    def raise_if_stopped(self) -> None:
        """Host read (one sync): under ``stop``, raise the one-line message of the first failure."""
        if self.mode != "stop" or self.first_batch is None:
            return
        batch, epoch, bits = torch.stack([self.first_batch, self.first_epoch, self.first_bits]).tolist()
        if batch < 0:
            return
        what = ", ".join(name for i, name in enumerate(self.names) if bits >> i & 1)
        raise SRLabError(nonfinite_message(what, batch, epoch))

    def read_due(self, trainer: L.Trainer, batch_idx: int) -> bool:
        """True on every ``log_every_n_steps``-th batch of an epoch (when Lightning's logs sync anyway)."""
        return (batch_idx + 1) % max(1, trainer.log_every_n_steps) == 0
