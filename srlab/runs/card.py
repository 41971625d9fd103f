"""Every checkpoint of a run carries its model card (:mod:`srlab.weights.run_card` makes it)."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig

from srlab.weights import record_card, stored_net_config
from srlab.weights.run_card import best_validation, make_card


class ModelCard(L.Callback):
    """Puts the run's model card into every checkpoint: what the weights are for.

    ``srlab.train`` adds it to every run. At set-up (data module ready) the card goes into the
    module's hyper-parameters, so even a weights-only checkpoint carries it; every full
    checkpoint's copy also gets :func:`best_validation` and the epoch (Lightning's index, as in
    checkpoint names) and training batches seen.

    Args:
        cfg: the run's composed config.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        record_card(pl_module.hparams, make_card(self.cfg, getattr(pl_module, "generator", None), trainer.datamodule))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        card = stored_net_config(checkpoint).card
        if card is None:
            return
        # batches, not global_step: a GAN makes two optimizer steps per batch
        batches = int(trainer.fit_loop.epoch_loop.batch_progress.total.completed)
        # a new dict: the checkpoint's hyper_parameters is a shallow copy of the module's, whose card stays as set up
        record_card(checkpoint["hyper_parameters"], {**card, "validation": best_validation(checkpoint),
                                                     "trained": {"epoch": trainer.current_epoch, "batches": batches}})
