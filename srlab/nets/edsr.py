"""EDSR (Lim et al., CVPRW 2017) with BasicSR's module and state-dict names."""

from __future__ import annotations

import math

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.spec import NetSpec, StateDict, indices, shape, shuffle_stack_scale

# DIV2K's RGB mean, which EDSR subtracts before its body and adds back after (BasicSR's default).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResidualBlockNoBN(nn.Module):
    """conv3x3-ReLU-conv3x3 with an identity skip and no BatchNorm, the branch scaled by ``res_scale``.

    Args:
        num_feat: channels in and out.
        res_scale: factor on the residual branch. EDSR's 0.1 keeps the 32-block, 256-channel net
            stable without BatchNorm (Lim et al., Sec. 3.2); 1 for the baseline.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def shuffle_upsampler(scale: int, num_feat: int) -> nn.Sequential:
    """(conv to 4F, PixelShuffle 2) per doubling for 2^n, one (conv to 9F, PixelShuffle 3) for 3.

    Conv weights sit at even indices (``upsample.0``, ``upsample.2``...) as in BasicSR and SwinIR.
    """
    if scale > 0 and scale & (scale - 1) == 0:
        steps = [2] * int(math.log2(scale))
    elif scale == 3:
        steps = [3]
    else:
        raise ValueError(scale)
    layers: list[nn.Module] = []
    for f in steps:
        layers += [nn.Conv2d(num_feat, f * f * num_feat, 3, 1, 1), nn.PixelShuffle(f)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """Enhanced deep residual network: BN-free residual trunk, PixelShuffle tail.

    ``conv_first`` -> ``body`` (``num_block`` residual blocks) -> ``conv_after_body`` + long skip ->
    ``upsample`` -> ``conv_last``. The input is shifted by the DIV2K mean and multiplied by
    ``img_range`` before the net and mapped back after, as BasicSR does, so its released EDSR
    weights load and behave unchanged. The mean is a non-saved buffer (BasicSR does not save it).
    EDSR-baseline x4 (64 features, 16 blocks, res_scale 1) has 1,517,571 parameters; EDSR x4
    (256 features, 32 blocks, res_scale 0.1) 43,089,923.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w) in [0, 1]: 3 (RGB) or 1.
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*upscale, w*upscale).
        num_feat: trunk width.
        num_block: number of residual blocks.
        upscale: 2, 3, 4 or 8 (any power of two, 1 for restoration). BasicSR's name; srlab configs pass
            ``upscale: ${data.scale}`` and the net exposes ``scale``.
        res_scale: residual-branch factor (see ``ResidualBlockNoBN``).
        img_range: the range the trunk sees (255: EDSR was trained on 0-255 pixels).
        rgb_mean: mean subtracted from RGB inputs (ignored for 1-channel inputs, which use 0).

    Raises:
        ConfigError: unsupported ``upscale``.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4,
        res_scale: float = 1.0, img_range: float = 255.0, rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        try:
            self.upsample = shuffle_upsampler(upscale, num_feat)
        except ValueError:
            raise ConfigError(
                f"model.generator.upscale={upscale}: EDSR supports powers of two (1, 2, 4, 8) and 3 "
                "(set data.scale accordingly)"
            ) from None
        self.upscale = self.scale = upscale
        self.img_range = img_range
        mean = torch.tensor(rgb_mean if num_in_ch == 3 else (0.0,) * num_in_ch).view(1, num_in_ch, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C_out, h*upscale, w*upscale)."""
        mean = self.mean.to(lq.dtype)
        feat = self.conv_first((lq - mean) * self.img_range)  # (B, F, h, w)
        feat = feat + self.conv_after_body(self.body(feat))
        sr = self.conv_last(self.upsample(feat))  # (B, C_out, h*upscale, w*upscale)
        return sr / self.img_range + mean


def _detect_edsr(sd: StateDict) -> dict | None:
    if "body.0.conv1.weight" not in sd or "conv_after_body.weight" not in sd:
        return None
    num_feat, in_ch = shape(sd, "conv_first.weight")[:2]
    num_block = len(indices(sd, r"body\.(\d+)\.conv1\.weight"))
    return {
        "_target_": "srlab.nets.edsr.EDSR",
        "num_in_ch": in_ch, "num_out_ch": shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": num_block, "upscale": shuffle_stack_scale(sd, "upsample", num_feat),
        # not saved; BasicSR trains the large EDSR (256 x 32) with 0.1, the baseline with 1
        "res_scale": 0.1 if num_feat >= 256 else 1.0,
    }  # fmt: skip


EDSR_SPEC = NetSpec(name="EDSR", detect=_detect_edsr, scales=(2, 3, 4, 8), layouts="EDSR (BasicSR and EDSR-PyTorch layouts)")
