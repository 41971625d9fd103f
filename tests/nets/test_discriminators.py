"""Discriminators: logits (B, 1) at any patch size, channel layout of the VGG-style one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srlab.nets import VanillaDiscriminator, VGGStyleDiscriminator


@pytest.mark.parametrize("patch", [16, 32, 48, 128])
@pytest.mark.parametrize("factory", [VGGStyleDiscriminator, VanillaDiscriminator])
def test_logits_shape_any_patch(factory, patch: int) -> None:  # noqa: ANN001
    out = factory(num_feat=4)(torch.rand(2, 3, patch, patch))
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()


def test_vgg_style_layout() -> None:
    net = VGGStyleDiscriminator(num_feat=64)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.features) == 7
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 1024), (1024, 1)]


def test_no_sigmoid_in_discriminators() -> None:
    for net in (VGGStyleDiscriminator(num_feat=4), VanillaDiscriminator(num_feat=4)):
        assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
