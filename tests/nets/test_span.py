"""SPAN: the NTIRE 2024 slim file's names and size, spandrel's training form, reparameterisation, detection."""

from __future__ import annotations

import hydra.utils
import pytest
import torch
import torch.nn.functional as F
from spandrel.architectures.SPAN import SPAN as SpandrelSPAN

from srlab.errors import ConfigError
from srlab.nets.span import SPAN, SPAN_SPEC, RepConv, detect_span
from tests.nets.layouts import foreign_to


def _random(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights everywhere (spread enough that the 1-px border and every branch matter)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net


def test_ntire24_team38_slim_parameter_count_and_names() -> None:
    # conv_1 3*28*9+28 = 784; 6 blocks x 3 x (28*28*9+28) = 127,512; conv_cat 112*28+28 = 3,164;
    # conv_2 7,084; upsampler 28*48*9+48 = 12,144
    with torch.device("meta"):
        net = SPAN(feature_channels=28, upscale=4, deploy=True)
    assert sum(p.numel() for p in net.parameters()) == 784 + 127_512 + 3_164 + 7_084 + 12_144 == 150_688
    sd = net.state_dict()
    assert len(sd) == 22 * 2  # 22 convs: only eval_conv in every RepConv, no branch, no mean (not saved)
    assert sd["conv_1.eval_conv.weight"].shape == (28, 3, 3, 3)
    assert sd["block_6.c3_r.eval_conv.bias"].shape == (28,)
    assert sd["conv_cat.weight"].shape == (28, 112, 1, 1)
    assert sd["upsampler.0.weight"].shape == (48, 28, 3, 3)


def test_training_form_matches_spandrel_names_and_output() -> None:
    theirs = _random(SpandrelSPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2))
    ours = SPAN(feature_channels=8, upscale=2)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    lq = torch.rand(1, 3, 6, 7)
    torch.testing.assert_close(ours(lq), theirs(lq))  # training mode: the branches
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(lq), theirs(lq), rtol=1e-4, atol=1e-4)  # eval mode: the fused kernel
    # the saved eval_conv is spandrel's fusion (update_params) of the current branches
    torch.testing.assert_close(ours.state_dict()["conv_2.eval_conv.weight"], theirs.conv_2.eval_conv.weight)


def test_training_runs_the_fused_conv_with_the_branches_output_and_gradients() -> None:
    conv = _random(RepConv(3, 5)).double()
    x = torch.rand(2, 3, 6, 7, dtype=torch.float64)
    fused = conv(x)
    branches = conv.conv(F.pad(x, (1, 1, 1, 1))) + conv.sk(x)  # the published training form
    torch.testing.assert_close(fused, branches)
    grads = [torch.autograd.grad(out.square().sum(), list(conv.parameters())) for out in (fused, branches)]
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("deploy", [False, True])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_shape_and_backward(scale: int, deploy: bool) -> None:
    net = SPAN(feature_channels=4, upscale=scale, num_blocks=2, deploy=deploy)
    sr = net(torch.rand(2, 3, 5, 6))
    assert sr.shape == (2, 3, 5 * scale, 6 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())  # the training form's eval_conv is a buffer


def test_reparameterize_gives_the_slim_form_with_the_same_output() -> None:
    net = _random(SPAN(feature_channels=8, upscale=3)).eval()
    slim = net.reparameterize()
    assert slim.deploy and not slim.training
    assert set(slim.state_dict()) == {k for k in net.state_dict() if ".sk." not in k and ".conv." not in k}
    lq = torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        torch.testing.assert_close(slim(lq), net(lq), rtol=1e-4, atol=1e-4)
    assert detect_span(slim.state_dict())["deploy"] is True


@pytest.mark.parametrize(
    "kwargs",
    [{"feature_channels": 8, "upscale": 3, "deploy": True}, {"feature_channels": 8, "upscale": 2},
     {"feature_channels": 6, "upscale": 4, "num_blocks": 3, "norm": False}],
)  # fmt: skip
def test_detect_rebuilds_a_net_that_loads_strictly(kwargs: dict) -> None:
    sd = SPAN(**kwargs).state_dict()
    cfg = detect_span(sd)
    assert cfg["_target_"] == "srlab.nets.span.SPAN"
    net = hydra.utils.instantiate(cfg)
    net.load_state_dict(sd, strict=True)
    assert {k: cfg[k] for k in kwargs} == kwargs
    assert SPAN_SPEC.input_range is None and 4 in SPAN_SPEC.scales


def test_detect_rejects_other_layouts() -> None:
    for name, sd in foreign_to("SPAN").items():
        assert detect_span(sd) is None, name
    slim = SPAN(feature_channels=4, deploy=True).state_dict()
    assert detect_span({**slim, "block_1.act.alpha": torch.ones(1, 4, 1, 1)}) is None  # a variant's extra key



@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"upscale": 0}, "upscale=0"), ({"feature_channels": 0}, "feature_channels=0"),
     ({"num_blocks": 0}, "num_blocks=0"), ({"num_in_ch": 1}, "rgb_mean"), ({"input_range": 0.0}, "input_range=0.0")],
)  # fmt: skip
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SPAN(**kwargs)
