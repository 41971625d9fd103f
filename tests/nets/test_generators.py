"""Generators (RRDBNet, SRResNet, MSRResNet, VanillaGenerator, Autoencoder): output shapes at every supported scale, ConfigError otherwise, RRDBNet size and names."""

from __future__ import annotations

import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets import Autoencoder, MSRResNet, RRDBNet, SRResNet, VanillaGenerator


def test_rrdbnet_x4_default_param_count() -> None:
    with torch.device("meta"):  # no memory, no init cost
        net = RRDBNet()
    assert sum(p.numel() for p in net.parameters()) == 16_697_987


def test_rrdbnet_basicsr_state_dict_names() -> None:
    keys = set(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4).state_dict())
    expected = {"conv_first.weight", "body.1.rdb3.conv5.bias", "conv_body.weight", "conv_up1.weight",
                "conv_up2.weight", "conv_hr.weight", "conv_last.bias"}  # fmt: skip
    assert expected <= keys
    assert not any("conv_up3" in k for k in keys)
    assert "conv_up3.weight" in RRDBNet(scale=8, num_feat=8, num_block=1, num_grow_ch=4).state_dict()


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_rrdbnet_shapes(scale: int) -> None:
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    assert net(torch.rand(2, 3, 8, 12)).shape == (2, 3, 8 * scale, 12 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_srresnet_shapes(scale: int) -> None:
    net = SRResNet(scale=scale, num_feat=8, num_block=2)
    assert net(torch.rand(2, 3, 8, 6)).shape == (2, 3, 8 * scale, 6 * scale)


@pytest.mark.parametrize(("scale", "h"), [(4, 75), (8, 70), (2, 140), (1, 276)])
def test_rrdbnet_banded_head_at_inference_gives_the_unbanded_output(scale: int, h: int) -> None:
    from srlab.nets.rrdbnet import HEAD_BAND

    torch.manual_seed(0)
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    for p in net.parameters():  # large enough weights that a missing halo row would show
        p.data.normal_(0, 0.2)
    lq = torch.rand(1, 3, h, 12)
    assert h // net.unshuffle > 2 * HEAD_BAND  # the inference call below runs in bands
    with torch.no_grad():
        banded = net(lq)
    full = net(lq).detach()  # with gradients: one pass
    torch.testing.assert_close(banded, full, atol=1e-4, rtol=1e-4)  # float rounding only: oneDNN picks per shape


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_shapes_and_bilinear_skip(scale: int) -> None:
    net = MSRResNet(num_feat=8, num_block=2, upscale=scale)
    lq = torch.rand(2, 3, 8, 6)
    assert net(lq).shape == (2, 3, 8 * scale, 6 * scale)
    with torch.no_grad():
        net.conv_last.weight.zero_(), net.conv_last.bias.zero_()  # the trunk adds nothing: output = the skip
    bilinear = torch.nn.functional.interpolate(lq, scale_factor=scale, mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(lq), bilinear)


def test_msrresnet_x4_param_count_and_basicsr_names() -> None:
    with torch.device("meta"):
        net = MSRResNet()
    assert sum(p.numel() for p in net.parameters()) == 1_517_571  # BasicSR MSRResNet x4, 64 x 16
    assert {"conv_first.weight", "body.15.conv2.bias", "upconv1.weight", "upconv2.weight", "conv_hr.bias",
            "conv_last.weight"} <= set(net.state_dict())  # fmt: skip
    assert "upconv2.weight" not in MSRResNet(num_feat=8, num_block=1, upscale=3).state_dict()


@pytest.mark.parametrize("factory", [RRDBNet, SRResNet])
def test_bicubic_residual_adds_bicubic_upsampling_with_the_same_weights(factory) -> None:  # noqa: ANN001
    small = {"num_feat": 8, "num_block": 1, **({"num_grow_ch": 4} if factory is RRDBNet else {})}
    plain, residual = factory(**small), factory(**small, bicubic_residual=True)
    residual.load_state_dict(plain.state_dict())  # the option adds no parameters
    plain.eval(), residual.eval()
    lq = torch.rand(1, 3, 8, 8)
    bicubic = torch.nn.functional.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(residual(lq), plain(lq) + bicubic)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_vanilla_generator_shapes_and_range(scale: int) -> None:
    sr = VanillaGenerator(scale=scale, num_feat=8)(torch.rand(2, 3, 8, 6) * 50)
    assert sr.shape == (2, 3, 8 * scale, 6 * scale)
    assert sr.min() >= 0 and sr.max() <= 1


def test_autoencoder_shape_160_to_640_layout() -> None:
    net = Autoencoder(num_feat=8)
    assert net(torch.rand(1, 3, 160, 160)).shape == (1, 3, 640, 640)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in net.encoder if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 10 and len(pools) == 2


@pytest.mark.parametrize(
    ("factory", "scale"),
    [(RRDBNet, 3), (RRDBNet, 16), (SRResNet, 1), (SRResNet, 5), (VanillaGenerator, 3), (Autoencoder, 2)],
)
def test_unsupported_scale_raises_config_error(factory, scale: int) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match=f"scale={scale}"):
        factory(scale=scale)


@pytest.mark.parametrize("upscale", [1, 8])
def test_msrresnet_unsupported_upscale_raises_config_error(upscale: int) -> None:
    with pytest.raises(ConfigError, match=f"upscale={upscale}: MSRResNet supports scale 2, 3, 4"):
        MSRResNet(upscale=upscale)


def test_rrdbnet_unshuffle_needs_divisible_input() -> None:
    from srlab.errors import SRLabError

    with pytest.raises(SRLabError, match="divisible by 4"):
        RRDBNet(scale=1, num_feat=8, num_block=1, num_grow_ch=4)(torch.rand(1, 3, 6, 8))


def test_generators_backpropagate() -> None:
    for net in (RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), SRResNet(num_feat=8, num_block=1),
                VanillaGenerator(num_feat=8), Autoencoder(num_feat=8)):  # fmt: skip
        net(torch.rand(2, 3, 8, 8)).mean().backward()
        assert all(p.grad is not None for p in net.parameters()), type(net).__name__
