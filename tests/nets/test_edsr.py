"""EDSR: BasicSR's names, published parameter counts, shapes at every supported scale."""

from __future__ import annotations

import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.edsr import EDSR


def _count(**kwargs: object) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in EDSR(**kwargs).parameters())


def test_published_parameter_counts() -> None:
    # EDSR-baseline x4 (Lim et al.: 1.5 M): head 1,792 + 16 blocks x 2 x 36,928 + 36,928 + two
    # (64 -> 256) upsampling convs 2 x 147,712 + tail 1,731
    assert _count() == 1_792 + 32 * 36_928 + 36_928 + 2 * 147_712 + 1_731 == 1_517_571
    # EDSR x4 (43 M): 256 features, 32 blocks
    assert _count(num_feat=256, num_block=32, res_scale=0.1) == 43_089_923


def test_basicsr_state_dict_names_and_no_saved_mean() -> None:
    sd = EDSR(num_feat=8, num_block=2, upscale=4).state_dict()
    assert {"conv_first.weight", "body.1.conv2.bias", "conv_after_body.weight", "upsample.0.weight",
            "upsample.2.weight", "conv_last.bias"} <= set(sd)  # fmt: skip
    assert not any("mean" in k for k in sd)  # BasicSR keeps the RGB mean out of its files
    assert sd["upsample.0.weight"].shape == (32, 8, 3, 3)
    assert EDSR(num_feat=8, num_block=1, upscale=3).state_dict()["upsample.0.weight"].shape == (72, 8, 3, 3)


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_shape_and_backward(scale: int) -> None:
    net = EDSR(num_feat=8, num_block=2, upscale=scale)
    sr = net(torch.rand(2, 3, 5, 7))
    assert sr.shape == (2, 3, 5 * scale, 7 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_mean_shift_round_trips_a_zero_net() -> None:
    net = EDSR(num_feat=8, num_block=1, upscale=2).eval()
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():  # all-zero convs: only the mean added back remains
        torch.testing.assert_close(net(torch.rand(1, 3, 4, 4)), net.mean.expand(1, 3, 8, 8))


@pytest.mark.parametrize("scale", [0, 5, 6])
def test_unsupported_scale(scale: int) -> None:
    with pytest.raises(ConfigError, match=f"upscale={scale}"):
        EDSR(upscale=scale)
