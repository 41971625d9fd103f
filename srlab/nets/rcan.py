"""RCAN (Zhang et al., ECCV 2018) as spandrel builds it, without writing into its input."""

from __future__ import annotations

import torch
from spandrel.architectures.RCAN import RCAN as SpandrelRCAN


class RCAN(SpandrelRCAN):
    """spandrel's RCAN (same constructor, same state-dict names), fed a copy of ``lq``.

    spandrel's forward scales its input in place (``x *= rgb_range``) whenever no padding is
    needed, so the caller's ``lq`` came back multiplied by 255: a training step's bicubic baseline
    read 4.9 dB. Here the net works on its own copy.
    """

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """``lq`` (B, 3, h, w) in [0, 1], left untouched -> ``sr`` (B, 3, h*scale, w*scale)."""
        return super().forward(lq.clone())
