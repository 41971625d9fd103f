"""SRVGGNetCompact, Real-ESRGAN's compact generator (``realesr-general-x4v3``, ``realesr-animevideov3``)."""

from __future__ import annotations

import re

import math

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import require_choice, require_positive_ints
from srlab.nets.spec import NetSpec, StateDict, indices, shape

_ACT_TYPES = ("prelu", "relu", "leakyrelu")
_RESIDUALS = ("nearest", "bicubic")


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)  # one learned slope per channel: saved in the state dict
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope=0.1, inplace=True)  # Real-ESRGAN's slope (not ESRGAN's 0.2)


class SRVGGNetCompact(nn.Module):
    """A plain conv stack at low resolution, one PixelShuffle at the end (Wang et al., Real-ESRGAN).

    ``body`` is one flat ``nn.ModuleList`` so the state-dict names match Real-ESRGAN's releases:
    ``body.0`` conv ``num_in_ch -> num_feat``, ``body.1`` activation, then ``num_conv`` pairs of
    (3x3 conv ``num_feat -> num_feat``, activation), then the last conv to
    ``num_out_ch * upscale**2`` channels. ``PixelShuffle(upscale)`` turns those into the HR image,
    and the nearest-upsampled input is added, so the net learns only the residual. No conv runs
    at high resolution, which is why it is ~15x cheaper than RRDBNet. ``realesr-general-x4v3`` is
    ``num_feat=64, num_conv=32, act_type='prelu'``: 1,213,296 parameters.

    The scale argument keeps Real-ESRGAN's name ``upscale`` (so its published kwargs build this
    net unchanged); srlab configs pass ``upscale: ${data.scale}`` and the net exposes ``scale``
    like srlab's other generators.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*upscale, w*upscale).
        num_feat: width of every body conv.
        num_conv: number of (conv, activation) pairs between the first and the last conv.
        upscale: any integer factor >= 1 (one PixelShuffle does it; num_out_ch must equal num_in_ch
            for the residual).
        act_type: ``prelu``, ``relu`` or ``leakyrelu`` (slope 0.1).
        residual: upsampling of ``lq`` that the output is added to: ``nearest`` (Real-ESRGAN's,
            what its published weights expect) or ``bicubic`` (a better start for PSNR training: a
            freshly initialised net is already close to the bicubic baseline; it learned faster in
            the one-CPU-hour study, experiments/cpu_hour). Not stored in the state dict.

    Raises:
        ConfigError: unknown ``act_type`` or ``residual``, ``upscale`` < 1, or in/out channels that differ.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16, upscale: int = 4,
        act_type: str = "prelu", residual: str = "nearest",
    ) -> None:
        super().__init__()
        require_choice(act_type, _ACT_TYPES, "act_type")
        require_choice(residual, _RESIDUALS, "residual")
        require_positive_ints("SRVGGNetCompact", upscale=upscale)
        if num_in_ch != num_out_ch:
            raise ConfigError(
                f"model.generator: num_in_ch={num_in_ch} != num_out_ch={num_out_ch}; SRVGGNetCompact adds the "
                "upsampled input to its output, so both need the same channels"
            )
        self.upscale = self.scale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)
        self.residual = residual

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C, h*upscale, w*upscale)."""
        feat = lq
        for layer in self.body:
            feat = layer(feat)  # (B, F, h, w); the last conv gives (B, C*upscale^2, h, w)
        # (B, C, h*upscale, w*upscale); align_corners only exists for the bicubic mode
        extra = {"align_corners": False} if self.residual == "bicubic" else {}
        base = F.interpolate(lq, scale_factor=self.upscale, mode=self.residual, **extra)
        return self.upsampler(feat) + base


def _detect_srvgg(sd: StateDict) -> dict | None:
    if "body.0.weight" not in sd or any(not re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in sd):
        return None
    convs = [i for i in indices(sd, r"body\.(\d+)\.weight") if sd[f"body.{i}.weight"].ndim == 4]
    num_feat, in_ch = shape(sd, "body.0.weight")[:2]
    last = shape(sd, f"body.{convs[-1]}.weight")[0]
    has_prelu = "body.1.weight" in sd and sd["body.1.weight"].ndim == 1
    return {
        "_target_": "srlab.nets.srvgg.SRVGGNetCompact",
        "num_in_ch": in_ch, "num_out_ch": in_ch, "num_feat": num_feat, "num_conv": len(convs) - 2,
        "upscale": math.isqrt(last // in_ch), "act_type": "prelu" if has_prelu else "relu",
    }  # fmt: skip


SRVGG_SPEC = NetSpec(name="SRVGGNetCompact", detect=_detect_srvgg, scales=(1, 2, 3, 4), layouts="SRVGGNetCompact (Real-ESRGAN)")
