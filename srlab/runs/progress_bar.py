"""The training progress bar, without a host sync per batch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class TrainProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, reading the logged metrics only on the batches Lightning logs.

    ``TQDMProgressBar`` sets its postfix from ``trainer.progress_bar_metrics`` at every refresh,
    which calls ``.item()`` on each ``prog_bar`` value (the loss): at ``refresh_rate: 1``, a wait
    for the device's queue at every batch. Here the count, rate and ETA still move at every
    refresh; the metrics shown are read on the batches where Lightning reads them for the loggers
    (every ``trainer.log_every_n_steps``), at the end of each epoch and after validation, so the
    bar shows the values the logs hold.

    Takes ``TQDMProgressBar``'s arguments (``refresh_rate``: redraw every this many batches, 0: no bar).
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        bar = self.train_progress_bar
        if bar is None or bar.disable:
            return
        # the condition Lightning logs on (as its LearningRateMonitor asks); it reads the values then anyway
        if trainer._logger_connector.should_update_logs:
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        n = batch_idx + 1
        if self._should_update(n, bar.total):
            bar.n = n
            bar.refresh()
