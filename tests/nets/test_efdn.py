"""EFDN: the NTIRE ESR baseline's names and size, both EDBB forms and the fold, detection, the input range."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from srlab.errors import ConfigError
from srlab.nets.efdn import EFDN, EFDN_SPEC
from srlab.nets.rlfn import MIN_SIZE
from tests.nets.layouts import foreign_to


def _randomise(net: torch.nn.Module) -> torch.nn.Module:
    """Give every learned tensor a visible size (the edge scales start at 1e-3) so folding errors show."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return net


def test_ntire_baseline_param_count_and_names() -> None:
    # head 1,344 + 4 Cells x (conv1 2,400 + 2 EDBBs x 20,832 + fuse 4,656 + ESA 6,600 + 4 branches x 1,176)
    # + 3 local_fuse x 4,656 + tail 20,784
    with torch.device("meta"):
        net = EFDN()
    cell = 2_400 + 2 * 20_832 + 4_656 + 6_600 + 4 * 1_176
    assert sum(p.numel() for p in net.parameters()) == 1_344 + 4 * cell + 3 * 4_656 + 20_784 == 276_192
    sd = net.state_dict()
    assert len(sd) == 142 and "cells.4.fuse.weight" not in sd
    assert sd["cells.0.conv1.conv1x1.weight"].shape == (48, 48, 1, 1) and sd["cells.0.conv1.act.weight"].shape == (48,)
    assert sd["cells.3.conv2.rep_conv.weight"].shape == (48, 48, 3, 3) and sd["cells.3.conv3.act.weight"].shape == (48,)
    assert sd["cells.1.att.conv_max.weight"].shape == (12, 12, 3, 3) and sd["cells.1.att.conv3_.bias"].shape == (12,)
    assert sd["cells.2.branch.3.weight"].shape == (24, 48, 1, 1) and sd["cells.2.fuse.weight"].shape == (48, 96, 1, 1)
    assert sd["local_fuse.2.weight"].shape == (48, 96, 1, 1) and sd["tail.0.weight"].shape == (48, 48, 3, 3)


def test_training_form_has_the_source_edbb_names() -> None:
    sd = EFDN(n_feats=8, deploy=False, unused_13_channels=8).state_dict()
    edbb = {k.removeprefix("cells.0.conv2.") for k in sd if k.startswith("cells.0.conv2.")}
    edges = {f"conv1x1_{b}.{t}" for b in ("sbx", "sby", "lpl") for t in ("k0", "b0", "scale", "bias", "mask")}
    assert (
        edbb
        == {
            "rep_conv.weight",
            "rep_conv.bias",
            "conv1x1.weight",
            "conv1x1.bias",
            "act.weight",
            "conv1x1_3x3.k0",
            "conv1x1_3x3.b0",
            "conv1x1_3x3.k1",
            "conv1x1_3x3.b1",
        }
        | edges
    )
    assert sd["cells.0.conv2.conv1x1_sbx.scale"].shape == (8, 1, 1, 1) and sd[
        "cells.0.conv2.conv1x1_lpl.mask"
    ].shape == (8, 1, 3, 3)


@pytest.mark.parametrize("scale", EFDN_SPEC.scales)
@pytest.mark.parametrize("deploy", [True, False])
def test_shape_and_backward(scale: int, deploy: bool) -> None:
    net = EFDN(n_feats=8, upscale=scale, deploy=deploy)
    sr = net(torch.rand(2, 3, MIN_SIZE, MIN_SIZE + 2))  # the smallest side ESA's conv + max pool accept
    assert sr.shape == (2, 3, MIN_SIZE * scale, (MIN_SIZE + 2) * scale) and net.scale == scale
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("scale", EFDN_SPEC.scales)
def test_reparameterized_deploy_form_computes_the_same(scale: int) -> None:
    net = _randomise(EFDN(n_feats=8, upscale=scale, deploy=False)).eval()
    deploy = net.reparameterize()
    assert not deploy.training and set(deploy.state_dict()) == set(EFDN(n_feats=8, upscale=scale).state_dict())
    lq = torch.rand(1, 3, 16, 18)
    with torch.no_grad():
        torch.testing.assert_close(deploy(lq), net(lq), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("scale", EFDN_SPEC.scales)
@pytest.mark.parametrize(
    "kwargs",
    [{"n_feats": 8}, {"n_feats": 12, "deploy": False}, {"n_feats": 8, "deploy": False, "unused_13_channels": 5}],
)
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict, scale: int) -> None:
    net = EFDN(**kwargs, upscale=scale).eval()
    cfg = EFDN_SPEC.detect(net.state_dict())
    assert cfg is not None and cfg["_target_"] == "srlab.nets.efdn.EFDN" and cfg["upscale"] == scale
    assert cfg["deploy"] == kwargs.get("deploy", True)
    rebuilt = instantiate(cfg).eval()
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(lq), net(lq))


@pytest.mark.parametrize(("family", "sd"), list(foreign_to("EFDN").items()))
def test_detect_rejects_other_layouts(family: str, sd: dict) -> None:
    assert EFDN_SPEC.detect(sd) is None



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale": 0}, "upscale=0"),
        ({"n_feats": 10}, "n_feats=10"),
        ({"in_channels": 0}, "in_channels=0"),
        ({"unused_13_channels": 4}, "unused_13_channels"),
        ({"input_range": -1}, "input_range=-1"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        EFDN(**kwargs)
