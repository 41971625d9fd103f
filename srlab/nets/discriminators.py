"""Discriminators returning real/fake logits: SRGAN/ESRGAN VGG-style and the report's vanilla one (B, 1),
Real-ESRGAN's U-Net with spectral normalization (B, 1, H, W)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Channel multipliers and strides of the 8 conv blocks of the SRGAN discriminator (Ledig et al., Fig. 4)
_VGG_MULT = (1, 1, 2, 2, 4, 4, 8, 8)
_VGG_STRIDE = (1, 2, 1, 2, 1, 2, 1, 2)


class VGGStyleDiscriminator(nn.Module):
    """SRGAN's discriminator with global average pooling, so it takes any patch size >= 16.

    Eight 3x3 conv blocks with ``num_feat`` x (1, 1, 2, 2, 4, 4, 8, 8) channels, stride 2 on the
    2nd, 4th, 6th and 8th (16x downsampling), BatchNorm on all but the first, LeakyReLU(0.2); then
    ``AdaptiveAvgPool2d(1)``, ``Linear(8F, 16F)`` (512 -> 1024 at the default F = 64),
    LeakyReLU(0.2), ``Linear(16F, 1)``. SRGAN flattened a fixed 6x6 map and ESRGAN/BasicSR a
    fixed 4x4 map (128 px patches only); global pooling lifts that restriction. Used by both
    SRGAN (with ``GANLoss``) and ESRGAN (with ``RelativisticGANLoss``).

    Args:
        num_in_ch: channels of the image (B, num_in_ch, H, W).
        num_feat: width of the first block.

    Returns (forward):
        logits of shape (B, 1); no Sigmoid, the losses use BCE-with-logits.
    """

    # 16x downsampling by four stride-2 blocks: below 16 px the last blocks see only padding
    min_input_size = 16

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = num_in_ch
        for i, (mult, stride) in enumerate(zip(_VGG_MULT, _VGG_STRIDE)):
            out_ch = num_feat * mult
            # BN follows every conv but the first, which sees raw pixels; its bias would be cancelled by BN
            layers.append(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(in_ch, num_feat * 16), nn.LeakyReLU(0.2, inplace=True), nn.Linear(num_feat * 16, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score images ``x`` (B, C, H, W) as real/fake logits (B, 1)."""
        feat = self.pool(self.features(x)).flatten(1)  # (B, 8F)
        return self.classifier(feat)


class VanillaDiscriminator(nn.Module):
    """Four conv + BatchNorm + LeakyReLU blocks, global average pool and a linear head to logits.

    The report ended with a Sigmoid and trained with ``nn.BCELoss``; here the head returns raw
    logits and the losses use BCE-with-logits (``srlab.losses.GANLoss``), the numerically safe
    equivalent (same value and gradients, no saturation at 0 or 1).

    Args:
        num_in_ch: channels of the image (B, num_in_ch, H, W); any H, W >= 4.
        num_feat: width of the first conv; later blocks use 2x.

    Returns (forward):
        logits of shape (B, 1): > 0 means "real".
    """

    min_input_size = 4  # two stride-2 blocks

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64) -> None:
        super().__init__()
        nf2 = num_feat * 2
        self.features = nn.Sequential(
            # no BN on the first block: normalizing raw pixels only rescales them (DCGAN practice)
            nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 2, 1, bias=False), nn.BatchNorm2d(num_feat), nn.LeakyReLU(0.2, True),
            nn.Conv2d(num_feat, nf2, 3, 1, 1, bias=False), nn.BatchNorm2d(nf2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(nf2, nf2, 3, 2, 1, bias=False), nn.BatchNorm2d(nf2), nn.LeakyReLU(0.2, True),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(nf2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score images ``x`` (B, C, H, W) as real/fake logits (B, 1)."""
        feat = self.pool(self.features(x)).flatten(1)  # (B, 2F)
        return self.classifier(feat)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalization: one real/fake logit per pixel.

    Three stride-2 4x4 convs down (2F, 4F, 8F channels), three bilinear 2x upsamplings each followed
    by a 3x3 conv (4F, 2F, F) with additive skip connections from the encoder, two more 3x3 convs and
    a 1-channel head; LeakyReLU(0.2) throughout. All but the first and last convs are wrapped in
    ``torch.nn.utils.spectral_norm``, whose state-dict names (``weight_orig``, ``weight_u``,
    ``weight_v``) are those of Real-ESRGAN's ``UNetDiscriminatorSN``, so ``RealESRGAN_x4plus_netD.pth``
    loads as it is (``model.discriminator_init``). Per-pixel feedback suits the Real-ESRGAN
    generator's local artifacts (Wang et al. 2021, Sec. 3.3).

    Args:
        num_in_ch: channels of the image.
        num_feat: width F of the first conv.
        skip_connection: add the encoder features to the decoder's (Real-ESRGAN: True).

    Returns (forward):
        logits of shape (B, 1, H, W); H and W must be multiples of 8.
    """

    min_input_size = 8
    input_multiple = 8  # three stride-2 stages, undone by three 2x upsamplings

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        sn = nn.utils.spectral_norm
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def _up(self, x: torch.Tensor, conv: nn.Module, skip: torch.Tensor) -> torch.Tensor:
        x = self.act(conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)))
        return x + skip if self.skip_connection else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score images ``x`` (B, C, H, W) pixel by pixel: logits (B, 1, H, W)."""
        x0 = self.act(self.conv0(x))  # (B, F, H, W)
        x1 = self.act(self.conv1(x0))  # (B, 2F, H/2, W/2)
        x2 = self.act(self.conv2(x1))  # (B, 4F, H/4, W/4)
        x3 = self.act(self.conv3(x2))  # (B, 8F, H/8, W/8)
        x4 = self._up(x3, self.conv4, x2)
        x5 = self._up(x4, self.conv5, x1)
        x6 = self._up(x5, self.conv6, x0)
        out = self.act(self.conv8(self.act(self.conv7(x6))))
        return self.conv9(out)
