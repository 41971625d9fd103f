"""Discriminator weights (Real-ESRGAN's ``RealESRGAN_x4plus_netD.pth``, BasicSR files, srlab checkpoints), loaded into a net."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srlab.errors import SRLabError
from srlab.weights.files import read_tensors
from srlab.weights.generator import _strip_common_prefixes, check_fit, unwrap

# BasicSR/Real-ESRGAN save a discriminator as {"params": state_dict}
_WRAPPER_KEYS = ("params", "state_dict", "net_d", "netD", "discriminator", "model")


def load_discriminator_weights(net: nn.Module, source: str | Path | Mapping[str, Any]) -> None:
    """Load a discriminator into ``net``, strictly (spectral-norm buffers ``weight_u``/``weight_v`` too).

    Args:
        net: the discriminator to fill (e.g. ``UNetDiscriminatorSN``).
        source: a BasicSR/Real-ESRGAN file (``params``), an srlab checkpoint (``discriminator.`` keys
            of its ``state_dict``), a plain state dict file, or an already loaded object.

    Raises:
        SRLabError: unreadable/unsafe file, nothing that looks like discriminator weights, or
            keys/shapes that do not fit ``net`` (one line).
    """
    label = str(source) if isinstance(source, (str, Path)) else "state dict"
    top = read_tensors(source) if isinstance(source, (str, Path)) else source
    obj = unwrap(top, _WRAPPER_KEYS)
    sd = _strip_common_prefixes({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, Mapping) else {})
    if any(k.startswith("discriminator.") for k in sd):  # an srlab Lightning checkpoint
        sd = {k.removeprefix("discriminator."): v for k, v in sd.items() if k.startswith("discriminator.")}
    if not sd:
        keys = list(top)[:5] if isinstance(top, Mapping) else type(top).__name__
        raise SRLabError(f"{label}: holds no discriminator weights (top-level keys: {keys})")
    check_fit(net, sd, label, True, "set model.discriminator options (num_feat, skip_connection) to the file's network",
              other="generator")
    net.load_state_dict(sd)
