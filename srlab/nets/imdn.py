"""IMDN (Hui et al., ACM MM 2019) and the distillation trunk it shares with RFDN (``srlab.nets.rfdn``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_positive_ints
from srlab.nets.spec import NetSpec, StateDict, indices, require_layout, shape, shuffle_scale

LRELU_SLOPE = 0.05  # the slope of every LeakyReLU in IMDN's and RFDN's code (not ESRGAN's 0.2)


def conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A biased conv padded to keep h, w (at stride 1), as every conv of both papers."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2)


class DistillationNet(InputRange, nn.Module):
    """The trunk IMDN and RFDN share: blocks at LR, their outputs fused, one PixelShuffle at the end.

    ``fea_conv`` -> ``{prefix}1`` ... ``{prefix}N`` (each block feeds the next) -> ``c`` (1x1 conv +
    LeakyReLU over all N block outputs concatenated) -> ``LR_conv`` + the ``fea_conv`` skip ->
    ``upsampler`` (conv to ``out_nc * upscale**2`` channels, PixelShuffle). Subclasses pick the block.

    Args:
        block: builds one block from ``nf`` (channels in and out).
        prefix: the blocks' state-dict name before their 1-based index (``IMDB``, ``B``).
        name: the family's name, for error messages.
        in_nc: channels of ``lq`` (B, in_nc, h, w), in [0, 1].
        nf: trunk width.
        num_modules: number of blocks.
        out_nc: channels of ``sr`` (B, out_nc, h*upscale, w*upscale).
        upscale: any integer factor >= 1 (one PixelShuffle does it).
        input_range: the range the weights expect: ``lq`` is multiplied by it before the net and the
            output divided by it after, so srlab keeps [0, 1] at both ends. Not in the state dict.

    Raises:
        ConfigError: a size < 1, a non-integer ``upscale`` or ``input_range`` <= 0.
    """

    def __init__(
        self, block: Callable[[int], nn.Module], prefix: str, name: str,
        in_nc: int, nf: int, num_modules: int, out_nc: int, upscale: int,
        input_range: float,
    ) -> None:
        super().__init__()
        require_positive_ints(name, in_nc=in_nc, nf=nf, num_modules=num_modules, out_nc=out_nc, upscale=upscale)
        self.upscale = self.scale = upscale
        self.input_range = require_input_range(input_range)
        self.fea_conv = conv(in_nc, nf, 3)
        self.block_names = tuple(f"{prefix}{i}" for i in range(1, num_modules + 1))
        for block_name in self.block_names:  # named attributes, not a ModuleList: the published keys
            self.add_module(block_name, block(nf))
        self.c = nn.Sequential(conv(nf * num_modules, nf, 1), nn.LeakyReLU(LRELU_SLOPE))
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = nn.Sequential(conv(nf, out_nc * upscale**2, 3), nn.PixelShuffle(upscale))

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, in_nc, h, w) to ``sr * input_range`` (B, out_nc, h*upscale, w*upscale)."""
        fea = self.fea_conv(x)  # (B, nf, h, w)
        outs, feat = [], fea
        for block_name in self.block_names:
            feat = getattr(self, block_name)(feat)  # (B, nf, h, w)
            outs.append(feat)
        feat = self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea  # (B, nf, h, w)
        return self.upsampler(feat)  # (B, out_nc, h*upscale, w*upscale)


class ContrastChannelAttention(nn.Module):
    """Channel attention driven by each channel's spatial mean plus its standard deviation (IMDN's CCA).

    Args:
        channels: channels in and out.
        reduction: the squeeze factor of the two 1x1 convs (IMDN's 16).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        # population std (divide by h*w), as the paper's "contrast"; sqrt is not smoothed, as in the source
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDB(nn.Module):
    """Information multi-distillation block: three times keep a quarter of the channels, refine the rest.

    c1..c3 (3x3, LeakyReLU) each split their output into ``nf // 4`` kept channels and the remaining
    ``nf - nf // 4`` that feed the next conv; ``c4`` maps the last remainder to ``nf // 4``. The four
    kept parts are concatenated (``nf`` channels), reweighted by contrast-aware attention, fused by
    the 1x1 ``c5`` and added to the input.

    Args:
        nf: channels in and out (a multiple of 4, >= 16 so the attention's squeeze keeps a channel).
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.distilled = nf // 4
        self.remaining = nf - self.distilled
        self.c1 = conv(nf, nf, 3)
        self.c2 = conv(self.remaining, nf, 3)
        self.c3 = conv(self.remaining, nf, 3)
        self.c4 = conv(self.remaining, self.distilled, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.c5 = conv(nf, nf, 1)
        self.cca = ContrastChannelAttention(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, feat = [], x
        for refine in (self.c1, self.c2, self.c3):
            distilled, feat = self.act(refine(feat)).split([self.distilled, self.remaining], dim=1)
            kept.append(distilled)  # (B, nf/4, h, w); feat (B, 3nf/4, h, w) goes on
        kept.append(self.c4(feat))  # no activation on the last part, as in the source
        return self.c5(self.cca(torch.cat(kept, dim=1))) + x  # (B, nf, h, w)


class IMDN(DistillationNet):
    """Information multi-distillation network (Hui et al., "Lightweight Image Super-Resolution with IMDN").

    ``DistillationNet`` with ``num_modules`` IMDBs named ``IMDB1``...: the names of Zheng222/IMDN's
    ``model/architecture.py:IMDN``, so its published ``IMDN_x{2,3,4}.pth`` load unchanged. IMDN x4
    (64 features, 6 blocks) has 715,176 parameters and takes [0, 1] input (``input_range=1``).

    Args:
        in_nc: channels of ``lq`` (B, in_nc, h, w), in [0, 1].
        nf: trunk width: a multiple of 4, >= 16.
        num_modules: number of IMDBs (the source builds 6 whatever it is told; here it is honoured).
        out_nc: channels of ``sr`` (B, out_nc, h*upscale, w*upscale).
        upscale: any integer factor >= 1; srlab configs pass ``upscale: ${data.scale}``.
        input_range: 1 for weights trained on [0, 1] input, 255 for [0, 255]. Not in the state dict.

    Raises:
        ConfigError: ``nf`` not a multiple of 4 or < 16, or what ``DistillationNet`` rejects.
    """

    def __init__(
        self, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3, upscale: int = 4,
        input_range: float = 1.0,
    ) -> None:
        if not isinstance(nf, int) or nf % 4 or nf < 16:
            raise ConfigError(f"model.generator.nf={nf}: IMDN needs a multiple of 4, >= 16 (a quarter is distilled)")
        super().__init__(IMDB, "IMDB", "IMDN", in_nc, nf, num_modules, out_nc, upscale, input_range)


def detect_distillation(sd: StateDict, target: str, block_conv: str) -> dict[str, Any]:
    """The config of the ``DistillationNet`` subclass ``target`` that loads ``sd``, else ValueError.

    Args:
        sd: a state dict whose anchor keys are the family's.
        target: the subclass's ``_target_``.
        block_conv: a pattern of one key every block has, its group the block's index (counts the blocks).
    """
    nf, in_nc = shape(sd, "fea_conv.weight")[:2]
    cfg = {
        "_target_": target,
        "in_nc": in_nc,
        "nf": nf,
        "num_modules": len(indices(sd, block_conv)),
        "out_nc": in_nc,  # the file cannot tell out_nc * upscale**2 apart: same channels in and out assumed
        "upscale": shuffle_scale(shape(sd, "upsampler.0.weight")[0], in_nc),
    }
    return require_layout(cfg, sd)


def _detect_imdn(sd: StateDict) -> dict[str, Any] | None:
    """IMDN's config from its state dict; anchors: ``IMDB1.cca.conv_du.0.weight`` and ``fea_conv.weight``."""
    if "IMDB1.cca.conv_du.0.weight" not in sd or "fea_conv.weight" not in sd:
        return None
    return detect_distillation(sd, "srlab.nets.imdn.IMDN", r"IMDB(\d+)\.c1\.weight")


IMDN_SPEC = NetSpec(name="IMDN", detect=_detect_imdn, scales=(2, 3, 4), input_range=None,
                    layouts="IMDN (Zheng222/IMDN)")
