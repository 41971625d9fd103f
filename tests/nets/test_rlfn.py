"""RLFN: bytedance/RLFN's names and sizes, shapes and gradients at every scale, detection, the input range."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from srlab.errors import ConfigError
from srlab.nets.rlfn import ESA, MIN_SIZE, RLFN, RLFN_SPEC
from tests.nets.layouts import foreign_to

TINY = {"feature_channels": 8, "num_blocks": 2, "esa_channels": 4}


def test_rlfn_x4_param_count_and_names() -> None:
    # rlfn_x4: head 1,456 + 6 RLFBs x (3 x 24,388 + c5 2,756 + ESA 6,644) + conv_2 24,388 + upsampler 22,512
    with torch.device("meta"):
        net = RLFN()
    assert sum(p.numel() for p in net.parameters()) == 1_456 + 6 * 82_564 + 24_388 + 22_512 == 543_740
    sd = net.state_dict()
    assert len(sd) == 114 and "block_7.c1_r.weight" not in sd
    assert sd["conv_1.weight"].shape == (52, 3, 3, 3)
    assert sd["block_1.c1_r.weight"].shape == (52, 52, 3, 3) and sd["block_6.c5.weight"].shape == (52, 52, 1, 1)
    assert sd["block_3.esa.conv1.weight"].shape == (16, 52, 1, 1) and sd["block_3.esa.conv4.weight"].shape == (
        52,
        16,
        1,
        1,
    )
    assert sd["block_3.esa.conv2.weight"].shape == (16, 16, 3, 3) and "block_3.esa.conv_max.weight" not in sd
    assert sd["upsampler.0.weight"].shape == (48, 52, 3, 3)


def test_rlfn_ntire_prune_layout() -> None:
    sd = RLFN(feature_channels=46, mid_channels=48, num_blocks=4).state_dict()
    assert sd["block_4.c1_r.weight"].shape == (48, 46, 3, 3) and sd["block_4.c3_r.weight"].shape == (46, 48, 3, 3)
    assert "block_5.c1_r.weight" not in sd


@pytest.mark.parametrize("scale", RLFN_SPEC.scales)
def test_shape_and_backward(scale: int) -> None:
    net = RLFN(**TINY, upscale=scale)
    sr = net(torch.rand(2, 3, MIN_SIZE, MIN_SIZE + 2))  # the smallest side ESA's conv + max pool accept
    assert sr.shape == (2, 3, MIN_SIZE * scale, (MIN_SIZE + 2) * scale) and net.scale == scale
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("scale", RLFN_SPEC.scales)
@pytest.mark.parametrize("kwargs", [TINY, {**TINY, "mid_channels": 12, "num_blocks": 3}, {**TINY, "esa_channels": 2}])
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict, scale: int) -> None:
    net = RLFN(**kwargs, upscale=scale).eval()
    cfg = RLFN_SPEC.detect(net.state_dict())
    assert cfg is not None and cfg["_target_"] == "srlab.nets.rlfn.RLFN" and cfg["upscale"] == scale
    rebuilt = instantiate(cfg).eval()
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(lq), net(lq))


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("RLFN").items()))
def test_detect_rejects_other_layouts(family: str, sd: dict) -> None:
    assert RLFN_SPEC.detect(sd) is None


def test_detect_raises_when_anchors_match_but_the_rest_does_not() -> None:
    sd = RLFN(**TINY).state_dict()
    with pytest.raises(ValueError, match="layout"):
        RLFN_SPEC.detect({**sd, "block_1.esa.conv_max.weight": torch.zeros(4, 4, 3, 3)})



def test_trimmed_esa_is_rfdn_esa_without_conv_max_and_conv3_() -> None:
    assert {k.split(".")[0] for k in ESA(8, 2, full=False).state_dict()} == {
        "conv1",
        "conv_f",
        "conv2",
        "conv3",
        "conv4",
    }
    assert {k.split(".")[0] for k in ESA(8, 2).state_dict()} >= {"conv_max", "conv3_"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale": 0}, "upscale=0"),
        ({"feature_channels": 0}, "feature_channels=0"),
        ({"num_blocks": 2.0}, "num_blocks=2.0"),
        ({"mid_channels": -1}, "mid_channels=-1"),
        ({"input_range": 0}, "input_range=0"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RLFN(**kwargs)
