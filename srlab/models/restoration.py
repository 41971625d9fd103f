"""Single-network restoration training (autoencoder, RRDBNet/PSNR stage): automatic optimization."""

from __future__ import annotations

import torch
from torch import nn

from srlab.models.base import HPARAMS_IGNORE, SRModule
from srlab.models.nonfinite import check_nonfinite_mode, finite_or_handle, gradient_norm, loss_scaler_active


class RestorationModule(SRModule):
    """Trains a generator alone on a pixel loss (the report's autoencoder, ESRGAN's stage 1).

    Args:
        pixel_loss: module returning a scalar loss for (sr, gt).
        on_nonfinite: a NaN/Inf loss or gradient norm ``stop``s the run (naming it and the batch)
            or ``skip``s the batch (no weight update, counted in ``batches_skipped``).
        **kwargs: everything :class:`SRModule` takes.
    """

    def __init__(self, generator: nn.Module, pixel_loss: nn.Module, on_nonfinite: str = "stop", **kwargs) -> None:
        super().__init__(generator=generator, **kwargs)
        self.save_hyperparameters(ignore=HPARAMS_IGNORE)
        self.pixel_loss = pixel_loss
        self.on_nonfinite = check_nonfinite_mode(on_nonfinite)
        self.register_buffer("batches_skipped", torch.zeros((), dtype=torch.long))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        sr = self.generator(batch["lq"])
        loss = self.pixel_loss(sr, self.loss_target(batch))
        if not finite_or_handle(self, "loss", loss, self.trainer.fit_loop.total_batch_idx):
            return None  # Lightning skips backward and the optimizer step
        self.log("train/loss", loss, prog_bar=True)
        with torch.no_grad():
            mse = (self.to_unit_range(sr) - self.to_unit_range(batch["gt"])).pow(2).mean()
            self.log("train/psnr", -10.0 * torch.log10(mse.clamp_min(1e-10)))
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # after backward (and AMP unscaling), before clipping and the step
        if loss_scaler_active(self.trainer):
            return
        norm = gradient_norm(self.generator.parameters())
        if not finite_or_handle(self, "generator gradient norm", norm, self.trainer.fit_loop.total_batch_idx):
            optimizer.zero_grad(set_to_none=True)  # parameters without a gradient are left alone by the step

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_ema()

    def configure_optimizers(self):
        return self.build_optimizer(self.generator.parameters(), self.optimizer_factory, self.scheduler_factory)
