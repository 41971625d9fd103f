"""Loss modules on tensors: pixel, adversarial (BCE, relativistic average) and VGG perceptual.

Loss *weights* live in the model config and are applied by the Lightning module, not here.
Adversarial losses share one interface so a single training step serves every GAN:
``generator_loss(real_logits, fake_logits)`` and ``discriminator_loss(real_logits, fake_logits)``,
where ``real_logits = D(gt)`` and ``fake_logits = D(sr)`` (``D(sr.detach())`` on the D side).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.vgg import VGGFeatureExtractor, vgg19_layer_index
from srlab.weights.vgg import vgg19_features

_CRITERIA = {"l1": F.l1_loss, "mse": F.mse_loss}


def _criterion(name: str, key: str):  # noqa: ANN202
    if name not in _CRITERIA:
        raise ConfigError(f"{key}={name!r}: use 'l1' or 'mse'")
    return _CRITERIA[name]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class PixelLoss(nn.Module):
    """Mean L1 or MSE between ``sr`` and ``gt``.

    Args:
        criterion: ``"l1"`` (ESRGAN/RRDBNet pre-training) or ``"mse"`` (the report's autoencoder, SRResNet).
    """

    def __init__(self, criterion: str = "l1") -> None:
        super().__init__()
        self.criterion = criterion
        self._fn = _criterion(criterion, "pixel_loss.criterion")

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self._fn(sr, gt)


class GANLoss(nn.Module):
    """Standard (non-relativistic) GAN loss on discriminator logits: vanilla GAN and SRGAN.

    ``"vanilla"`` is binary cross-entropy on logits (the report's Sigmoid + ``nn.BCELoss``, computed
    the numerically safe way); ``"lsgan"`` is the least-squares variant (MSE to 1/0).

    Args:
        gan_type: ``"vanilla"`` or ``"lsgan"``.
    """

    uses_real = False  # the generator side ignores D(gt)

    def __init__(self, gan_type: str = "vanilla") -> None:
        super().__init__()
        if gan_type not in ("vanilla", "lsgan"):
            raise ConfigError(f"gan_loss.gan_type={gan_type!r}: use 'vanilla' or 'lsgan'")
        self.gan_type = gan_type

    def _loss(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        if self.gan_type == "lsgan":
            return F.mse_loss(logits, torch.full_like(logits, target))
        return _bce(logits, target)

    def generator_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        """Push D(sr) toward "real"; ``real_logits`` is unused (accepted for a uniform interface)."""
        return self._loss(fake_logits, 1.0)

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Sum of the real term (D(gt) -> 1) and fake term (D(sr.detach()) -> 0), as BasicSR/SRGAN backprop."""
        return self._loss(real_logits, 1.0) + self._loss(fake_logits, 0.0)


class RelativisticGANLoss(nn.Module):
    """Relativistic average GAN loss (RaGAN, Jolicoeur-Martineau 2018) as ESRGAN/BasicSR use it.

    Each side asks whether real data looks *more* real than the average fake, and vice versa.
    The mean of the "other" side is detached exactly as in BasicSR's ESRGANModel:

    * D: ``BCE(real - mean(fake).detach(), 1) / 2 + BCE(fake - mean(real).detach(), 0) / 2``
    * G: ``BCE(real.detach() - mean(fake), 0) / 2 + BCE(fake - mean(real.detach()), 1) / 2``
    """

    uses_real = True  # the generator side needs D(gt)

    def generator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """G side: gradients reach the generator through ``fake_logits`` (both terms); D(gt) is fixed."""
        real = real_logits.detach()
        return 0.5 * (_bce(real - fake_logits.mean(), 0.0) + _bce(fake_logits - real.mean(), 1.0))

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """D side: each term trains D through its own logits against the other side's detached mean."""
        return 0.5 * (
            _bce(real_logits - fake_logits.mean().detach(), 1.0) + _bce(fake_logits - real_logits.mean().detach(), 0.0)
        )


class PerceptualLoss(nn.Module):
    """Distance between frozen VGG19 features of ``sr`` and ``gt`` (both RGB in [0, 1]).

    ESRGAN: ``layer="conv5_4"`` (before activation), ``criterion="l1"``.
    SRGAN: ``layer="relu5_4"`` (after activation), ``criterion="mse"``.
    Real-ESRGAN: ``layer_weights={conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1}``,
    ``criterion="l1"``: the weighted sum of the distances at each layer (BasicSR's ``PerceptualLoss``).

    Args:
        layer: VGG19 layer name (``convX_Y``, ``reluX_Y``, ``poolX``); ignored when ``layer_weights`` is set.
        criterion: ``"l1"`` or ``"mse"``.
        vgg_weights: ``"imagenet"``, ``"random"`` or a path; see ``srlab.weights.vgg.vgg19_features``.
            The model configs take it from the top-level ``vgg_weights`` key.
        use_input_norm: apply ImageNet mean/std inside the extractor.
        seed: seed of the ``"random"`` features.
        layer_weights: ``{layer: weight}`` for a loss over several layers, or None for ``layer`` alone.

    Attributes:
        weights_source: ``"imagenet:<file>"``, ``"random(seed=N)"`` or ``"file:<path>"``.
    """

    def __init__(
        self,
        layer: str = "conv5_4",
        criterion: str = "l1",
        vgg_weights: str = "imagenet",
        use_input_norm: bool = True,
        seed: int = 0,
        layer_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self._fn = _criterion(criterion, "perceptual_loss.criterion")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()} if layer_weights else None
        layers = list(self.layer_weights) if self.layer_weights else [layer]
        for name in layers:  # a wrong layer name is told before any weights are looked for
            vgg19_layer_index(name)
        state, source = vgg19_features(vgg_weights)
        self.weights_source = source if state is not None else f"random(seed={seed})"
        self.vgg = VGGFeatureExtractor(layers if self.layer_weights else layer, use_input_norm, state_dict=state,
                                       seed=seed, source=source)

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            gt_feat = self.vgg(gt)  # target features need no graph
        sr_feat = self.vgg(sr)
        if self.layer_weights is None:
            return self._fn(sr_feat, gt_feat)
        return sum(w * self._fn(sr_feat[k], gt_feat[k]) for k, w in self.layer_weights.items())
