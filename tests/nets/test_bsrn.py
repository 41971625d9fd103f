"""BSRN: the NTIRE 2022 team-18 file's names and sizes, shapes at every scale, detection."""

from __future__ import annotations

import hydra
import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.bsrn import BSRN, BSRN_SPEC
from tests.nets.layouts import foreign_to


def test_published_param_count_and_names() -> None:
    # team18_bsrn.pth: num_feat=48, num_block=5, BSConvU, pixelshuffledirect
    with torch.device("meta"):
        net = BSRN(num_feat=48, num_block=5, upscale=4)
    assert sum(p.numel() for p in net.parameters()) == 156_288
    sd = net.state_dict()
    assert len(sd) == 247
    assert sd["fea_conv.pw.weight"].shape == (48, 12)  # pointwise weights are nn.Linear's (out, in)
    assert sd["fea_conv.dw.weight"].shape == (48, 1, 3, 3)
    assert sd["B5.cw"].shape == (1, 48) and sd["B1.c4.pw.weight"].shape == (24, 48)
    assert sd["B1.esa.conv2.weight"].shape == (12, 12, 3, 3) and sd["B3.esa.conv3_.dw.bias"].shape == (12,)
    assert sd["c1.weight"].shape == (48, 240) and "B6.cw" not in sd
    assert sd["upsampler.upsampleOneStep.0.weight"].shape == (48, 48, 3, 3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_and_backward(scale: int) -> None:
    net = BSRN(num_feat=8, num_block=2, upscale=scale)
    sr = net(torch.rand(2, 3, 15, 17))  # ESA's pooling needs at least 15x15
    assert sr.shape == (2, 3, 15 * scale, 17 * scale) and net.scale == scale
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    "kwargs",
    [{"num_feat": 8, "num_block": 2, "upscale": 2}, {"num_feat": 12, "num_block": 3, "upscale": 3},
     {"num_in_ch": 1, "num_out_ch": 1, "num_feat": 4, "num_block": 1, "upscale": 4}],
)  # fmt: skip
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict) -> None:
    sd = BSRN(**kwargs).state_dict()
    cfg = BSRN_SPEC.detect(sd)
    assert cfg is not None and {k: cfg[k] for k in kwargs} == kwargs
    hydra.utils.instantiate(cfg).load_state_dict(sd, strict=True)


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("BSRN").items()))
def test_detect_leaves_other_layouts_alone(family: str, sd: dict) -> None:
    assert BSRN_SPEC.detect(sd) is None



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"upscale": 0}, "upscale=0"), ({"num_feat": 3}, "num_feat=3"), ({"num_block": 0}, "num_block=0"),
     ({"input_range": -1}, "input_range=-1")],
)  # fmt: skip
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        BSRN(**kwargs)
