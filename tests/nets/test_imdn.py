"""IMDN: Zheng222/IMDN's names and sizes, shapes and gradients at every scale, detection, input range."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from srlab.errors import ConfigError
from srlab.nets.imdn import IMDN, IMDN_SPEC
from tests.nets.layouts import foreign_to


def test_published_x4_param_count_and_names() -> None:
    # IMDN_x4.pth (64 features, 6 IMDBs). Hand count: fea_conv 1,792; per IMDB c1 36,928 + c2, c3 27,712
    # each + c4 6,928 + c5 4,160 + CCA 580 = 104,020, x6 = 624,120; c 24,640; LR_conv 36,928; upsampler 27,696.
    with torch.device("meta"):
        net = IMDN(upscale=4)
    assert sum(p.numel() for p in net.parameters()) == 1_792 + 624_120 + 24_640 + 36_928 + 27_696 == 715_176
    sd = net.state_dict()
    assert sd["fea_conv.weight"].shape == (64, 3, 3, 3)
    assert sd["IMDB1.c2.weight"].shape == (64, 48, 3, 3) and sd["IMDB1.c4.weight"].shape == (16, 48, 3, 3)
    assert sd["IMDB6.cca.conv_du.0.weight"].shape == (4, 64, 1, 1) and sd["IMDB6.c5.weight"].shape == (64, 64, 1, 1)
    assert sd["c.0.weight"].shape == (64, 384, 1, 1) and sd["upsampler.0.weight"].shape == (48, 64, 3, 3)
    assert "LR_conv.bias" in sd and "IMDB7.c1.weight" not in sd
    assert len(sd) == 6 * 14 + 8  # per block 7 convs (weight, bias); fea_conv, c, LR_conv, upsampler


@pytest.mark.parametrize("scale", [1, *IMDN_SPEC.scales])
def test_shape_and_backward(scale: int) -> None:
    net = IMDN(nf=16, num_modules=2, upscale=scale)
    assert net.scale == scale
    sr = net(torch.rand(2, 3, 8, 8))
    assert sr.shape == (2, 3, 8 * scale, 8 * scale)
    sr.mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())


@pytest.mark.parametrize("scale", IMDN_SPEC.scales)
@pytest.mark.parametrize(("in_nc", "nf", "num_modules"), [(3, 16, 1), (1, 20, 2), (3, 32, 3)])
def test_detect_rebuilds_a_net_that_loads_strictly(scale: int, in_nc: int, nf: int, num_modules: int) -> None:
    kwargs = {"in_nc": in_nc, "nf": nf, "num_modules": num_modules, "out_nc": in_nc, "upscale": scale}
    sd = IMDN(**kwargs).state_dict()
    cfg = IMDN_SPEC.detect(sd)
    assert cfg == {"_target_": "srlab.nets.imdn.IMDN", **kwargs}
    instantiate(cfg).load_state_dict(sd, strict=True)


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("IMDN").items()))
def test_detect_ignores_other_layouts(family: str, sd: dict) -> None:
    assert IMDN_SPEC.detect(sd) is None


def test_detect_rejects_a_file_that_only_shares_the_anchors() -> None:
    sd = dict(IMDN(nf=16, num_modules=2).state_dict())
    sd["IMDB2.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="IMDB2.extra.weight"):
        IMDN_SPEC.detect(sd)



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale": 0}, "upscale=0"),
        ({"nf": 18}, "nf=18"),
        ({"nf": 12}, "nf=12"),
        ({"num_modules": 0}, "num_modules=0"),
        ({"input_range": 0}, "input_range=0"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=f"model.generator.{match}"):
        IMDN(**kwargs)
