"""SAFMN, the Spatially-Adaptive Feature Modulation Network, as published (ICCV 2023) and as NTIRE 2023's ESR entry."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_choice, require_input_range, require_positive_ints
from srlab.nets.spec import NetSpec, StateDict, indices, layout_differences, shape, shuffle_scale

VARIANTS = ("paper", "ntire23")
_LEVELS = 4  # SAFM splits the channels into 4 scales


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (SAFMN's ``channels_first`` LayerNorm, eps 1e-6)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - mean) / torch.sqrt(var + self.eps) + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2): scale each channel by its share of the spatial L2 energy."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))  # zero: the layer starts as the identity
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        energy = torch.norm(x, p=2, dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        share = energy / (energy.mean(dim=1, keepdim=True) + 1e-6)
        return self.gamma * (x * share) + self.beta + x


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: depthwise convs on 4 pooled scales, fused, gate the input.

    Args:
        dim: channels (a multiple of 4).
        bias: conv biases (the paper's net has them, the NTIRE 2023 one not).
        pool_shift: level i max-pools to ``size // 2**(i + pool_shift)`` (paper 0, NTIRE 2023 1).
    """

    def __init__(self, dim: int, bias: bool = True, pool_shift: int = 0) -> None:
        super().__init__()
        chunk = dim // _LEVELS
        self.mfr = nn.ModuleList(nn.Conv2d(chunk, chunk, 3, 1, 1, groups=chunk, bias=bias) for _ in range(_LEVELS))
        self.aggr = nn.Conv2d(dim, dim, 1, 1, 0, bias=bias)
        self.pool_shift = pool_shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        h, w = x.shape[-2:]
        levels = []
        for i, (chunk, conv) in enumerate(zip(x.chunk(_LEVELS, dim=1), self.mfr)):
            if i == 0:
                levels.append(conv(chunk))  # full resolution
                continue
            # max(1, ...): the source would fail on maps smaller than 2**(i + pool_shift) px; one pooled px is its limit
            div = 2 ** (i + self.pool_shift)
            pooled = F.adaptive_max_pool2d(chunk, (max(1, h // div), max(1, w // div)))  # (B, C/4, h/div, w/div)
            levels.append(F.interpolate(conv(pooled), size=(h, w), mode="nearest"))
        return F.gelu(self.aggr(torch.cat(levels, dim=1))) * x


class CCM(nn.Module):
    """Convolutional channel mixer: 3x3 conv to ``hidden`` channels, GELU, 1x1 back."""

    def __init__(self, dim: int, hidden: int, bias: bool = True) -> None:
        super().__init__()
        self.ccm = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, 1, 1, bias=bias), nn.GELU(), nn.Conv2d(hidden, dim, 1, bias=bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.ccm(x)


class AttBlock(nn.Module):
    """SAFM then CCM, each residual; the paper's net LayerNorms before each, the NTIRE 2023 one does not."""

    def __init__(self, dim: int, hidden: int, paper: bool) -> None:
        super().__init__()
        if paper:
            self.norm1 = LayerNorm2d(dim)
            self.norm2 = LayerNorm2d(dim)
        self.safm = SAFM(dim, bias=paper, pool_shift=0 if paper else 1)
        self.ccm = CCM(dim, hidden, bias=paper)
        self.paper = paper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        x = self.safm(self.norm1(x) if self.paper else x) + x
        return self.ccm(self.norm2(x) if self.paper else x) + x


class SAFMN(InputRange, nn.Module):
    """SAFMN (Sun et al., "Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution", ICCV 2023).

    Two published variants, one option, the source's state-dict names (``to_feat``, ``feats.N.safm.mfr``,
    ``feats.N.ccm.ccm``, ``to_img.0``):

    - ``paper`` (spandrel's SAFMN): LayerNorm before SAFM and CCM, conv biases, a feature-level residual
      around the blocks, level i pooled to 1/2**i.
    - ``ntire23`` (sunny2109/SAFMN ``NTIRE2023_ESR`` team15): no block norms, a GRN (``norm``) after
      ``to_feat``, no biases in SAFM/CCM, level i pooled to 1/2**(i+1), and the bilinearly upsampled ``lq``
      added to the output instead of the feature residual. The published file is ``dim=36, n_blocks=8,
      ffn_scale=2.0, upscaling_factor=4``: 237,000 parameters.

    Args:
        dim: width (a multiple of 4: SAFM splits it into 4 levels).
        n_blocks: number of AttBlocks.
        ffn_scale: CCM hidden width = ``int(dim * ffn_scale)``.
        upscaling_factor: integer scale >= 1 (one PixelShuffle); the net exposes it as ``scale``.
        variant: ``paper`` or ``ntire23``.
        input_range: ``forward`` runs the net on ``lq * input_range`` and divides the result by it (255 for
            files trained on [0, 255]). Not in the state dict.

    Raises:
        ConfigError: unknown ``variant``, ``dim`` not a positive multiple of 4, non-positive sizes or scale.
    """

    def __init__(
        self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4,
        variant: str = "paper",
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        require_choice(variant, VARIANTS, "variant")
        if not isinstance(dim, int) or dim < _LEVELS or dim % _LEVELS:
            raise ConfigError(f"model.generator.dim={dim}: SAFMN needs a positive multiple of {_LEVELS}")
        require_positive_ints("SAFMN", n_blocks=n_blocks, upscaling_factor=upscaling_factor)
        hidden = int(dim * ffn_scale)
        if hidden < 1:
            raise ConfigError(f"model.generator.ffn_scale={ffn_scale}: gives {hidden} hidden channels")
        self.scale = upscaling_factor
        self.variant, self.input_range = variant, require_input_range(input_range)
        paper = variant == "paper"
        if not paper:
            self.norm = GRN(dim)
        self.to_feat = nn.Conv2d(3, dim, 3, 1, 1)
        self.feats = nn.Sequential(*(AttBlock(dim, hidden, paper) for _ in range(n_blocks)))
        self.to_img = nn.Sequential(nn.Conv2d(dim, 3 * upscaling_factor**2, 3, 1, 1), nn.PixelShuffle(upscaling_factor))

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, 3, h, w) to ``sr * input_range`` (B, 3, h*scale, w*scale)."""
        feat = self.to_feat(x)  # (B, dim, h, w)
        if self.variant == "paper":
            return self.to_img(self.feats(feat) + feat)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)  # (B, 3, sh, sw)
        return self.to_img(self.feats(self.norm(feat))) + base


def detect_safmn(sd: StateDict) -> dict[str, Any] | None:
    """The config of the SAFMN (either variant) that loads ``sd`` strictly, or None if it is not one."""
    anchors = ("to_feat.weight", "feats.0.safm.aggr.weight", "feats.0.ccm.ccm.0.weight", "to_img.0.weight")
    if not all(k in sd for k in anchors):
        return None
    dim = shape(sd, "to_feat.weight")[0]
    cfg = {
        "_target_": "srlab.nets.safmn.SAFMN",
        "dim": dim,
        "n_blocks": len(indices(sd, r"feats\.(\d+)\.safm\.aggr\.weight")),
        "ffn_scale": shape(sd, "feats.0.ccm.ccm.0.weight")[0] / dim,
        "upscaling_factor": shuffle_scale(shape(sd, "to_img.0.weight")[0], 3),
        "variant": "ntire23" if "norm.gamma" in sd else "paper",
    }
    return None if layout_differences(cfg, sd) else cfg


SAFMN_SPEC = NetSpec(name="SAFMN", detect=detect_safmn, scales=(1, 2, 3, 4), input_range=None,
                     layouts="SAFMN as published (LayerNorm blocks) and NTIRE 2023 team15's (GRN, bias-free, bilinear residual)")
