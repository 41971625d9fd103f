"""Single-network restoration training (autoencoder, RRDBNet/PSNR stage): automatic optimization."""

from __future__ import annotations

import torch
from torch import nn

from srlab.models.base import HPARAMS_IGNORE, SRModule
from srlab.models.nonfinite import NonFiniteGuard, gradient_norm, loss_scaler_active


class RestorationModule(SRModule):
    """Trains a generator alone on a pixel loss (the report's autoencoder, ESRGAN's stage 1).

    Args:
        pixel_loss: module returning a scalar loss for (sr, gt).
        on_nonfinite: ``stop`` or ``skip`` on a NaN/Inf loss or gradient norm (see :class:`SRModule`).
        **kwargs: everything :class:`SRModule` takes.
    """

    def __init__(self, generator: nn.Module, pixel_loss: nn.Module, on_nonfinite: str = "stop", **kwargs) -> None:
        super().__init__(generator=generator, on_nonfinite=on_nonfinite, **kwargs)
        self.save_hyperparameters(ignore=HPARAMS_IGNORE)
        self.pixel_loss = pixel_loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.nonfinite.start_batch(self.device, self.trainer.fit_loop.total_batch_idx, self.current_epoch)
        sr = self.generator(batch["lq"])
        loss = self.pixel_loss(sr, self.loss_target(batch))
        self.nonfinite.check("loss", loss)  # a NaN loss still runs backward; its step is masked
        self.log("train/loss", loss, prog_bar=True)
        with torch.no_grad():
            mse = (self.to_unit_range(sr) - self.to_unit_range(batch["gt"])).pow(2).mean()
            self.log("train/psnr", -10.0 * torch.log10(mse.clamp_min(1e-10)))
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # after backward (and AMP unscaling), before clipping and the step
        if loss_scaler_active(self.trainer):
            return  # fp16's GradScaler skips overflowing steps itself
        self.nonfinite.check("generator gradient norm", gradient_norm(self.generator.parameters()))
        self.nonfinite.mask_step(optimizer)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        NonFiniteGuard.release(optimizer)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_ema(self.nonfinite.usable())
        self.end_batch_checks(batch_idx)

    def configure_optimizers(self):
        return self.build_optimizer(self.generator.parameters(), self.optimizer_factory, self.scheduler_factory)
