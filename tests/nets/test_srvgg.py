"""SRVGGNetCompact: Real-ESRGAN's names and sizes, shapes at every scale, the nearest-upsampled residual."""

from __future__ import annotations

import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.srvgg import SRVGGNetCompact


def test_realesr_general_x4v3_param_count_and_names() -> None:
    # realesr-general-x4v3: num_feat=64, num_conv=32, prelu. Hand count: first conv 3*64*9+64 = 1,792;
    # 33 PReLUs x 64 = 2,112; 32 body convs x (64*64*9+64) = 1,181,696; last conv 64*48*9+48 = 27,696.
    with torch.device("meta"):
        net = SRVGGNetCompact(num_feat=64, num_conv=32, upscale=4, act_type="prelu")
    assert sum(p.numel() for p in net.parameters()) == 1_792 + 2_112 + 1_181_696 + 27_696 == 1_213_296
    sd = net.state_dict()
    assert sd["body.0.weight"].shape == (64, 3, 3, 3) and sd["body.1.weight"].shape == (64,)
    assert sd["body.66.weight"].shape == (48, 64, 3, 3) and "body.67.weight" not in sd
    assert len(sd) == 34 * 2 + 33  # 34 convs (weight, bias), 33 PReLU slopes


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_shape_and_backward(scale: int) -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=scale)
    sr = net(torch.rand(2, 3, 6, 10))
    assert sr.shape == (2, 3, 6 * scale, 10 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("act_type", ["relu", "leakyrelu"])
def test_parameter_free_activations_keep_conv_indices(act_type: str) -> None:
    sd = SRVGGNetCompact(num_feat=8, num_conv=2, act_type=act_type).state_dict()
    assert sorted({k.split(".")[1] for k in sd}, key=int) == ["0", "2", "4", "6"]


def test_output_is_body_plus_nearest_upsampled_input() -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=3).eval()
    torch.nn.init.zeros_(net.body[-1].weight)
    torch.nn.init.zeros_(net.body[-1].bias)
    lq = torch.rand(1, 3, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(net(lq), lq.repeat_interleave(3, -2).repeat_interleave(3, -1))


def test_bicubic_residual_adds_the_bicubic_upsampled_input() -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4, residual="bicubic").eval()
    torch.nn.init.zeros_(net.body[-1].weight)
    torch.nn.init.zeros_(net.body[-1].bias)
    lq = torch.rand(1, 3, 6, 7)
    expected = torch.nn.functional.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(net(lq), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"act_type": "gelu"}, "act_type='gelu'"), ({"residual": "bilinear"}, "residual='bilinear'"), ({"upscale": 0}, "upscale=0"), ({"num_out_ch": 1}, "num_out_ch=1")],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SRVGGNetCompact(**kwargs)
