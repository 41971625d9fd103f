"""Small pieces several architectures share: the argument checks, the input range and the bicubic residual."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError


def require_scale(scale: int, supported: Collection[int], family: str, key: str = "scale") -> int:
    """``scale`` if ``family`` can be built for it, else a ConfigError naming the config key and the choices."""
    if scale not in supported:
        choices = ", ".join(map(str, sorted(supported)))
        raise ConfigError(f"model.generator.{key}={scale}: {family} supports scale {choices} (set data.scale accordingly)")
    return scale


def require_positive_ints(family: str, **values: Any) -> None:
    """A ConfigError naming ``model.generator.<key>`` for the first value that is not an integer >= 1.

    Booleans are refused although Python counts them as integers: ``true`` is no size.
    """
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"model.generator.{key}={value!r}: {family} needs an integer >= 1")


def require_choice(value: str, choices: Collection[str], key: str) -> str:
    """``value`` if it is one of ``choices``, else a ConfigError naming ``model.generator.<key>`` and the choices."""
    if value not in choices:
        raise ConfigError(f"model.generator.{key}={value!r}: use one of {', '.join(choices)}")
    return value


def require_input_range(input_range: float) -> float:
    """``input_range`` as a float if it is a number > 0, else a ConfigError naming ``model.generator.input_range``."""
    if not isinstance(input_range, int | float) or isinstance(input_range, bool) or not input_range > 0:
        raise ConfigError(
            f"model.generator.input_range={input_range!r}: must be > 0 (1 for weights trained on [0, 1] input, "
            "255 for [0, 255])"
        )
    return float(input_range)


class InputRange:
    """Mixin, listed before ``nn.Module``, of nets whose weights were trained on ``[0, input_range]`` input.

    ``forward`` runs the net's ``forward_in_range`` on ``lq * input_range`` and divides what it returns by
    ``input_range``, so srlab feeds [0, 1] and gets [0, 1] whatever range the published weights expect. The
    net sets ``self.input_range`` (:func:`require_input_range`); it is not in the state dict.
    """

    input_range: float

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) in [0, 1] to ``sr`` (B, C_out, h*scale, w*scale) in [0, 1]."""
        if self.input_range == 1:  # x * 1 and x / 1 are exact: spare two passes over the tensors
            return self.forward_in_range(lq)
        return self.forward_in_range(lq * self.input_range) / self.input_range

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """The net on ``x`` = ``lq * input_range``: ``sr * input_range``."""
        raise NotImplementedError


def bicubic_upsampled(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """``lq`` (B, C, h, w) upsampled bicubically to (B, C, h*scale, w*scale): the base a residual net adds to.

    With it a freshly initialised net starts at the bicubic baseline (VDSR's global residual), and
    every step of learning shows as a gain over it.
    """
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False)


class BicubicResidualNet(nn.Module):
    """Base of nets with the ``bicubic_residual`` option (RRDBNet, SRResNet), built for one of a few scales.

    ``forward`` returns what the net's ``forward_net`` computes, plus :func:`bicubic_upsampled` ``lq`` when
    ``bicubic_residual`` is on: the net then learns only the residual (VDSR-style). The state dict is the
    same either way.

    Args:
        scale: the upscaling factor, one of ``supported``.
        supported: the scales ``family`` can be built for.
        family: the net's name, for the error message.
        bicubic_residual: add the bicubic upsampling of ``lq`` to the output.

    Raises:
        ConfigError: unsupported scale.
    """

    def __init__(self, scale: int, supported: Collection[int], family: str, bicubic_residual: bool) -> None:
        super().__init__()
        self.scale = require_scale(scale, supported, family)
        self.bicubic_residual = bicubic_residual

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C_out, h*scale, w*scale)."""
        sr = self.forward_net(lq)
        return sr + bicubic_upsampled(lq, self.scale) if self.bicubic_residual else sr

    def forward_net(self, lq: torch.Tensor) -> torch.Tensor:
        """The net's own output for ``lq``, before the bicubic residual."""
        raise NotImplementedError
