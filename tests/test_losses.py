"""Losses against values and gradients computed by hand with plain math."""

from __future__ import annotations

import math

import pytest
import torch

from srlab.errors import ConfigError, SRLabError
from srlab.losses import GANLoss, PerceptualLoss, PixelLoss, RelativisticGANLoss

REAL = [2.0, -1.0, 0.5]
FAKE = [0.3, -0.7, 1.1]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce_real(x: float) -> float:
    """-log(sigmoid(x)): BCE of a logit against target 1."""
    return softplus(-x)


def bce_fake(x: float) -> float:
    """-log(1 - sigmoid(x)): BCE of a logit against target 0."""
    return softplus(x)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def logits(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1).requires_grad_(True)  # (B, 1)


def test_pixel_loss_values() -> None:
    sr = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    gt = torch.tensor([[1.0, 0.5], [0.5, 0.0]])
    assert PixelLoss("l1")(sr, gt).item() == pytest.approx((1 + 0 + 0.5 + 0.25) / 4)
    assert PixelLoss("mse")(sr, gt).item() == pytest.approx((1 + 0 + 0.25 + 0.0625) / 4)
    with pytest.raises(ConfigError, match="pixel_loss.criterion='l2'"):
        PixelLoss("l2")


def test_vanilla_gan_values() -> None:
    loss = GANLoss("vanilla")
    real, fake = logits(REAL), logits(FAKE)
    g = loss.generator_loss(real, fake)
    assert g.item() == pytest.approx(mean([bce_real(f) for f in FAKE]))
    g_no_real = loss.generator_loss(None, fake)
    assert g_no_real.item() == pytest.approx(g.item())
    d = loss.discriminator_loss(real, fake)
    assert d.item() == pytest.approx(mean([bce_real(r) for r in REAL]) + mean([bce_fake(f) for f in FAKE]))
    # extreme logits stay finite (Sigmoid + BCELoss would clamp/saturate here)
    assert torch.isfinite(loss.discriminator_loss(logits([200.0]), logits([-200.0])))


def test_lsgan_values() -> None:
    loss = GANLoss("lsgan")
    assert loss.generator_loss(None, logits(FAKE)).item() == pytest.approx(mean([(f - 1) ** 2 for f in FAKE]))
    with pytest.raises(ConfigError, match="gan_type"):
        GANLoss("wgan")


def test_ragan_discriminator_value_and_gradients() -> None:
    real, fake = logits(REAL), logits(FAKE)
    mr, mf, n = mean(REAL), mean(FAKE), len(REAL)
    d = RelativisticGANLoss().discriminator_loss(real, fake)
    expected = 0.5 * mean([bce_real(r - mf) for r in REAL]) + 0.5 * mean([bce_fake(f - mr) for f in FAKE])
    assert d.item() == pytest.approx(expected)
    d.backward()
    # each term reaches D only through its own logits: the other side's mean is detached
    exp_real = [0.5 / n * -sigmoid(-(r - mf)) for r in REAL]
    exp_fake = [0.5 / n * sigmoid(f - mr) for f in FAKE]
    assert real.grad.flatten().tolist() == pytest.approx(exp_real)
    assert fake.grad.flatten().tolist() == pytest.approx(exp_fake)


def test_ragan_generator_value_and_gradients() -> None:
    real, fake = logits(REAL), logits(FAKE)
    mr, mf, n = mean(REAL), mean(FAKE), len(REAL)
    g = RelativisticGANLoss().generator_loss(real, fake)
    expected = 0.5 * mean([bce_fake(r - mf) for r in REAL]) + 0.5 * mean([bce_real(f - mr) for f in FAKE])
    assert g.item() == pytest.approx(expected)
    g.backward()
    assert real.grad is None  # D(gt) is a fixed reference for the generator
    # d/df_j: through mean(fake) in every real term, plus its own fake term
    through_mean = 0.5 / n * sum(sigmoid(r - mf) * (-1.0 / n) for r in REAL)
    exp_fake = [through_mean + 0.5 / n * -sigmoid(-(f - mr)) for f in FAKE]
    assert fake.grad.flatten().tolist() == pytest.approx(exp_fake)


def test_perceptual_loss_random_weights() -> None:
    loss = PerceptualLoss(layer="relu1_2", criterion="mse", vgg_weights="random")
    assert loss.weights_source == "random(seed=0)"
    assert list(loss.parameters()) == [] and len(loss.state_dict()) == 0
    gt = torch.rand(2, 3, 16, 16)
    sr = torch.rand(2, 3, 16, 16, requires_grad=True)
    assert loss(gt, gt).item() == 0.0
    value = loss(sr, gt)
    assert value.item() == pytest.approx(torch.mean((loss.vgg(sr) - loss.vgg(gt)) ** 2).item())
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_perceptual_loss_config_errors() -> None:
    with pytest.raises(ConfigError, match="perceptual_loss.criterion"):
        PerceptualLoss(criterion="huber", vgg_weights="random")
    with pytest.raises(SRLabError, match="not a VGG19 layer"):
        PerceptualLoss(layer="relu9_9", vgg_weights="random")


def test_perceptual_loss_over_several_layers_is_the_weighted_sum() -> None:
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0}  # Real-ESRGAN's first three
    multi = PerceptualLoss(criterion="l1", vgg_weights="random", layer_weights=weights)
    gt, sr = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    singles = {k: PerceptualLoss(layer=k, criterion="l1", vgg_weights="random")(sr, gt) for k in weights}
    assert multi(sr, gt).item() == pytest.approx(sum(w * singles[k].item() for k, w in weights.items()), rel=1e-5)
    assert multi(gt, gt).item() == 0.0
