"""Issue 15 on a GPU: a full ESRGAN training step (batch 16, HR 128, bf16-mixed) under
``torch.cuda.set_sync_debug_mode("error")``: any device-to-host sync in the module's step raises.

    python experiments/benchmarks/sync_check.py [extra config overrides...]
    python experiments/benchmarks/sync_check.py data/degradation=realesrgan   # the degradation too

Checked: ``on_after_batch_transfer`` (uint8 to float, or the Real-ESRGAN degradation; from the
second batch, as the first uploads the degradation's constant tables once), ``training_step``,
``on_train_batch_end`` of the module and of srlab's progress bar (which reads the logged
metrics only when Lightning logs). Lightning's own logging syncs only at ``log_every_n_steps``
(set beyond the run here).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import hydra
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from srlab.bench.train import compose_config  # noqa: E402
from srlab.runs.progress_bar import TrainProgressBar  # noqa: E402
from srlab.train import build_model  # noqa: E402


def _strict(fn, skip_first: bool = False):
    if not torch.cuda.is_available():  # a CPU run only checks that the script composes and trains
        return fn
    calls = [0]

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if skip_first and calls[0] == 1:
            return fn(*args, **kwargs)
        torch.cuda.set_sync_debug_mode("error")
        try:
            return fn(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return wrapped


def main(extra: list[str]) -> int:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # the benchmark's sizes: batch 16 and trainer=gpu (bf16-mixed) on a GPU, HR patch 128
    cfg = compose_config("esrgan", device, ["data.samples_per_epoch=64", "++trainer.limit_train_batches=4",
                                            "++trainer.limit_val_batches=0", "trainer.max_epochs=1",
                                            "trainer.log_every_n_steps=100", *extra])
    model = build_model(cfg)
    for hook in ("training_step", "on_train_batch_end"):
        setattr(model, hook, _strict(getattr(model, hook)))
    model.on_after_batch_transfer = _strict(model.on_after_batch_transfer, skip_first=True)
    bar = TrainProgressBar(refresh_rate=1)  # conf/callbacks/default.yaml's (the bench composes callbacks=none)
    bar.on_train_batch_end = _strict(bar.on_train_batch_end)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[bar])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    where = "without a host sync" if torch.cuda.is_available() else "(CPU: syncs not checked)"
    print(f"sync check passed: {trainer.global_step} optimizer steps of ESRGAN ({cfg.trainer.precision}, batch "
          f"{cfg.data.batch_size}) {where} in on_after_batch_transfer / training_step / on_train_batch_end")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
