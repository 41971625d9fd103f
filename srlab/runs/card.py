"""Every checkpoint of a run carries its model card (:mod:`srlab.weights.run_card` makes it)."""

from __future__ import annotations

import logging

import lightning as L
from omegaconf import DictConfig
from torch import nn

from srlab.infer.efficiency import efficiency
from srlab.weights import record_card, stored_net_config
from srlab.weights.run_card import best_validation, make_card

log = logging.getLogger(__name__)


class ModelCard(L.Callback):
    """Puts the run's model card into every checkpoint: what the weights are for.

    ``srlab.train`` adds it to every run. At set-up (data module ready) the card goes into the
    module's hyper-parameters, so even a weights-only checkpoint carries it, with the generator's
    parameters and MACs (:func:`card_efficiency`; its speed is measured by ``srlab.export``); every full
    checkpoint's copy also gets :func:`best_validation` and the epoch (Lightning's index, as in
    checkpoint names) and training batches seen.

    Args:
        cfg: the run's composed config.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        generator = getattr(pl_module, "generator", None)
        card = make_card(self.cfg, generator, trainer.datamodule)
        record_card(pl_module.hparams, {**card, **card_efficiency(generator, card.get("scale"))})

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        card = stored_net_config(checkpoint).card
        if card is None:
            return
        # batches, not global_step: a GAN makes two optimizer steps per batch
        batches = int(trainer.fit_loop.epoch_loop.batch_progress.total.completed)
        # a new dict: the checkpoint's hyper_parameters is a shallow copy of the module's, whose card stays as set up
        record_card(checkpoint["hyper_parameters"], {**card, "validation": best_validation(checkpoint),
                                                     "trained": {"epoch": trainer.current_epoch, "batches": batches}})


def card_efficiency(generator: nn.Module | None, scale: int | None) -> dict:
    """``{"efficiency": {params, macs_256, ...}}`` for a training run's card, or {} where it cannot be counted.

    Cheap on purpose: MACs counted without arithmetic (meta device or fake tensors, never a real
    forward), no speed timing: a run on a GPU or a shared CPU is no place to time a CPU forward.
    """
    if generator is None:
        return {}
    try:
        return {"efficiency": efficiency(generator, int(scale or 1), measure_speed=False, compute_fallback=False)}
    except Exception as exc:  # noqa: BLE001 - a card figure must never stop a training run
        log.warning("model card: the generator's efficiency was not counted (%s)", exc)
        return {}
