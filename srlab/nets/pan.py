"""PAN, the pixel attention network (Zhao et al., ECCVW 2020), with the names of zhaohengyuan1/PAN's releases."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_scale
from srlab.nets.spec import NetSpec, StateDict, indices, shape

_SLOPE = 0.2  # LeakyReLU slope of every activation in the published net


class PA(nn.Module):
    """Pixel attention: a 1x1 conv and a sigmoid give one weight per pixel and channel.

    Args:
        nf: channels in and out.
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """A 3x3 conv gated by pixel attention computed from its input, then another 3x3 conv.

    Args:
        nf: channels in and out.
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)  # the attention map
        self.k3 = nn.Conv2d(nf, nf, 3, 1, 1, bias=False)
        self.k4 = nn.Conv2d(nf, nf, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: a plain 3x3 branch and a PAConv branch, fused by 1x1.

    Args:
        nf: channels in and out (each branch works at ``nf // 2``).
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        half = nf // 2
        self.conv1_a = nn.Conv2d(nf, half, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, half, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(half, half, 3, 1, 1, bias=False))  # a Sequential in the release
        self.PAConv = PAConv(half)
        self.conv3 = nn.Conv2d(2 * half, nf, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.leaky_relu(self.k1(F.leaky_relu(self.conv1_a(x), _SLOPE)), _SLOPE)  # (B, nf/2, H, W)
        b = F.leaky_relu(self.PAConv(F.leaky_relu(self.conv1_b(x), _SLOPE)), _SLOPE)
        return self.conv3(torch.cat([a, b], dim=1)) + x


class PAN(InputRange, nn.Module):
    """Pixel attention network: SCPA trunk at low resolution, nearest-upsample + conv + PA steps, bilinear skip.

    ``conv_first`` -> ``SCPA_trunk`` (``nb`` blocks) -> ``trunk_conv`` + long skip -> per
    upsampling step (one of 2 or 3, two of 2 for x4) nearest upsample, ``upconvN``, ``attN``,
    ``HRconvN`` -> ``conv_last``, plus the bilinear-upsampled input. ``PANx4_DF2K.pth`` is
    ``nf=40, unf=24, nb=16``: 272,419 parameters. x2 and x3 nets have the same tensors.

    Args:
        in_nc: channels of ``lq`` (B, in_nc, h, w) in [0, 1].
        out_nc: channels of ``sr`` (B, out_nc, h*upscale, w*upscale); must equal ``in_nc`` (bilinear skip).
        nf: trunk width (even: each SCPA branch takes half).
        unf: width of the upsampling convs.
        nb: number of SCPA blocks.
        upscale: 2, 3 or 4 (``scale`` in the published code).
        input_range: the net sees ``lq * input_range`` and its output is divided by it. Not stored in the state dict.

    Raises:
        ConfigError: another ``upscale``, odd ``nf``, ``in_nc != out_nc`` or ``input_range`` <= 0.
    """

    def __init__(
        self, in_nc: int = 3, out_nc: int = 3, nf: int = 40, unf: int = 24, nb: int = 16, upscale: int = 4,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        require_scale(upscale, (2, 3, 4), "PAN", key="upscale")
        if nf < 2 or nf % 2:
            raise ConfigError(f"model.generator.nf={nf}: PAN needs an even width (each SCPA branch takes half)")
        if in_nc != out_nc:
            raise ConfigError(f"model.generator: in_nc={in_nc} != out_nc={out_nc}; PAN adds the upsampled input")
        self.upscale = self.scale = upscale
        self.input_range = require_input_range(input_range)
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.steps = [2, 2] if upscale == 4 else [upscale]  # nearest-upsampling factor of each step
        for i, ch in enumerate([nf, unf][: len(self.steps)], start=1):
            self.add_module(f"upconv{i}", nn.Conv2d(ch, unf, 3, 1, 1))
            self.add_module(f"att{i}", PA(unf))
            self.add_module(f"HRconv{i}", nn.Conv2d(unf, unf, 3, 1, 1))
        self.conv_last = nn.Conv2d(unf, out_nc, 3, 1, 1)

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, C, h, w) to ``sr * input_range`` (B, C, h*upscale, w*upscale)."""
        fea = self.conv_first(x)  # (B, nf, h, w)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        for i, factor in enumerate(self.steps, start=1):
            fea = getattr(self, f"upconv{i}")(F.interpolate(fea, scale_factor=factor, mode="nearest"))
            fea = F.leaky_relu(getattr(self, f"att{i}")(fea), _SLOPE)  # (B, unf, h*factor, w*factor)
            fea = F.leaky_relu(getattr(self, f"HRconv{i}")(fea), _SLOPE)
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + base  # (B, C, h*upscale, w*upscale)


def _detect_pan(sd: StateDict) -> dict[str, Any] | None:
    """zhaohengyuan1/PAN's layout: ``SCPA_trunk.N.PAConv`` blocks; x4 when ``upconv2`` is present.

    x2 and x3 files have the same tensors: a one-step file builds x2 (set ``upscale: 3`` for x3 files).
    """
    if "SCPA_trunk.0.PAConv.k2.weight" not in sd or "upconv1.weight" not in sd:
        return None
    nf, in_nc = shape(sd, "conv_first.weight")[:2]
    out_nc, unf = shape(sd, "conv_last.weight")[:2]
    return {
        "_target_": "srlab.nets.pan.PAN",
        "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "unf": unf,
        "nb": len(indices(sd, r"SCPA_trunk\.(\d+)\.conv3\.weight")),
        "upscale": 4 if "upconv2.weight" in sd else 2,
    }  # fmt: skip


PAN_SPEC = NetSpec(name="PAN", detect=_detect_pan, scales=(2, 3, 4), input_range=None,
                   layouts="PAN (zhaohengyuan1/PAN)")
