"""SRResNet, the SRGAN generator (Ledig et al., CVPR 2017), as the origin report built it, and BasicSR's MSRResNet."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srlab.nets.edsr import ResidualBlockNoBN
from srlab.nets.rrdbnet import init_scaled_kaiming
from srlab.nets.blocks import BicubicResidualNet, require_scale
from srlab.nets.spec import NetSpec, StateDict, indices, shape

# PixelShuffle factors per upscaling factor: x2 steps where possible, one x3 step for scale 3.
_SHUFFLE_STEPS = {2: (2,), 3: (3,), 4: (2, 2), 8: (2, 2, 2)}


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN with an identity skip (SRGAN Fig. 4)."""

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.act = nn.PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    """conv to ``num_feat * factor**2`` channels, PixelShuffle(factor), PReLU."""

    def __init__(self, num_feat: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * factor * factor, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = nn.PReLU(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))  # (B, C, H*f, W*f)


class SRResNet(BicubicResidualNet):
    """SRGAN generator: 9x9 head, BN residual blocks, global skip, PixelShuffle upsampling, 9x9 tail.

    ``conv_first`` (9x9, PReLU) -> ``body`` (``num_block`` residual blocks) -> ``conv_body`` + BN,
    added to the head's features -> ``upsample`` (x2 PixelShuffle blocks, one x3 block for
    scale 3) -> ``conv_last`` (9x9) to RGB, no output activation. The origin report used 6
    residual blocks (the default); the SRGAN paper used 16.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*scale, w*scale).
        scale: 2, 3, 4 or 8.
        num_feat: trunk width.
        num_block: number of residual blocks.
        bicubic_residual: add bicubic upsampling of ``lq`` to the output, so the net learns only
            the residual (as RRDBNet's option; off in SRGAN). The state dict is unchanged by it.

    Raises:
        ConfigError: unsupported scale.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64, num_block: int = 6,
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__(scale, _SHUFFLE_STEPS, "SRResNet", bicubic_residual)
        self.conv_first = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 9, 1, 4), nn.PReLU(num_feat))
        self.body = nn.Sequential(*[ResidualBlock(num_feat) for _ in range(num_block)])
        self.conv_body = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.BatchNorm2d(num_feat))
        self.upsample = nn.Sequential(*[UpsampleBlock(num_feat, f) for f in _SHUFFLE_STEPS[scale]])
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)

    def forward_net(self, lq: torch.Tensor) -> torch.Tensor:
        """``lq`` (B, C, h, w) to the net's output (B, C_out, h*scale, w*scale), before the bicubic residual."""
        feat = self.conv_first(lq)  # (B, F, h, w)
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.upsample(feat))  # (B, C_out, h*scale, w*scale)


class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet: BN-free residual blocks, 3x3 convs, bilinear skip (BasicSR ``MSRResNet``).

    ``conv_first`` (LeakyReLU 0.1) -> ``body`` (``num_block`` conv-ReLU-conv blocks, no BN) ->
    ``upconv1`` (+ ``upconv2`` for x4), each PixelShuffle + LeakyReLU -> ``conv_hr`` (LeakyReLU)
    -> ``conv_last``, plus the bilinearly upsampled input. Names and layout are BasicSR's, so its
    released ``MSRResNet_x4`` weights load unchanged. x4 default (64 features, 16 blocks):
    1,517,571 parameters.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*upscale, w*upscale); must equal
            ``num_in_ch`` (the input is added back).
        num_feat: trunk width.
        num_block: number of residual blocks.
        upscale: 2, 3 or 4. BasicSR's name; the net exposes ``scale`` as well.

    Raises:
        ConfigError: unsupported ``upscale``.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4
    ) -> None:
        super().__init__()
        self.upscale = self.scale = require_scale(upscale, (2, 3, 4), "MSRResNet", key="upscale")
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        factor = 2 if upscale == 4 else upscale
        self.upconv1 = nn.Conv2d(num_feat, num_feat * factor * factor, 3, 1, 1)
        if upscale == 4:
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(factor)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        # BasicSR's init: Kaiming x 0.1 keeps the BN-free residual sum small at the start
        init_scaled_kaiming([m for m in self.modules() if isinstance(m, nn.Conv2d)], 0.1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C_out, h*upscale, w*upscale)."""
        feat = self.body(self.lrelu(self.conv_first(lq)))  # (B, F, h, w)
        feat = self.lrelu(self.pixel_shuffle(self.upconv1(feat)))
        if self.upscale == 4:
            feat = self.lrelu(self.pixel_shuffle(self.upconv2(feat)))  # (B, F, 4h, 4w)
        sr = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return sr + F.interpolate(lq, scale_factor=self.upscale, mode="bilinear", align_corners=False)


def _detect_srresnet(sd: StateDict) -> dict | None:
    if "conv_first.0.weight" not in sd or "body.0.bn1.weight" not in sd:
        return None
    num_feat, in_ch = shape(sd, "conv_first.0.weight")[:2]
    steps = indices(sd, r"upsample\.(\d+)\.conv\.weight")
    return {
        "_target_": "srlab.nets.srresnet.SRResNet",
        "num_in_ch": in_ch, "num_out_ch": shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": len(indices(sd, r"body\.(\d+)\.conv1\.weight")),
        "scale": math.prod(math.isqrt(shape(sd, f"upsample.{i}.conv.weight")[0] // num_feat) for i in steps),
    }  # fmt: skip


SRRESNET_SPEC = NetSpec(name="SRResNet", detect=_detect_srresnet, scales=(2, 3, 4, 8), layouts="SRResNet (srlab)")


def _detect_msrresnet(sd: StateDict) -> dict | None:
    if "upconv1.weight" not in sd or "body.0.conv1.weight" not in sd:
        return None
    num_feat, in_ch = shape(sd, "conv_first.weight")[:2]
    return {
        "_target_": "srlab.nets.srresnet.MSRResNet",
        "num_in_ch": in_ch, "num_out_ch": shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": len(indices(sd, r"body\.(\d+)\.conv1\.weight")),
        # x4 is two x2 steps (upconv2); x2/x3 one conv to 4F/9F
        "upscale": 4 if "upconv2.weight" in sd else math.isqrt(shape(sd, "upconv1.weight")[0] // num_feat),
    }  # fmt: skip


MSRRESNET_SPEC = NetSpec(name="MSRResNet", detect=_detect_msrresnet, scales=(2, 3, 4), layouts="MSRResNet (BasicSR)")
