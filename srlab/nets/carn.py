"""CARN-M, the mobile cascading residual network (Ahn et al., ECCV 2018), with nmhkahn/CARN-pytorch's names."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_scale
from srlab.nets.spec import NetSpec, StateDict, indices, shape

# DIV2K's RGB mean in [0, 1] units: subtracted before the net and added back after (CARN-pytorch's MeanShift)
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
_SCALES = (2, 3, 4)  # the branches of a multi-scale net
_SINGLE_SCALES = (2, 3, 4, 8)


class MeanShift(nn.Module):
    """Add ``sign * mean`` to each RGB channel through a frozen 1x1 conv (``shifter``), as the published files store it.

    Args:
        sign: -1 to subtract the mean, +1 to add it back.
    """

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(DIV2K_RGB_MEAN))
        self.shifter.requires_grad_(False)  # a fixed normalisation, never trained (as in CARN-pytorch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class ConvReLU(nn.Module):
    """A 1x1 conv then ReLU, held in ``body`` (CARN-pytorch's ``BasicBlock`` as CARN uses it: to fuse cascades)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class EResidualBlock(nn.Module):
    """Efficient residual block: two grouped 3x3 convs and a 1x1 conv (mixes the groups), ReLU after the skip.

    Args:
        num_feat: channels in and out.
        group: groups of the 3x3 convs.
    """

    def __init__(self, num_feat: int, group: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1, groups=group),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1, groups=group),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 1, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


class Cascade(nn.Module):
    """CARN's cascading connections: three steps, each a block then a 1x1 fusion of everything so far.

    Step k runs a block on the last output and fuses the input and all block outputs so far,
    concatenated, by the 1x1 ConvReLU ``ck``.

    Args:
        num_feat: channels in and out of every step.
    """

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.c1 = ConvReLU(2 * num_feat, num_feat)
        self.c2 = ConvReLU(3 * num_feat, num_feat)
        self.c3 = ConvReLU(4 * num_feat, num_feat)

    def cascade(self, x: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
        """Run the three steps on ``x`` (B, F, H, W) with ``blocks`` (three, or one repeated)."""
        cat, out = x, x  # (B, F, H, W); cat grows to (B, 4F, H, W)
        for block, fuse in zip(blocks, (self.c1, self.c2, self.c3), strict=True):
            cat = torch.cat([cat, block(out)], dim=1)
            out = fuse(cat)
        return out


class Block(Cascade):
    """CARN-M's cascading block: one efficient residual block ``b1`` shared by the three steps (saves parameters).

    Args:
        num_feat: channels in and out.
        group: groups of the 3x3 convs.
    """

    def __init__(self, num_feat: int, group: int) -> None:
        super().__init__(num_feat)
        self.b1 = EResidualBlock(num_feat, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cascade(x, [self.b1] * 3)


class UpsampleBranch(nn.Module):
    """(grouped conv to r*r*F, ReLU, PixelShuffle r) in ``body``: r = 3 once for x3, r = 2 per doubling for 2, 4, 8.

    Args:
        num_feat: channels in and out.
        scale: 2, 3, 4 or 8.
        group: groups of the convs.
    """

    def __init__(self, num_feat: int, scale: int, group: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for r in [3] if scale == 3 else [2] * int(math.log2(scale)):
            layers += [nn.Conv2d(num_feat, r * r * num_feat, 3, 1, 1, groups=group), nn.ReLU(), nn.PixelShuffle(r)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsampleBlock(nn.Module):
    """Multi-scale: ``up2``, ``up3`` and ``up4`` all kept (so published files load), ``scale`` picks one; else ``up``.

    Args:
        num_feat: channels in and out.
        scale: the branch run by ``forward``.
        multi_scale: keep the x2, x3 and x4 branches.
        group: groups of the convs.
    """

    def __init__(self, num_feat: int, scale: int, multi_scale: bool, group: int) -> None:
        super().__init__()
        self.branch = f"up{scale}" if multi_scale else "up"
        for s in _SCALES if multi_scale else (scale,):
            self.add_module(f"up{s}" if multi_scale else "up", UpsampleBranch(num_feat, s, group))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.branch)(x)  # (B, F, H*scale, W*scale)


class CARNM(InputRange, Cascade):
    """CARN-M: a cascade of three cascading blocks of shared efficient residual blocks, then a PixelShuffle tail.

    ``sub_mean`` -> ``entry`` -> cascade of ``b1``, ``b2``, ``b3`` (each fused by ``c1``, ``c2``, ``c3``)
    -> ``upsample`` -> ``exit`` -> ``add_mean``. The published ``carn_m.pth`` is multi-scale
    (``num_feat=64, group=4``, x2/x3/x4 branches): 414,811 parameters, 24 of them the frozen
    mean shifts. A multi-scale net trains only the branch of its ``upscale``; the other branches
    are kept so the file loads strictly and are left untouched.

    Args:
        num_feat: trunk width (64 in the paper); divisible by ``group``.
        group: groups of the 3x3 convs (4 for CARN-M's published weights).
        upscale: 2, 3 or 4 (also 8 when ``multi_scale`` is False); ``scale`` in the published code.
        multi_scale: keep the x2, x3 and x4 upsampling branches (the published file's layout).
        input_range: the net sees ``lq * input_range`` and its output is divided by it (the mean
            shift stays in [0, 1] units, as in the published code). Not stored in the state dict.

    Raises:
        ConfigError: an unsupported ``upscale``, a ``group`` that does not divide ``num_feat``, or ``input_range`` <= 0.
    """

    def __init__(
        self, num_feat: int = 64, group: int = 4, upscale: int = 4, multi_scale: bool = True,
        input_range: float = 1.0,
    ) -> None:
        super().__init__(num_feat)
        if multi_scale:
            require_scale(upscale, _SCALES, "multi-scale CARN-M", key="upscale")
        else:
            require_scale(upscale, _SINGLE_SCALES, "single-scale CARN-M", key="upscale")
        if group < 1 or num_feat % group:
            raise ConfigError(f"model.generator.group={group}: must divide num_feat={num_feat}")
        self.upscale = self.scale = upscale
        self.input_range = require_input_range(input_range)
        self.sub_mean = MeanShift(-1.0)
        self.add_mean = MeanShift(1.0)
        self.entry = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.b1, self.b2, self.b3 = (Block(num_feat, group) for _ in range(3))
        self.upsample = UpsampleBlock(num_feat, upscale, multi_scale, group)
        self.exit = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, 3, h, w) to ``sr * input_range`` (B, 3, h*upscale, w*upscale)."""
        feat = self.entry(self.sub_mean(x))  # (B, F, h, w)
        feat = self.upsample(self.cascade(feat, [self.b1, self.b2, self.b3]))  # (B, F, h*upscale, w*upscale)
        return self.add_mean(self.exit(feat))


def _detect_carn_m(sd: StateDict) -> dict[str, Any] | None:
    """CARN-pytorch's CARN-M: ``sub_mean.shifter`` and a shared efficient residual block (``b1.b1.body.4``).

    A multi-scale file builds its x4 branch (``upscale`` is a config choice); a single-scale file its own scale.
    """
    if "sub_mean.shifter.weight" not in sd or "b1.b1.body.4.weight" not in sd:
        return None
    num_feat = shape(sd, "entry.weight")[0]
    group = num_feat // shape(sd, "b1.b1.body.0.weight")[1]
    multi_scale = "upsample.up2.body.0.weight" in sd
    if multi_scale:
        upscale = 4
    else:
        convs = indices(sd, r"upsample\.up\.body\.(\d+)\.weight")
        if not convs:
            raise KeyError("upsample.up.body.0.weight")
        upscale = 3 if shape(sd, "upsample.up.body.0.weight")[0] == 9 * num_feat else 2 ** len(convs)
    return {
        "_target_": "srlab.nets.carn.CARNM",
        "num_feat": num_feat, "group": group, "upscale": upscale, "multi_scale": multi_scale,
    }  # fmt: skip


CARN_M_SPEC = NetSpec(name="CARN-M", detect=_detect_carn_m, scales=(2, 3, 4), input_range=None,
                      layouts="CARN-M, multi- and single-scale (nmhkahn/CARN-pytorch)")
