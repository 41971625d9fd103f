"""The origin report's vanilla GAN: a small PixelShuffle generator and a BatchNorm discriminator."""

from __future__ import annotations

import math

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.discriminators import VanillaDiscriminator  # re-exported: the report's GAN in one place
from srlab.nets.spec import NetSpec, StateDict, indices, shape

__all__ = ["VanillaDiscriminator", "VanillaGenerator"]


class VanillaGenerator(nn.Module):
    """Small conv generator with x2 PixelShuffle steps and a Tanh output mapped to [0, 1].

    ``conv_first`` (9x9, PReLU) -> ``body`` (two 3x3 conv + PReLU) -> ``log2(scale)`` blocks of
    conv + PixelShuffle(2) + PReLU -> ``conv_last`` (3x3) -> Tanh. The report ended with Tanh,
    which yields [-1, 1]; srlab's images live in [0, 1], so the output is ``(tanh(x) + 1) / 2``.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*scale, w*scale), in [0, 1].
        num_feat: width of the convs.
        scale: a power of two, 2 to 16.

    Raises:
        ConfigError: ``scale`` is not a power of two in [2, 16].
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, scale: int = 4) -> None:
        super().__init__()
        if scale not in (2, 4, 8, 16):
            raise ConfigError(
                f"model.generator.scale={scale}: VanillaGenerator upsamples with x2 PixelShuffle steps, "
                "so scale must be 2, 4, 8 or 16"
            )
        self.scale = scale
        self.conv_first = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 9, 1, 4), nn.PReLU(num_feat))
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat),
        )  # fmt: skip
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(num_feat)]
        self.upsample = nn.Sequential(*ups)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C_out, h*scale, w*scale) in [0, 1]."""
        feat = self.body(self.conv_first(lq))  # (B, F, h, w)
        out = self.conv_last(self.upsample(feat))  # (B, C_out, h*scale, w*scale)
        return (torch.tanh(out) + 1.0) / 2.0


def _detect_vanilla(sd: StateDict) -> dict | None:
    if "conv_first.0.weight" not in sd or "body.0.weight" not in sd or "upsample.0.weight" not in sd:
        return None
    num_feat, in_ch = shape(sd, "conv_first.0.weight")[:2]
    return {
        "_target_": "srlab.nets.vanilla.VanillaGenerator",
        "num_in_ch": in_ch, "num_out_ch": shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "scale": 2 ** len(indices(sd, r"upsample\.(\d+)\.bias")),
    }  # fmt: skip


VANILLA_SPEC = NetSpec(name="VanillaGenerator", detect=_detect_vanilla, scales=(2, 4, 8), layouts="VanillaGenerator (srlab)")
