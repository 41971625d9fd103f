"""BSRN, the blueprint-separable residual network (Li et al., CVPRW 2022), as published by NTIRE 2022 ESR team 18."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_positive_ints
from srlab.nets.spec import NetSpec, StateDict, indices, shape, shuffle_scale


class PointwiseLinear(nn.Linear):
    """A 1x1 convolution kept as ``nn.Linear`` (weight (out, in)), applied to NCHW tensors.

    The published net runs ``nn.Linear`` on channels-last tensors; the same weights as a 1x1
    conv give the same map without the permutes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)  # (B, out, H, W)


class BSConvU(nn.Module):
    """Blueprint-separable conv (unconstrained): pointwise mix first, then a depthwise 3x3 per channel.

    Args:
        in_ch: input channels.
        out_ch: output channels (the depthwise conv keeps them).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pw = PointwiseLinear(in_ch, out_ch)
        self.dw = nn.Conv2d(out_ch, out_ch, 3, 1, 1, groups=out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw(x))


class ESA(nn.Module):
    """Enhanced spatial attention: a strided, max-pooled low-resolution mask gates every pixel.

    Needs inputs of at least 15x15 pixels (stride-2 conv, then a 7x7 max pool with stride 3).

    Args:
        num_feat: channels in and out; the mask branch works at ``num_feat // 4``.
    """

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        f = num_feat // 4
        self.conv1 = PointwiseLinear(num_feat, f)
        self.conv_f = PointwiseLinear(f, f)
        self.conv_max = BSConvU(f, f)
        self.conv2 = nn.Conv2d(f, f, 3, 2, 0)
        self.conv3 = BSConvU(f, f)
        self.conv3_ = BSConvU(f, f)
        self.conv4 = PointwiseLinear(f, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)  # (B, f, H, W)
        c1 = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)  # (B, f, ~H/6, ~W/6)
        c3 = self.conv3_(F.gelu(self.conv3(F.gelu(self.conv_max(c1)))))
        c3 = F.interpolate(c3, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, f, H, W)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class ESDB(nn.Module):
    """Efficient separable distillation block (``RFDB`` in the published code).

    Three BSConvU residual steps each hand half their channels to a distilled 1x1 branch; the
    concatenation is fused, gated by ESA, scaled per channel by ``cw`` and added to the input.

    Args:
        num_feat: channels in and out.
    """

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        dc = num_feat // 2
        self.c1_d, self.c1_r = PointwiseLinear(num_feat, dc), BSConvU(num_feat, num_feat)
        self.c2_d, self.c2_r = PointwiseLinear(num_feat, dc), BSConvU(num_feat, num_feat)
        self.c3_d, self.c3_r = PointwiseLinear(num_feat, dc), BSConvU(num_feat, num_feat)
        self.c4 = BSConvU(num_feat, dc)
        self.c5 = PointwiseLinear(4 * dc, num_feat)
        self.esa = ESA(num_feat)
        # learned channel weights; the published code draws them from N(1, 0.2)
        self.cw = nn.Parameter(torch.normal(1.0, 0.2, size=(1, num_feat)))
        self.conv_out = PointwiseLinear(num_feat, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        r = x  # (B, F, H, W)
        for d, c in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(F.gelu(d(r)))  # (B, F/2, H, W)
            r = F.gelu(c(r) + r)
        distilled.append(F.gelu(self.c4(r)))
        out = self.esa(self.c5(torch.cat(distilled, dim=1)))  # (B, F, H, W)
        return self.conv_out(out * self.cw[:, :, None, None]) + x


class _PixelShuffleDirect(nn.Module):
    """One conv to ``out_ch * upscale**2`` channels and one PixelShuffle (named as in the published file)."""

    def __init__(self, num_feat: int, out_ch: int, upscale: int) -> None:
        super().__init__()
        self.upsampleOneStep = nn.Sequential(
            nn.Conv2d(num_feat, out_ch * upscale**2, 3, 1, 1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampleOneStep(x)


class BSRN(InputRange, nn.Module):
    """Blueprint-separable residual network: ESDB blocks of BSConvU, all block outputs fused, one PixelShuffle.

    The layout of NTIRE 2022 ESR team 18's ``team18_bsrn.pth`` (``BSConvU`` convs, the
    ``pixelshuffledirect`` upsampler): ``fea_conv`` -> ``B1`` ... ``B{num_block}`` -> ``c1``
    (1x1 over all block outputs) -> GELU -> ``c2`` + long skip -> ``upsampler``. That file is
    ``num_feat=48, num_block=5``: 156,288 parameters.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w) in [0, 1]; h, w >= 15 (ESA's pooling).
        num_feat: trunk width (>= 4).
        num_block: number of ESDB blocks.
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*upscale, w*upscale).
        upscale: any integer factor >= 1 (one PixelShuffle does it).
        input_range: the net sees ``lq * input_range`` and its output is divided by it (1 for
            files trained on [0, 1], 255 for [0, 255]). Not stored in the state dict.

    Raises:
        ConfigError: ``upscale`` < 1, ``num_feat`` < 4, ``num_block`` < 1 or ``input_range`` <= 0.
    """

    def __init__(
        self, num_in_ch: int = 3, num_feat: int = 48, num_block: int = 5, num_out_ch: int = 3, upscale: int = 4,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        require_positive_ints("BSRN", upscale=upscale, num_block=num_block)
        if num_feat < 4:
            raise ConfigError(
                f"model.generator.num_feat={num_feat}: BSRN needs num_feat >= 4 (ESA works at num_feat/4)"
            )
        self.upscale = self.scale = upscale
        self.input_range = require_input_range(input_range)
        self.num_block = num_block
        # the published net sees the input repeated four times (a 12-channel pointwise conv for RGB)
        self.fea_conv = BSConvU(num_in_ch * 4, num_feat)
        for i in range(1, num_block + 1):
            self.add_module(f"B{i}", ESDB(num_feat))
        self.c1 = PointwiseLinear(num_feat * num_block, num_feat)
        self.c2 = BSConvU(num_feat, num_feat)
        self.upsampler = _PixelShuffleDirect(num_feat, num_out_ch, upscale)

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, C, h, w) to ``sr * input_range`` (B, C_out, h*upscale, w*upscale)."""
        feat = self.fea_conv(torch.cat([x, x, x, x], dim=1))  # (B, F, h, w)
        outs, out = [], feat
        for i in range(1, self.num_block + 1):
            out = getattr(self, f"B{i}")(out)
            outs.append(out)
        trunk = F.gelu(self.c1(torch.cat(outs, dim=1)))  # (B, F, h, w)
        return self.upsampler(self.c2(trunk) + feat)


def _detect_bsrn(sd: StateDict) -> dict[str, Any] | None:
    """The NTIRE 2022 team-18 layout: BSConvU pointwise weights stored 2-D, ``upsampler.upsampleOneStep``."""
    if "fea_conv.pw.weight" not in sd or "upsampler.upsampleOneStep.0.weight" not in sd:
        return None
    num_feat, in_x4 = shape(sd, "fea_conv.pw.weight")  # ValueError unless 2-D (the official repo's is 4-D)
    blocks = indices(sd, r"B(\d+)\.cw")
    if blocks != list(range(1, len(blocks) + 1)) or not blocks:
        raise ValueError(f"BSRN blocks {blocks} are not B1..Bn")
    up_ch = shape(sd, "upsampler.upsampleOneStep.0.weight")[0]  # num_out_ch * upscale**2
    num_in_ch = in_x4 // 4
    return {
        "_target_": "srlab.nets.bsrn.BSRN",
        "num_in_ch": num_in_ch, "num_feat": num_feat, "num_block": len(blocks), "num_out_ch": num_in_ch,
        "upscale": shuffle_scale(up_ch, num_in_ch),
    }  # fmt: skip


BSRN_SPEC = NetSpec(name="BSRN", detect=_detect_bsrn, scales=(2, 3, 4), input_range=None,
                    layouts="BSRN (NTIRE 2022 ESR team 18, ofsoundof/NTIRE2022_ESR team18_bsrn)")
