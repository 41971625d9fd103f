"""SAFMN: NTIRE 2023 team15's names and size, the paper variant equals spandrel's, shapes, detection."""

from __future__ import annotations

import hydra.utils
import pytest
import torch
import torch.nn.functional as F
from spandrel import ModelLoader, UnsupportedModelError
from spandrel.architectures.SAFMN import SAFMN as SpandrelSAFMN

from srlab.errors import ConfigError
from srlab.nets.safmn import SAFMN, SAFMN_SPEC, detect_safmn
from tests.nets.layouts import foreign_to

TEAM15 = {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0, "upscaling_factor": 4, "variant": "ntire23"}


def test_ntire23_team15_parameter_count_and_names() -> None:
    with torch.device("meta"):
        net = SAFMN(**TEAM15)
        paper = SAFMN(dim=36, n_blocks=8, variant="paper")
        theirs = SpandrelSAFMN(dim=36, n_blocks=8)
    assert sum(p.numel() for p in net.parameters()) == 237_000
    assert sum(p.numel() for p in paper.parameters()) == sum(p.numel() for p in theirs.parameters()) == 239_520
    sd = net.state_dict()
    assert sd["norm.gamma"].shape == sd["norm.beta"].shape == (1, 36, 1, 1)
    assert sd["feats.7.safm.mfr.3.weight"].shape == (9, 1, 3, 3)
    assert sd["feats.0.ccm.ccm.0.weight"].shape == (72, 36, 3, 3)
    assert sd["to_img.0.weight"].shape == (48, 36, 3, 3) and sd["to_img.0.bias"].shape == (48,)
    # what spandrel's SAFMN detection requires and this file lacks: block LayerNorms (and conv biases)
    assert "feats.0.norm1.weight" not in sd and "feats.0.safm.aggr.bias" not in sd
    assert set(paper.state_dict()) == set(theirs.state_dict())


def test_spandrel_rejects_the_ntire23_layout() -> None:
    with pytest.raises(UnsupportedModelError):
        ModelLoader().load_from_state_dict(SAFMN(dim=8, n_blocks=1, variant="ntire23").state_dict())


def test_paper_variant_equals_spandrels_safmn() -> None:
    torch.manual_seed(0)
    theirs = SpandrelSAFMN(dim=8, n_blocks=2, ffn_scale=2.0, upscaling_factor=3)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    ours = SAFMN(dim=8, n_blocks=2, upscaling_factor=3, variant="paper")
    ours.load_state_dict(theirs.state_dict(), strict=True)
    lq = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(lq), theirs(lq))


def test_ntire23_adds_the_bilinear_upsampled_input() -> None:
    net = SAFMN(dim=8, n_blocks=1, upscaling_factor=3, variant="ntire23").eval()
    torch.nn.init.zeros_(net.to_img[0].weight)
    torch.nn.init.zeros_(net.to_img[0].bias)
    lq = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(net(lq), F.interpolate(lq, scale_factor=3, mode="bilinear", align_corners=False))


@pytest.mark.parametrize("variant", ["paper", "ntire23"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_shape_and_backward(scale: int, variant: str) -> None:
    net = SAFMN(dim=8, n_blocks=1, upscaling_factor=scale, variant=variant)
    sr = net(torch.rand(2, 3, 6, 9))  # smaller than the coarsest pooling level: pooled to one pixel
    assert sr.shape == (2, 3, 6 * scale, 9 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    "kwargs",
    [TEAM15 | {"dim": 8, "n_blocks": 2},
     {"dim": 12, "n_blocks": 1, "ffn_scale": 1.5, "upscaling_factor": 3, "variant": "paper"}],
)  # fmt: skip
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict) -> None:
    sd = SAFMN(**kwargs).state_dict()
    cfg = detect_safmn(sd)
    assert cfg["_target_"] == "srlab.nets.safmn.SAFMN"
    net = hydra.utils.instantiate(cfg)
    net.load_state_dict(sd, strict=True)
    assert {k: cfg[k] for k in kwargs} == kwargs
    assert SAFMN_SPEC.input_range is None and 4 in SAFMN_SPEC.scales


def test_detect_rejects_other_layouts() -> None:
    for name, sd in foreign_to("SAFMN").items():
        assert detect_safmn(sd) is None, name
    sd = SAFMN(dim=8, n_blocks=1, variant="ntire23").state_dict()
    assert detect_safmn({**sd, "feats.0.safm.aggr.bias": torch.zeros(8)}) is None  # a hybrid neither builds



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"variant": "plus"}, "variant='plus'"), ({"dim": 10}, "dim=10"), ({"n_blocks": 0}, "n_blocks=0"),
     ({"upscaling_factor": 0}, "upscaling_factor=0"), ({"ffn_scale": 0.0}, "ffn_scale=0.0"),
     ({"input_range": -1.0}, "input_range=-1.0")],
)  # fmt: skip
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SAFMN(**kwargs)
