"""The training step of srlab's modules written as a bare PyTorch loop: no Trainer, no logging.

Used as the yardstick of the framework-overhead section and by the lever experiments. It runs
the *same* networks and loss modules as the LightningModule (it calls its ``generator_losses``,
``pixel_loss``, ``adversarial_loss`` and ``update_ema``) in the same order: one generator forward,
generator step with D frozen, EMA, discriminator step on ``sr.detach()``, schedulers.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch
from torch import nn

from srlab.models.adversarial import AdversarialModule


def _scheduler(factory, optimizer):
    return factory(optimizer=optimizer) if factory is not None else None


class PlainStep:
    """Call it with a batch ``{"lq", "gt"}`` (already on the device) to run one training step.

    Args:
        module: a built srlab module (``RestorationModule`` or ``AdversarialModule``); its nets are trained in place.
        device: where the nets run.
        autocast_dtype: run forward passes under ``torch.autocast`` in this dtype (None = off).
        finite_checks: add the module's ``bool(torch.isfinite(loss))`` checks (host syncs on a GPU).
        optimizer_kwargs: extra optimizer arguments, e.g. ``{"foreach": True}`` or ``{"fused": True}``.

    Attributes:
        phases: with ``timing=True`` set, seconds per phase of the last call (GPU synchronised at
            every phase boundary, so only for the profile, not for step times).
    """

    def __init__(self, module: nn.Module, device: torch.device, autocast_dtype: torch.dtype | None = None,
                 finite_checks: bool = False, optimizer_kwargs: dict | None = None) -> None:
        self.m = module.to(device).train()
        self.device, self.autocast_dtype, self.finite_checks = device, autocast_dtype, finite_checks
        self.timing = False
        self.phases: dict[str, float] = defaultdict(float)
        kw = dict(optimizer_kwargs or {})
        self.adversarial = isinstance(module, AdversarialModule)
        self.opt_g = module.optimizer_factory(params=module.generator.parameters(), **kw)
        self.sched_g = _scheduler(module.scheduler_factory, self.opt_g)
        if self.adversarial:
            self.opt_d = module.optimizer_d_factory(params=module.discriminator.parameters(), **kw)
            self.sched_d = _scheduler(module.scheduler_d_factory, self.opt_d)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @contextlib.contextmanager
    def _phase(self, name: str):
        if not self.timing:
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.phases[name] += time.perf_counter() - start

    def _update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, net: str) -> None:
        """Check ``loss``, backpropagate it and step ``optimizer`` (phases "<net> backward" / "<net> optimizer")."""
        if self.finite_checks and not bool(torch.isfinite(loss)):
            raise FloatingPointError("non-finite loss")
        with self._phase(f"{net} backward"):
            loss.backward()
        with self._phase(f"{net} optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def __call__(self, batch: dict) -> None:
        m, lq, gt, phase = self.m, batch["lq"], batch["gt"], self._phase
        self.phases.clear()
        if self.finite_checks and hasattr(m, "batches_seen"):
            int(m.batches_seen)  # the module reads its batch counter every step
        with phase("G forward"), self._autocast():
            sr = m.generator(lq)  # (B, 3, H, W)
        if not self.adversarial:
            with phase("G loss forward"), self._autocast():
                loss = m.pixel_loss(sr, gt)
            self._update(loss, self.opt_g, "G")
            with phase("EMA + schedulers"):
                m.update_ema()
                if self.sched_g is not None:
                    self.sched_g.step()
            return
        m.discriminator.requires_grad_(False)
        with phase("G loss forward (pixel, VGG, D)"), self._autocast():
            parts = m.generator_losses(sr, gt, adversarial=True)
            g_loss = torch.stack(list(parts.values())).sum()
        self._update(g_loss, self.opt_g, "G")
        m.discriminator.requires_grad_(True)
        with phase("EMA + schedulers"):
            m.update_ema()
        with phase("D forward (D step)"), self._autocast():
            d_loss = m.adversarial_loss.discriminator_loss(m.discriminator(gt), m.discriminator(sr.detach()))
        self._update(d_loss, self.opt_d, "D")
        with phase("EMA + schedulers"):
            for sched in (self.sched_g, self.sched_d):
                if sched is not None:
                    sched.step()
