"""Single-network restoration training (autoencoder, RRDBNet/PSNR stage): automatic optimization."""

from __future__ import annotations

import torch
from torch import nn

from srlab.models.base import HPARAMS_IGNORE, SRModule


class RestorationModule(SRModule):
    """Trains a generator alone on a pixel loss (the report's autoencoder, ESRGAN's stage 1).

    Args:
        pixel_loss: module returning a scalar loss for (sr, gt).
        **kwargs: everything :class:`SRModule` takes.
    """

    def __init__(self, generator: nn.Module, pixel_loss: nn.Module, **kwargs) -> None:
        super().__init__(generator=generator, **kwargs)
        self.save_hyperparameters(ignore=HPARAMS_IGNORE)
        self.pixel_loss = pixel_loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        sr = self.generator(batch["lq"])
        loss = self.pixel_loss(sr, batch["gt"])
        self.log("train/loss", loss, prog_bar=True)
        with torch.no_grad():
            mse = (self.to_unit_range(sr) - self.to_unit_range(batch["gt"])).pow(2).mean()
            self.log("train/psnr", -10.0 * torch.log10(mse.clamp_min(1e-10)))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_ema()

    def configure_optimizers(self):
        return self.build_optimizer(self.generator.parameters(), self.optimizer_factory, self.scheduler_factory)
