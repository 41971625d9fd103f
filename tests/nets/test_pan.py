"""PAN: zhaohengyuan1/PAN's names and sizes, shapes at every scale, the bilinear skip, detection."""

from __future__ import annotations

import hydra
import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.pan import PAN, PAN_SPEC
from tests.nets.layouts import foreign_to


def test_published_param_count_and_names() -> None:
    # PANx4_DF2K.pth: nf=40, unf=24, nb=16
    with torch.device("meta"):
        net = PAN(nf=40, unf=24, nb=16, upscale=4)
    assert sum(p.numel() for p in net.parameters()) == 272_419
    sd = net.state_dict()
    assert len(sd) == 146
    assert sd["SCPA_trunk.15.PAConv.k4.weight"].shape == (20, 20, 3, 3)
    assert sd["SCPA_trunk.0.k1.0.weight"].shape == (20, 20, 3, 3) and "SCPA_trunk.0.PAConv.k3.bias" not in sd
    assert sd["upconv1.weight"].shape == (24, 40, 3, 3) and sd["upconv2.weight"].shape == (24, 24, 3, 3)
    assert sd["att2.conv.weight"].shape == (24, 24, 1, 1) and sd["conv_last.weight"].shape == (3, 24, 3, 3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_and_backward(scale: int) -> None:
    net = PAN(nf=8, unf=6, nb=2, upscale=scale)
    sr = net(torch.rand(2, 3, 5, 7))
    assert sr.shape == (2, 3, 5 * scale, 7 * scale) and net.scale == scale
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert ("upconv2.weight" in net.state_dict()) == (scale == 4)


def test_output_is_head_plus_bilinear_input() -> None:
    net = PAN(nf=8, unf=6, nb=1, upscale=3).eval()
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    lq = torch.rand(1, 3, 4, 5)
    expected = torch.nn.functional.interpolate(lq, scale_factor=3, mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(net(lq), expected)


@pytest.mark.parametrize(
    ("kwargs", "built_scale"),
    [({"nf": 8, "unf": 6, "nb": 2, "upscale": 4}, 4), ({"nf": 6, "unf": 4, "nb": 1, "upscale": 2}, 2),
     ({"in_nc": 1, "out_nc": 1, "nf": 4, "unf": 4, "nb": 3, "upscale": 3}, 2)],
)  # fmt: skip
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict, built_scale: int) -> None:
    sd = PAN(**kwargs).state_dict()
    cfg = PAN_SPEC.detect(sd)
    assert cfg is not None and cfg["upscale"] == built_scale  # x3 has x2's tensors: the scale is a config choice
    hydra.utils.instantiate(cfg).load_state_dict(sd, strict=True)


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("PAN").items()))
def test_detect_leaves_other_layouts_alone(family: str, sd: dict) -> None:
    assert PAN_SPEC.detect(sd) is None



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale": 8}, "upscale=8"),
        ({"nf": 7}, "nf=7"),
        ({"out_nc": 1}, "out_nc=1"),
        ({"input_range": 0}, "input_range=0"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PAN(**kwargs)
