"""The training bar reads the logged metrics (each read a host sync on a GPU) only on the batches Lightning logs."""

from __future__ import annotations

import hydra
import pytest
from lightning.pytorch.callbacks import TQDMProgressBar

from srlab.runs.progress_bar import TrainProgressBar
from srlab.train import build_model


@pytest.mark.parametrize(("bar_class", "read_on"), [(TQDMProgressBar, [1, 2, 3, 4]), (TrainProgressBar, [2, 4])])
def test_the_bar_reads_metrics_when_lightning_logs(smoke_cfg, bar_class, read_on):
    cfg = smoke_cfg("quickstart", extra=["trainer.limit_train_batches=4", "data.samples_per_epoch=8",
                                         "trainer.limit_val_batches=0", "trainer.log_every_n_steps=2"])
    reads, shown = [], []

    class Probe(bar_class):
        def get_metrics(self, trainer, pl_module):
            reads.append(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
            return super().get_metrics(trainer, pl_module)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            shown.append((self.train_progress_bar.n, self.train_progress_bar.postfix or ""))

    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False,
                                      callbacks=[Probe(refresh_rate=1)])
    trainer.fit(build_model(cfg), datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    assert reads == [*read_on, 4]  # and once at the epoch's end
    assert [n for n, _ in shown] == [1, 2, 3, 4]  # the count moves at every batch either way
    if bar_class is TrainProgressBar:  # the loss appears with the first log and stays until the next
        assert "train/loss" not in shown[0][1] and "train/loss=" in shown[1][1]
        assert shown[2][1] == shown[1][1] and "train/loss=" in shown[3][1]
