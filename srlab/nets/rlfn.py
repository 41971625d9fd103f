"""RLFN, the Residual Local Feature Network (bytedance/RLFN: ``rlfn_x4``, ``RLFN_S``, the NTIRE 2022 ``RLFN_Prune``).

Also home of :class:`ESA`, the Enhanced Spatial Attention shared by the RFDN line of efficient nets
(RFDN, RLFN, EFDN): ``full=True`` is RFDN's and EFDN's block, ``full=False`` RLFN's trimmed one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.nets.blocks import InputRange, require_input_range, require_positive_ints
from srlab.nets.spec import NetSpec, StateDict, indices, require_layout, shape, shuffle_scale

MIN_SIZE = 15  # ESA: a stride-2 3x3 conv then a 7x7 max pool need lq at least 15x15 pixels


class ESA(nn.Module):
    """Enhanced Spatial Attention (Liu et al., RFANet): a sigmoid mask computed at 1/6 resolution.

    The mask's large receptive field comes cheaply from a strided conv, a 7x7/3 max pool and 3x3 convs on
    a squeezed map; ``conv_f`` carries the full-resolution detail into the mask.

    Args:
        channels: channels of the input and of the mask.
        esa_channels: width of the squeezed branch (RLFN: 16, RFDN/EFDN: ``channels // 4``).
        full: RFDN's block with ``conv_max`` and ``conv3_`` (and ReLUs) in the low-resolution path;
            False is RLFN's trimmed block, which drops both.
        any_size: where the strided map is under 7 px (inputs under 15 px), pool all of it instead of
            failing, so inputs from 3 px run (RFDN's port); the same output wherever the 7x7 pool runs.
            False (RLFN, EFDN): the source's pool, inputs of at least ``MIN_SIZE`` px.
    """

    def __init__(self, channels: int, esa_channels: int, full: bool = True, any_size: bool = False) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        if full:
            self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2)  # no padding: the published files were trained so
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        if full:
            self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, 1)
        self.full, self.any_size = full, any_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Multiply ``x`` (B, C, H, W) by its attention mask in (0, 1)."""
        c1 = self.conv1(x)  # (B, f, H, W)
        low = self.conv2(c1)  # (B, f, (H-1)//2, (W-1)//2)
        kernel = (min(7, low.shape[-2]), min(7, low.shape[-1])) if self.any_size else 7
        low = F.max_pool2d(low, kernel, stride=3)  # (B, f, ~H/6, ~W/6): a wide receptive field
        if self.full:
            low = self.conv3_(F.relu(self.conv3(F.relu(self.conv_max(low)))))
        else:
            low = self.conv3(low)
        low = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, f, H, W)
        return x * torch.sigmoid(self.conv4(low + self.conv_f(c1)))


class RLFB(nn.Module):
    """Residual Local Feature Block: three 3x3 convs with a skip, a 1x1 conv, then ESA.

    Args:
        channels: block input and output width.
        mid_channels: width between the three 3x3 convs.
        esa_channels: width of the ESA branch.
    """

    def __init__(self, channels: int, mid_channels: int, esa_channels: int) -> None:
        super().__init__()
        self.c1_r = nn.Conv2d(channels, mid_channels, 3, padding=1)
        self.c2_r = nn.Conv2d(mid_channels, mid_channels, 3, padding=1)
        self.c3_r = nn.Conv2d(mid_channels, channels, 3, padding=1)
        self.c5 = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(channels, esa_channels, full=False)
        self.act = nn.LeakyReLU(0.05, inplace=True)  # RLFN's slope (RFDN's 0.05, not ESRGAN's 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out = self.act(self.c1_r(x))  # (B, mid, H, W)
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out)) + x  # (B, C, H, W); the local residual RFDN's distillation became
        return self.esa(self.c5(out))


class RLFN(InputRange, nn.Module):
    """Residual Local Feature Network (Kong et al., "Residual Local Feature Network for Efficient SR", CVPRW 2022).

    A 3x3 head, ``num_blocks`` RLFBs, a 3x3 conv with a skip from the head, then one 3x3 conv and a
    PixelShuffle. Names as in bytedance/RLFN (``conv_1``, ``block_1`` ... ``block_6``, ``conv_2``,
    ``upsampler.0``), so its files load unchanged: ``rlfn_x4`` is the default (52 channels, 6 blocks,
    543,740 parameters); ``RLFN_S`` is ``feature_channels=48``; the NTIRE 2022 ``RLFN_Prune`` is
    ``feature_channels=46, mid_channels=48, num_blocks=4``.

    Args:
        in_channels: channels of ``lq`` (B, in_channels, h, w), values in [0, 1]; h, w >= 15.
        out_channels: channels of ``sr`` (B, out_channels, h*upscale, w*upscale), values in [0, 1].
        feature_channels: width of the trunk.
        mid_channels: width inside each RLFB (None: ``feature_channels``).
        num_blocks: number of RLFBs.
        esa_channels: width of each ESA branch.
        upscale: integer scale factor >= 1 (one PixelShuffle).
        input_range: the value range the weights were trained on (bytedance's files: 255); ``lq`` is
            multiplied by it on the way in and ``sr`` divided on the way out. Not in the state dict.

    Raises:
        ConfigError: a size that is not an integer >= 1, or a non-positive ``input_range``.
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, feature_channels: int = 52, mid_channels: int | None = None,
        num_blocks: int = 6, esa_channels: int = 16, upscale: int = 4,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        mid_channels = feature_channels if mid_channels is None else mid_channels
        require_positive_ints(
            "RLFN",
            in_channels=in_channels,
            out_channels=out_channels,
            feature_channels=feature_channels,
            mid_channels=mid_channels,
            num_blocks=num_blocks,
            esa_channels=esa_channels,
            upscale=upscale,
        )
        self.scale = self.upscale = upscale
        self.input_range = require_input_range(input_range)
        self.conv_1 = nn.Conv2d(in_channels, feature_channels, 3, padding=1)
        self.block_names = [f"block_{i}" for i in range(1, num_blocks + 1)]  # the published names, not blocks.N
        for name in self.block_names:
            self.add_module(name, RLFB(feature_channels, mid_channels, esa_channels))
        self.conv_2 = nn.Conv2d(feature_channels, feature_channels, 3, padding=1)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, out_channels * upscale**2, 3, padding=1), nn.PixelShuffle(upscale)
        )

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, C, h, w) to ``sr * input_range`` (B, C, h*upscale, w*upscale)."""
        head = self.conv_1(x)  # (B, F, h, w)
        feat = head
        for name in self.block_names:
            feat = getattr(self, name)(feat)
        return self.upsampler(self.conv_2(feat) + head)


# keys only RLFN has: bytedance's block_N / conv_N names (RFDN says B1, fea_conv, LR_conv) and its ESA
_ANCHORS = ("conv_1.weight", "block_1.c1_r.weight", "block_1.esa.conv4.weight", "conv_2.weight")


def _detect_rlfn(sd: StateDict) -> dict[str, Any] | None:
    """The config of the RLFN that loads ``sd`` (bytedance/RLFN names), or None."""
    if not all(k in sd for k in _ANCHORS):
        return None
    feature_channels, in_channels = shape(sd, "conv_1.weight")[:2]
    shuffle_out = shape(sd, "upsampler.0.weight")[0]
    cfg = {
        "_target_": "srlab.nets.rlfn.RLFN",
        "in_channels": in_channels,
        "out_channels": in_channels,  # a file does not say; every RLFN maps RGB to RGB
        "feature_channels": feature_channels,
        "mid_channels": shape(sd, "block_1.c1_r.weight")[0],
        "num_blocks": len(indices(sd, r"block_(\d+)\.c1_r\.weight")),
        "esa_channels": shape(sd, "block_1.esa.conv1.weight")[0],
        "upscale": shuffle_scale(shuffle_out, in_channels),
    }
    return require_layout(cfg, sd)


RLFN_SPEC = NetSpec(name="RLFN", detect=_detect_rlfn, scales=(2, 3, 4), input_range=None,
                    layouts="RLFN, RLFN_S, RLFN_Prune (bytedance/RLFN)")
