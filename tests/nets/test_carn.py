"""CARN-M: CARN-pytorch's names and sizes, the multi-scale branches, the mean shift, detection."""

from __future__ import annotations

import hydra
import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.carn import CARN_M_SPEC, CARNM, DIV2K_RGB_MEAN
from tests.nets.layouts import foreign_to


def test_published_param_count_and_names() -> None:
    # carn_m.pth: 64 features, group 4, x2/x3/x4 branches; 24 of its values are the frozen mean shifts
    with torch.device("meta"):
        net = CARNM(num_feat=64, group=4, upscale=4, multi_scale=True)
    assert sum(p.numel() for p in net.parameters()) == 414_811
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 414_811 - 24
    sd = net.state_dict()
    assert len(sd) == 58
    assert sd["sub_mean.shifter.weight"].shape == (3, 3, 1, 1) and sd["add_mean.shifter.bias"].shape == (3,)
    assert sd["b1.b1.body.0.weight"].shape == (64, 16, 3, 3) and sd["b1.b1.body.4.weight"].shape == (64, 64, 1, 1)
    assert sd["b3.c3.body.0.weight"].shape == (64, 256, 1, 1) and "b1.b2.body.0.weight" not in sd  # b1 is shared
    assert sd["upsample.up2.body.0.weight"].shape == (256, 16, 3, 3)
    assert sd["upsample.up3.body.0.weight"].shape == (576, 16, 3, 3)
    assert sd["upsample.up4.body.3.weight"].shape == (256, 16, 3, 3) and sd["exit.weight"].shape == (3, 64, 3, 3)


def test_mean_shift_is_the_div2k_mean() -> None:
    sd = CARNM(num_feat=8, group=2).state_dict()
    torch.testing.assert_close(sd["sub_mean.shifter.weight"], torch.eye(3).view(3, 3, 1, 1))
    torch.testing.assert_close(sd["add_mean.shifter.bias"], torch.tensor(DIV2K_RGB_MEAN))
    torch.testing.assert_close(sd["sub_mean.shifter.bias"], -torch.tensor(DIV2K_RGB_MEAN))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_multi_scale_runs_and_trains_its_branch(scale: int) -> None:
    net = CARNM(num_feat=8, group=2, upscale=scale, multi_scale=True)
    sr = net(torch.rand(2, 3, 5, 7))
    assert sr.shape == (2, 3, 5 * scale, 7 * scale) and net.scale == scale
    sr.mean().backward()
    for name, p in net.named_parameters():
        used = p.requires_grad and (not name.startswith("upsample.") or name.startswith(f"upsample.up{scale}."))
        assert (p.grad is not None) == used, name


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_single_scale_shape_and_backward(scale: int) -> None:
    net = CARNM(num_feat=8, group=2, upscale=scale, multi_scale=False)
    sr = net(torch.rand(1, 3, 4, 5))
    assert sr.shape == (1, 3, 4 * scale, 5 * scale)
    sr.mean().backward()
    assert all((p.grad is not None) == p.requires_grad for p in net.parameters())
    assert not any(k.startswith("upsample.up2") for k in net.state_dict())


def test_zero_net_returns_the_mean() -> None:
    net = CARNM(num_feat=8, group=2, upscale=2).eval()
    for p in net.parameters():
        if p.requires_grad:
            torch.nn.init.zeros_(p)
    with torch.no_grad():  # all-zero convs: only the mean added back by add_mean remains
        torch.testing.assert_close(
            net(torch.rand(1, 3, 3, 4)), torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 6, 8)
        )


@pytest.mark.parametrize(
    ("kwargs", "built_scale"),
    [({"num_feat": 8, "group": 2, "upscale": 2}, 4), ({"num_feat": 12, "group": 3, "upscale": 4}, 4),
     ({"num_feat": 8, "group": 1, "upscale": 3, "multi_scale": False}, 3),
     ({"num_feat": 8, "group": 4, "upscale": 8, "multi_scale": False}, 8),
     ({"num_feat": 8, "group": 2, "upscale": 2, "multi_scale": False}, 2)],
)  # fmt: skip
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict, built_scale: int) -> None:
    sd = CARNM(**kwargs).state_dict()
    cfg = CARN_M_SPEC.detect(sd)
    assert cfg is not None and cfg["upscale"] == built_scale  # a multi-scale file builds its x4 branch
    assert cfg["group"] == kwargs["group"] and cfg["multi_scale"] == kwargs.get("multi_scale", True)
    hydra.utils.instantiate(cfg).load_state_dict(sd, strict=True)


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("CARN-M").items()))
def test_detect_leaves_other_layouts_alone(family: str, sd: dict) -> None:
    assert CARN_M_SPEC.detect(sd) is None



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"upscale": 8}, "upscale=8"), ({"upscale": 5, "multi_scale": False}, "upscale=5"), ({"group": 3}, "group=3"),
     ({"input_range": 0}, "input_range=0")],
)  # fmt: skip
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CARNM(**kwargs)
