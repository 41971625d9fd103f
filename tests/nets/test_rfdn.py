"""RFDN: njulj/RFDN's names and sizes, shapes and gradients at every scale, detection, input range."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from srlab.errors import ConfigError
from srlab.nets.rfdn import RFDN, RFDN_SPEC
from tests.nets.layouts import foreign_to


def test_published_aim2020_param_count_and_names() -> None:
    # RFDN_AIM.pth (50 features, 4 RFDBs, x4). Hand count: fea_conv 1,400; per RFDB c{1,2,3}_d 3 x 1,275 +
    # c{1,2,3}_r 3 x 22,550 + c4 11,275 + c5 5,050 + ESA 6,650 = 94,450, x4 = 377,800; c 10,050;
    # LR_conv 22,550; upsampler 21,648.
    with torch.device("meta"):
        net = RFDN()
    assert sum(p.numel() for p in net.parameters()) == 1_400 + 377_800 + 10_050 + 22_550 + 21_648 == 433_448
    sd = net.state_dict()
    assert sd["B1.c1_d.weight"].shape == (25, 50, 1, 1) and sd["B1.c1_r.weight"].shape == (50, 50, 3, 3)
    assert sd["B4.c5.weight"].shape == (50, 100, 1, 1) and sd["B4.esa.conv1.weight"].shape == (12, 50, 1, 1)
    assert sd["B2.esa.conv_max.weight"].shape == (12, 12, 3, 3) and sd["B2.esa.conv3_.bias"].shape == (12,)
    assert sd["c.0.weight"].shape == (50, 200, 1, 1) and sd["upsampler.0.weight"].shape == (48, 50, 3, 3)
    assert "LR_conv.weight" in sd and "B5.c1_d.weight" not in sd
    assert len(sd) == 4 * 30 + 8  # per block 8 convs + 7 in ESA (weight, bias); fea_conv, c, LR_conv, upsampler


@pytest.mark.parametrize("scale", [1, *RFDN_SPEC.scales])
@pytest.mark.parametrize("size", [(8, 8), (16, 19)])  # below and above the 15 px ESA's 7x7 pool needs
def test_shape_and_backward(scale: int, size: tuple[int, int]) -> None:
    net = RFDN(nf=8, num_modules=2, upscale=scale)
    assert net.scale == scale
    sr = net(torch.rand(2, 3, *size))
    assert sr.shape == (2, 3, size[0] * scale, size[1] * scale)
    sr.mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())


@pytest.mark.parametrize("scale", RFDN_SPEC.scales)
@pytest.mark.parametrize(("in_nc", "nf", "num_modules"), [(3, 8, 1), (1, 10, 2), (3, 16, 3)])
def test_detect_rebuilds_a_net_that_loads_strictly(scale: int, in_nc: int, nf: int, num_modules: int) -> None:
    kwargs = {"in_nc": in_nc, "nf": nf, "num_modules": num_modules, "out_nc": in_nc, "upscale": scale}
    sd = RFDN(**kwargs).state_dict()
    cfg = RFDN_SPEC.detect(sd)
    assert cfg == {"_target_": "srlab.nets.rfdn.RFDN", **kwargs}
    instantiate(cfg).load_state_dict(sd, strict=True)


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("RFDN").items()))
def test_detect_ignores_other_layouts(family: str, sd: dict) -> None:
    assert RFDN_SPEC.detect(sd) is None


def test_detect_rejects_a_file_that_only_shares_the_anchors() -> None:
    sd = dict(RFDN(nf=8, num_modules=2).state_dict())
    del sd["B2.esa.conv4.bias"]
    with pytest.raises(ValueError, match="B2.esa.conv4.bias"):
        RFDN_SPEC.detect(sd)



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale": 0}, "upscale=0"),
        ({"upscale": 2.5}, "upscale=2.5"),
        ({"nf": 3}, "nf=3"),
        ({"in_nc": 0}, "in_nc=0"),
        ({"input_range": -1}, "input_range=-1"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=f"model.generator.{match}"):
        RFDN(**kwargs)
