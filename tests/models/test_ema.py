"""The generator EMA: its decay ramps up from the first optimizer step, so short runs validate a trained copy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from srlab.models.base import ema_decay_at
from srlab.train import build_model


@pytest.mark.parametrize(("steps", "decay"), [(None, 0.999), (0, 0.1), (90, 0.91), (10**6, 0.999)])
def test_decay_ramps_to_the_configured_one(steps, decay):
    assert ema_decay_at(0.999, steps) == pytest.approx(decay)


@pytest.mark.parametrize(("steps", "moved"), [(0, 0.9), (10**6, 0.001)])
def test_the_copy_moves_by_one_minus_the_decay_of_the_step(smoke_cfg, steps, moved):
    model = build_model(smoke_cfg("rrdbnet", extra=["model.ema_decay=0.999"]))
    start = [p.detach().clone() for p in model.generator_ema.parameters()]
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    model._trainer = SimpleNamespace(global_step=steps)  # all update_ema reads of the Trainer
    model.update_ema(torch.tensor(True))  # the masked (device flag) path training takes
    for before, after, now in zip(start, model.generator_ema.parameters(), model.generator.parameters()):
        assert torch.allclose(after, before + moved * (now - before), atol=1e-6)
