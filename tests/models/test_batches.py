"""Loader batches arrive as uint8 and become float (and normalized) on the device, in on_after_batch_transfer."""

from __future__ import annotations

import pytest
import torch

from srlab.data.transforms import normalize
from srlab.train import build_model


@pytest.mark.parametrize("normalized", [False, True])
def test_uint8_batches_become_float_on_the_device(smoke_cfg, normalized):
    model = build_model(smoke_cfg("quickstart", extra=[f"data.normalize={str(normalized).lower()}"]))
    gt = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    lq = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = model.on_after_batch_transfer({"lq": lq, "gt": gt, "path": ["a", "b"]}, 0)
    unit = gt.float() / 255
    assert out["gt"].dtype == out["lq"].dtype == torch.float32 and out["path"] == ["a", "b"]
    assert torch.equal(out["gt"], normalize(unit) if normalized else unit)
    assert torch.equal(model.on_after_batch_transfer(out, 0)["gt"], out["gt"])  # float batches pass as they are
