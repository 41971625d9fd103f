"""Discriminators: logits (B, 1) at any patch size, channel layout of the VGG-style one; Real-ESRGAN's U-Net
(per-pixel logits, its published state-dict names)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srlab.errors import SRLabError
from srlab.nets import UNetDiscriminatorSN, VanillaDiscriminator, VGGStyleDiscriminator
from srlab.weights import load_discriminator_weights


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


def _real_esrgan_layout(num_feat: int) -> nn.Module:
    """Real-ESRGAN's UNetDiscriminatorSN parameter layout, written out independently of srlab's class."""
    sn, f, net = nn.utils.spectral_norm, num_feat, nn.Module()
    net.conv0 = nn.Conv2d(3, f, 3, 1, 1)
    for i, (cin, cout, k, s) in enumerate([(f, 2 * f, 4, 2), (2 * f, 4 * f, 4, 2), (4 * f, 8 * f, 4, 2), (8 * f, 4 * f, 3, 1),
                                           (4 * f, 2 * f, 3, 1), (2 * f, f, 3, 1), (f, f, 3, 1), (f, f, 3, 1)], start=1):
        setattr(net, f"conv{i}", sn(nn.Conv2d(cin, cout, k, s, 1, bias=False)))
    net.conv9 = nn.Conv2d(f, 1, 3, 1, 1)
    return net


@pytest.mark.parametrize("patch", [8, 32, 96])
def test_unet_discriminator_scores_every_pixel(patch: int) -> None:
    net = UNetDiscriminatorSN(num_feat=4)
    out = net(torch.rand(2, 3, patch, patch))
    assert out.shape == (2, 1, patch, patch) and torch.isfinite(out).all()
    assert UNetDiscriminatorSN(num_feat=4, skip_connection=False)(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)


def test_unet_discriminator_loads_real_esrgans_netd_file(tmp_path) -> None:
    ref = _real_esrgan_layout(8)
    for m in ref.modules():  # power iterations move u and v away from their initial values
        if hasattr(m, "weight_u"):
            m.weight_u.normal_()
            m.weight_v.normal_()
    path = tmp_path / "RealESRGAN_x4plus_netD.pth"
    torch.save({"params": ref.state_dict()}, path)  # BasicSR's save layout
    net = UNetDiscriminatorSN(num_feat=8)
    assert set(net.state_dict()) == set(ref.state_dict())  # weight_orig, weight_u, weight_v included
    load_discriminator_weights(net, str(path))
    for k, v in ref.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    with pytest.raises(SRLabError, match=r"netD.pth: weights do not fit UNetDiscriminatorSN \(.*shape mismatches"):
        load_discriminator_weights(UNetDiscriminatorSN(num_feat=16), str(path))
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}}, tmp_path / "g.pth")
    with pytest.raises(SRLabError, match="none of its 1 tensors fit UNetDiscriminatorSN.*a generator"):
        load_discriminator_weights(net, str(tmp_path / "g.pth"))
