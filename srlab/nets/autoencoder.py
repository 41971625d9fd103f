"""The origin report's convolutional autoencoder: pool twice, bicubic-upsample x4 twice."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.spec import NetSpec, StateDict, shape


def _conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1)


class Autoencoder(nn.Module):
    """Conv encoder (/4) and bicubic decoder (x16): an x4 upscaler, 160 px -> 640 px.

    Follows the report's phase 1: the encoder has 5 convs (3x3, ReLU) and 2 max-pools, the decoder
    5 convs (3x3, ReLU except the last) and 2 bicubic x4 upsamplings. Widths are chosen so the
    expensive convs run at low resolution, which keeps it trainable on a CPU (``F`` =
    ``num_feat``, ``h`` = input height)::

        enc1  in  -> F/2  @ h       max-pool -> h/2
        enc2  F/2 -> F    @ h/2
        enc3  F   -> F    @ h/2     max-pool -> h/4
        enc4  F   -> F    @ h/4
        enc5  F   -> F    @ h/4     (bottleneck)
        dec1  F   -> F    @ h/4
        dec2  F   -> F    @ h/4     bicubic x4 -> h
        dec3  F   -> F/2  @ h       bicubic x4 -> 4h
        dec4  F/2 -> F/4  @ 4h
        dec5  F/4 -> out  @ 4h      (linear RGB output, no activation)

    Input height and width should be divisible by 4 (the pools floor otherwise and the output is
    then smaller than 4x the input).

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, 4h, 4w).
        num_feat: width ``F`` of the low-resolution layers.
        scale: must be 4 (two pools and two x4 upsamplings fix the factor).

    Raises:
        ConfigError: ``scale`` is not 4.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, scale: int = 4) -> None:
        super().__init__()
        if scale != 4:
            raise ConfigError(
                f"model.generator.scale={scale}: the Autoencoder's 2 pools and 2 bicubic x4 upsamplings "
                "make it x4 only; use data.scale=4 or another generator (e.g. model=rrdbnet)"
            )
        self.scale = scale
        half, quarter = max(1, num_feat // 2), max(1, num_feat // 4)
        self.encoder = nn.Sequential(
            _conv(num_in_ch, half), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            _conv(half, num_feat), nn.ReLU(inplace=True),
            _conv(num_feat, num_feat), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            _conv(num_feat, num_feat), nn.ReLU(inplace=True),
            _conv(num_feat, num_feat), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.dec_low = nn.Sequential(
            _conv(num_feat, num_feat), nn.ReLU(inplace=True),
            _conv(num_feat, num_feat), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.dec_mid = nn.Sequential(_conv(num_feat, half), nn.ReLU(inplace=True))
        self.dec_high = nn.Sequential(_conv(half, quarter), nn.ReLU(inplace=True), _conv(quarter, num_out_ch))

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C_out, 4h, 4w)."""
        feat = self.dec_low(self.encoder(lq))  # (B, F, h/4, w/4)
        feat = F.interpolate(feat, scale_factor=4, mode="bicubic", align_corners=False)  # (B, F, h, w)
        feat = self.dec_mid(feat)  # (B, F/2, h, w)
        feat = F.interpolate(feat, scale_factor=4, mode="bicubic", align_corners=False)  # (B, F/2, 4h, 4w)
        return self.dec_high(feat)  # (B, C_out, 4h, 4w)


def _detect_autoencoder(sd: StateDict) -> dict | None:
    if "encoder.0.weight" not in sd or "dec_high.2.weight" not in sd:
        return None
    return {
        "_target_": "srlab.nets.autoencoder.Autoencoder",
        "num_in_ch": shape(sd, "encoder.0.weight")[1], "num_out_ch": shape(sd, "dec_high.2.weight")[0],
        "num_feat": shape(sd, "encoder.3.weight")[0], "scale": 4,
    }  # fmt: skip


AUTOENCODER_SPEC = NetSpec(name="Autoencoder", detect=_detect_autoencoder, scales=(4,), layouts="Autoencoder (srlab)")
