"""RFDN (Liu et al., ECCV 2020 workshops, AIM 2020 efficient SR winner): IMDN's trunk with lighter blocks."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.imdn import LRELU_SLOPE, DistillationNet, conv, detect_distillation
from srlab.nets.rlfn import ESA
from srlab.nets.spec import NetSpec, StateDict


class RFDB(nn.Module):
    """Residual feature distillation block: 1x1 convs distil, residual 3x3 convs refine, ESA gates.

    Three stages each keep ``nf // 2`` channels from a 1x1 conv (``c{i}_d``) of the current features
    and refine all ``nf`` with a 3x3 conv plus identity skip (``c{i}_r``); ``c4`` distils the last
    refinement. The 1x1 ``c5`` fuses the four kept parts and ``esa`` gates the result. Unlike IMDN's
    block there is no skip from the block's input to its output (as in the source).

    Args:
        nf: channels in and out (>= 4, so ESA keeps a channel).
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        dc = nf // 2
        self.c1_d, self.c1_r = conv(nf, dc, 1), conv(nf, nf, 3)
        self.c2_d, self.c2_r = conv(nf, dc, 1), conv(nf, nf, 3)
        self.c3_d, self.c3_r = conv(nf, dc, 1), conv(nf, nf, 3)
        self.c4 = conv(nf, dc, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.c5 = conv(dc * 4, nf, 1)
        self.esa = ESA(nf, nf // 4, full=True, any_size=True)  # inputs from 3 px, as this port always took

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, feat = [], x
        for distil, refine in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            kept.append(self.act(distil(feat)))  # (B, nf/2, h, w)
            feat = self.act(refine(feat) + feat)  # (B, nf, h, w)
        kept.append(self.act(self.c4(feat)))
        return self.esa(self.c5(torch.cat(kept, dim=1)))  # (B, nf, h, w)


class RFDN(DistillationNet):
    """Residual feature distillation network (Liu, Tang, Wu, "Residual Feature Distillation Network ...").

    ``DistillationNet`` with ``num_modules`` RFDBs named ``B1``...: the names of njulj/RFDN's
    ``RFDN.py:RFDN``, so its published ``RFDN_AIM.pth`` (50 features, 4 blocks, x4: 433,448
    parameters) loads unchanged. That file was trained on [0, 255] input: build it with
    ``input_range=255``.

    Args:
        in_nc: channels of ``lq`` (B, in_nc, h, w), in [0, 1].
        nf: trunk width, >= 4.
        num_modules: number of RFDBs (the source builds 4 whatever it is told; here it is honoured).
        out_nc: channels of ``sr`` (B, out_nc, h*upscale, w*upscale).
        upscale: any integer factor >= 1 (the source fixes the upsampler at 4 whatever it is told).
        input_range: 1 for weights trained on [0, 1] input, 255 for [0, 255]. Not in the state dict.

    Raises:
        ConfigError: ``nf`` < 4, or what ``DistillationNet`` rejects.
    """

    def __init__(
        self, in_nc: int = 3, nf: int = 50, num_modules: int = 4, out_nc: int = 3, upscale: int = 4,
        input_range: float = 1.0,
    ) -> None:
        if not isinstance(nf, int) or nf < 4:
            raise ConfigError(f"model.generator.nf={nf}: RFDN needs an integer >= 4 (ESA works on nf // 4 channels)")
        super().__init__(RFDB, "B", "RFDN", in_nc, nf, num_modules, out_nc, upscale, input_range)


def _detect_rfdn(sd: StateDict) -> dict[str, Any] | None:
    """RFDN's config from its state dict; anchors: ``B1.c1_d.weight``, ``B1.esa.conv_max.weight``, ``fea_conv``."""
    if "B1.c1_d.weight" not in sd or "B1.esa.conv_max.weight" not in sd or "fea_conv.weight" not in sd:
        return None
    return detect_distillation(sd, "srlab.nets.rfdn.RFDN", r"B(\d+)\.c1_d\.weight")


RFDN_SPEC = NetSpec(name="RFDN", detect=_detect_rfdn, scales=(2, 3, 4), input_range=None, layouts="RFDN (njulj/RFDN)")
