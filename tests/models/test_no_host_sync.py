"""The training step of both modules queues work without waiting for the device (no host syncs)."""

from __future__ import annotations

import functools

import hydra
import pytest
import torch

from srlab.train import build_model

# what reads a device tensor's value on the host: each waits for every queued kernel on a GPU
SYNCING = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")


class HostSync(AssertionError):
    pass


def _raising(name):
    def method(self, *args, **kwargs):
        raise HostSync(f"Tensor.{name} on the training hot path")
    return method


def _no_sync(fn, monkeypatch, calls):
    """``fn`` with every host read of a tensor raising while it runs."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        calls.append(fn.__name__)
        with monkeypatch.context() as m:
            for name in SYNCING:
                m.setattr(torch.Tensor, name, _raising(name))
            return fn(*args, **kwargs)
    return wrapped


# the hooks a training batch goes through once it is on the device (on_after_batch_transfer: the
# uint8-to-float conversion, or the whole Real-ESRGAN degradation)
HOT_HOOKS = ("on_after_batch_transfer", "training_step", "on_before_optimizer_step", "on_train_batch_end")


def _fit_without_syncs(cfg, monkeypatch) -> tuple[object, list[str]]:
    """Three training batches of ``cfg`` with every host read raising inside the hot hooks and the
    configured progress bar's per-batch hook (Lightning's own bar reads the loss at every redraw)."""
    model = build_model(cfg)
    calls: list[str] = []
    for hook in HOT_HOOKS:
        monkeypatch.setattr(model, hook, _no_sync(getattr(model, hook), monkeypatch, calls))
    bar = hydra.utils.instantiate(cfg.callbacks.progress_bar)
    assert bar.refresh_rate == 1  # redrawn at every batch
    monkeypatch.setattr(bar, "on_train_batch_end", _no_sync(bar.on_train_batch_end, monkeypatch, calls))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[bar])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    return model, calls


# log_every_n_steps beyond the run: the periodic NaN/Inf read and Lightning's log sync never fall due
THREE_BATCHES = ["trainer.limit_train_batches=3", "data.samples_per_epoch=6", "trainer.limit_val_batches=0",
                 "trainer.log_every_n_steps=100"]


@pytest.mark.parametrize("model_name", ["quickstart", "esrgan"])
@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_training_step_has_no_host_sync(smoke_cfg, monkeypatch, model_name, mode):
    cfg = smoke_cfg(model_name, extra=[f"++model.on_nonfinite={mode}", *THREE_BATCHES])
    model, calls = _fit_without_syncs(cfg, monkeypatch)
    assert calls.count("training_step") == calls.count("on_after_batch_transfer") == 3
    assert calls.count("on_train_batch_end") == 6  # the module's and the bar's
    assert int(model.batches_skipped) == 0


def test_realesrgan_degradation_step_has_no_host_sync(smoke_cfg, monkeypatch):
    """The batch degradation runs in on_after_batch_transfer: its branches, sizes and seed come from the
    host-side lists the collate made, never from the tensors on the device."""
    # a pool of one batch: full after the first, so later batches take the shuffle-and-swap path too
    cfg = smoke_cfg("realesrnet", extra=["data/degradation=realesrgan", "data.degradation.queue_size=2",
                                         *THREE_BATCHES])
    model, calls = _fit_without_syncs(cfg, monkeypatch)
    assert calls.count("training_step") == calls.count("on_after_batch_transfer") == 3
    assert model.batch_degradation.pool.filled == model.batch_degradation.pool.size  # it filled, then swapped


def test_the_check_fails_on_a_host_sync(smoke_cfg, monkeypatch):
    cfg = smoke_cfg("quickstart", extra=["trainer.limit_val_batches=0"])
    model = build_model(cfg)
    step = model.training_step

    def training_step(batch, batch_idx):
        if batch["lq"].mean() > 0:  # what a per-step NaN check did: Tensor.__bool__
            return step(batch, batch_idx)
        return None

    model.training_step = _no_sync(training_step, monkeypatch, [])
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    with pytest.raises(HostSync, match="__bool__"):
        trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
