"""The modern architectures' configs: published sizes, a training step at every scale each supports."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from srlab.config import compose_train
from tests.conftest import TINY_NETS

# conf/model name -> (parameters at x4 as configured, the figure its paper or source states, scales)
PUBLISHED = {
    "span": (1_840_488, "SPAN ch48 trains in its branch form; re-parameterised 426,288 (paper, x4: 426 K)", (2, 3, 4)),
    "safmn": (239_520, "SAFMN paper, x4: 240 K", (2, 3, 4)),
    "omnisr": (805_376, "OmniSR official sizes (64 feat, 5 OSAGs, window 8); its paper lists 792 K", (2, 3, 4)),
    "realplksr": (7_389_680, "RealPLKSR (dim 64, 28 blocks): 7.39 M", (2, 3, 4)),
    "rcan": (15_592_379, "RCAN paper, x4: 15.59 M", (2, 3, 4)),
    "hat_s": (9_621_183, "HAT-S paper, x4: 9.62 M", (2, 3, 4)),
    "dat_light": (572_766, "DAT-light paper, x4: 573 K", (2, 3, 4)),
    "atd_light": (768_792, "ATD-light paper, x4: 769 K", (2, 3, 4)),
    "rlfn": (543_740, "bytedance/RLFN rlfn_x4.pth: 543,740", (2, 3, 4)),
    "imdn": (715_176, "Zheng222/IMDN IMDN_x4.pth: 715,176", (2, 3, 4)),
}


def _generator(model: str, overrides: list[str]) -> torch.nn.Module:
    cfg = compose_train([f"model={model}", *overrides])
    return instantiate(OmegaConf.to_container(cfg.model.generator, resolve=True))


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_full_size_parameter_count_is_the_published_one(model: str) -> None:
    count, _, _ = PUBLISHED[model]
    net = _generator(model, ["data.scale=4"])
    assert sum(p.numel() for p in net.parameters()) == count
    if model == "span":  # what it ships as: one 3x3 conv per branch sum
        assert sum(p.numel() for p in net.reparameterize().parameters()) == 426_288


@pytest.mark.parametrize(("model", "scale"), [(m, s) for m in sorted(PUBLISHED) for s in PUBLISHED[m][2]])
def test_a_training_step_at_every_supported_scale(model: str, scale: int) -> None:
    torch.manual_seed(0)
    tiny = [o for o in TINY_NETS[model] if o.startswith("model.")]
    net = _generator(model, [f"data.scale={scale}", *tiny]).train()
    lq = torch.rand(2, 3, 16, 16)  # 16 px: above the smallest input of every net here (RLFN's attention: 15)
    before_lq = lq.clone()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sr = net(lq)
    assert sr.shape == (2, 3, 16 * scale, 16 * scale)
    assert torch.equal(lq, before_lq)  # the caller's batch is untouched (the step reuses it for metrics)
    loss = torch.nn.functional.l1_loss(sr, torch.rand_like(sr))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)
    before = [p.detach().clone() for p in net.parameters()]
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
