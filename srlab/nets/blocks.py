"""Small pieces several architectures share: the scale check and the bicubic residual."""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F

from srlab.errors import ConfigError


def require_scale(scale: int, supported: Collection[int], family: str, key: str = "scale") -> int:
    """``scale`` if ``family`` can be built for it, else a ConfigError naming the config key and the choices."""
    if scale not in supported:
        choices = ", ".join(map(str, sorted(supported)))
        raise ConfigError(f"model.generator.{key}={scale}: {family} supports scale {choices} (set data.scale accordingly)")
    return scale


def bicubic_upsampled(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """``lq`` (B, C, h, w) upsampled bicubically to (B, C, h*scale, w*scale): the base a residual net adds to.

    With it a freshly initialised net starts at the bicubic baseline (VDSR's global residual), and
    every step of learning shows as a gain over it.
    """
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False)
