"""One adversarial training step for vanilla GAN, SRGAN and ESRGAN (manual optimization).

The three GANs differ only by the networks, losses and weights their configs plug in here.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from srlab.models.base import HPARAMS_IGNORE, SRModule
from srlab.models.nonfinite import NonFiniteGuard, gradient_norm, loss_scaler_active
from srlab.weights import load_discriminator_weights


class AdversarialModule(SRModule):
    """Generator + discriminator training with one generator forward per batch.

    Per batch: the generator step (pixel + perceptual + adversarial loss, D frozen), then the
    discriminator step on ``sr.detach()``. Warm-up and D frequency count *batches* (a buffer
    saved in checkpoints), not ``global_step``, which advances once per optimizer step: two per
    batch once D trains, so ``trainer.max_steps`` is about twice the number of batches.

    Args:
        generator: maps ``lq`` to ``sr``.
        discriminator: maps an image batch to logits (B, 1), or per pixel (B, 1, H, W).
        adversarial_loss: object with ``generator_loss(real, fake)`` and ``discriminator_loss(real, fake)``.
        optimizer_g: partial optimizer for the generator.
        optimizer_d: partial optimizer for the discriminator.
        scheduler_g: partial LR scheduler for G (stepped every batch) or None.
        scheduler_d: partial LR scheduler for D or None.
        pixel_loss: pixel criterion or None.
        perceptual_loss: VGG feature criterion or None.
        loss_weights: ``pixel``, ``perceptual``, ``adversarial`` multipliers.
        generator_warmup_batches: batches of generator-only (pixel/perceptual) training before D joins.
        d_update_every: train D on every N-th batch.
        gradient_clip_val: clip each network's gradient norm to this (None = off).
        on_nonfinite: on a NaN/Inf loss or gradient norm, ``stop`` (raise, naming it and the batch) or
            ``skip`` (mask both networks' updates and the EMA's for the batch, count it); see :class:`SRModule`.
        discriminator_init: weights to start the discriminator from (an srlab checkpoint, or a
            BasicSR/Real-ESRGAN file such as ``RealESRGAN_x4plus_netD.pth``), to fine-tune both nets.
        **kwargs: everything :class:`SRModule` takes.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        adversarial_loss: nn.Module,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        scheduler_g: Callable[..., Any] | None = None,
        scheduler_d: Callable[..., Any] | None = None,
        pixel_loss: nn.Module | None = None,
        perceptual_loss: nn.Module | None = None,
        loss_weights: dict | None = None,
        generator_warmup_batches: int = 0,
        d_update_every: int = 1,
        gradient_clip_val: float | None = None,
        on_nonfinite: str = "stop",
        discriminator_init: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, optimizer=optimizer_g, scheduler=scheduler_g,
                         on_nonfinite=on_nonfinite, **kwargs)
        self.save_hyperparameters(ignore=HPARAMS_IGNORE)
        if discriminator_init:
            load_discriminator_weights(discriminator, discriminator_init)
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.adversarial_loss = adversarial_loss
        self.pixel_loss = pixel_loss
        self.perceptual_loss = perceptual_loss
        self.optimizer_d_factory = optimizer_d
        self.scheduler_d_factory = scheduler_d
        self.loss_weights = {"pixel": 1.0, "perceptual": 1.0, "adversarial": 1.0, **dict(loss_weights or {})}
        self.generator_warmup_batches = int(generator_warmup_batches)
        self.d_update_every = max(1, int(d_update_every))
        self.gradient_clip_val = gradient_clip_val
        # batch counters live in the checkpoint, so warm-up and D frequency survive a resume
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        self._next_batch: int | None = None  # batches_seen on the host: read once per fit, not per step

    # ----------------------------------------------------------------- losses
    def generator_losses(
        self, sr: torch.Tensor, gt: torch.Tensor, adversarial: bool, target: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Weighted generator loss parts; ``adversarial`` adds the D-based term.

        Args:
            sr: generator output.
            gt: ground truth, what D sees as real.
            adversarial: add the adversarial term.
            target: pixel and perceptual target when it differs from ``gt`` (Real-ESRGAN's sharpened GT).
        """
        w = self.loss_weights
        target = gt if target is None else target
        parts: dict[str, torch.Tensor] = {}
        if self.pixel_loss is not None and w["pixel"]:
            parts["l_pix"] = w["pixel"] * self.pixel_loss(sr, target)
        if self.perceptual_loss is not None and w["perceptual"]:
            parts["l_percep"] = w["perceptual"] * self.perceptual_loss(sr, target)
        if adversarial and w["adversarial"]:
            # only relativistic losses compare with D(gt); skip that forward for the others
            real_logits = self.discriminator(gt).detach() if getattr(self.adversarial_loss, "uses_real", True) else None
            fake_logits = self.discriminator(sr)
            parts["l_adv"] = w["adversarial"] * self.adversarial_loss.generator_loss(real_logits, fake_logits)
        return parts

    # ----------------------------------------------------------------- training
    def on_train_start(self) -> None:
        self._next_batch = int(self.batches_seen)  # after a resume restored it; the one host read per fit

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        lq, gt = batch["lq"], batch["gt"]
        if self._next_batch is None:  # called outside Trainer.fit
            self._next_batch = int(self.batches_seen)
        batch_number = self._next_batch
        self._next_batch += 1
        self.batches_seen += 1
        adversarial = batch_number >= self.generator_warmup_batches
        guard = self.nonfinite
        guard.start_batch(self.device, batch_number, self.current_epoch)

        # no host syncs from here on: a NaN/Inf masks the updates on the device (NonFiniteGuard)
        sr = self.generator(lq)  # (B, 3, H, W): the only generator forward of this batch
        with self.toggled_optimizer(opt_g):
            parts = self.generator_losses(sr, gt, adversarial, target=self.loss_target(batch))
            g_loss = torch.stack(list(parts.values())).sum()
            guard.check("g_loss", g_loss, parts)
            self.manual_backward(g_loss)
            self._step(opt_g, "generator")
        self.update_ema(guard.usable())

        logs = {"train/g_loss": g_loss.detach(), **{f"train/{k}": v.detach() for k, v in parts.items()}}
        if adversarial and batch_number % self.d_update_every == 0:
            with self.toggled_optimizer(opt_d):
                real_logits = self.discriminator(gt)
                fake_logits = self.discriminator(sr.detach())
                d_loss = self.adversarial_loss.discriminator_loss(real_logits, fake_logits)
                guard.check("d_loss", d_loss)  # also masks D when G's part of the batch failed
                self.manual_backward(d_loss)
                self._step(opt_d, "discriminator")
            logs.update({
                "train/d_loss": d_loss.detach(),
                "train/d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
                "train/d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z))
            })
        self._step_schedulers()
        with torch.no_grad():
            sr01, gt01 = self.to_unit_range(sr.detach()), self.to_unit_range(gt)
            mse = (sr01 - gt01).pow(2).mean()
            logs["train/psnr"] = -10.0 * torch.log10(mse.clamp_min(1e-10))
            # SSIM (an 11x11 Gaussian filter over 5 maps) costs ~0.1 s per batch on a 2-core CPU, 10%+ of a
            # small GAN's step: sampled on every log_every_n_steps-th batch (the epoch mean is over those)
            if batch_idx % max(1, self.trainer.log_every_n_steps) == 0:
                logs["train/ssim"] = structural_similarity_index_measure(sr01.float(), gt01.float(), data_range=1.0)
        self.log_dict(logs, on_step=True, on_epoch=True, prog_bar=False)
        self.log("g_loss", g_loss.detach(), prog_bar=True, logger=False)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.end_batch_checks(batch_idx)

    def _step(self, optimizer, net: str) -> None:
        """Check ``net``'s gradient norm, clip, and step ``optimizer``, masked unless the batch is usable."""
        if not loss_scaler_active(self.trainer):  # fp16's GradScaler skips overflowing steps itself
            self.nonfinite.check(f"{net} gradient norm", gradient_norm(getattr(self, net).parameters()))
            self.nonfinite.mask_step(optimizer)
        self._clip(optimizer)
        optimizer.step()
        NonFiniteGuard.release(optimizer)
        optimizer.zero_grad(set_to_none=True)

    def _clip(self, optimizer) -> None:
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def _step_schedulers(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    def configure_optimizers(self):
        g = self.build_optimizer(self.generator.parameters(), self.optimizer_factory, self.scheduler_factory)
        d = self.build_optimizer(self.discriminator.parameters(), self.optimizer_d_factory, self.scheduler_d_factory)
        return [g, d]
