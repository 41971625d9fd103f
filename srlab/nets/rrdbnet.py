"""RRDBNet, the ESRGAN generator, with BasicSR's module and state-dict names."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import SRLabError
from srlab.nets.blocks import BicubicResidualNet
from srlab.nets.spec import NetSpec, StateDict, indices, shape

# Why 0.2: ESRGAN (Wang et al. 2018, Sec. 3.2) scales every residual branch by beta = 0.2 before
# adding it back, so that a very deep net without BatchNorm starts close to identity and trains stably.
RESIDUAL_SCALE = 0.2

# Scales handled by pixel-unshuffling the input first (Real-ESRGAN): the body then runs at 1/4
# (scale 2) or 1/16 (scale 1) of the pixels and the x4 head brings it back.
_UNSHUFFLE = {2: 2, 1: 4}
_NUM_UP = {1: 2, 2: 2, 4: 2, 8: 3}
# Inference runs the head on bands of this many body-feature rows, each with HEAD_HALO rows of
# context each side (the head's receptive radius is 2): see RRDBNet.forward_net.
HEAD_BAND, HEAD_HALO = 32, 3


def init_scaled_kaiming(modules: list[nn.Module], scale: float) -> None:
    """Kaiming-normal init shrunk by ``scale`` (BasicSR's ``default_init_weights``); biases zero."""
    for m in modules:
        nn.init.kaiming_normal_(m.weight)
        with torch.no_grad():
            m.weight.mul_(scale)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs with a scaled residual (ESRGAN's RDB).

    Args:
        num_feat: channels in and out.
        num_grow_ch: channels each of conv1..conv4 adds to the dense concatenation.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # Why 0.1: small initial weights keep the un-normalized residual branches near zero (ESRGAN Sec. 3.2)
        init_scaled_kaiming([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs inside one more scaled residual."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * RESIDUAL_SCALE + x


class RRDBNet(BicubicResidualNet):
    """ESRGAN generator (Wang et al., ECCV-W 2018), structure and names as in BasicSR.

    ``conv_first`` -> ``body`` (``num_block`` RRDBs) -> ``conv_body`` + long skip -> nearest x2 +
    ``conv_upN`` + LeakyReLU per doubling -> ``conv_hr`` -> ``conv_last``. Published ESRGAN and
    Real-ESRGAN weights load without remapping (see ``srlab.weights``). Scale 2 and 1
    pixel-unshuffle the input as Real-ESRGAN does (input channels x4 / x16), so such inputs need
    height and width divisible by 2 / 4. Scale 8 adds ``conv_up3``. The default x4 net has
    16,697,987 parameters.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w), RGB in [0, 1].
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*scale, w*scale).
        scale: 1, 2, 4 or 8.
        num_feat: width of the trunk.
        num_block: number of RRDBs (23 in ESRGAN).
        num_grow_ch: growth channels inside each dense block.
        bicubic_residual: add bicubic upsampling of ``lq`` to the output, so the net learns only
            the residual (VDSR-style). Off in ESRGAN; the CPU quickstart turns it on to beat
            bicubic within minutes. The state dict is unchanged by it.

    Raises:
        ConfigError: unsupported scale.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64, num_block: int = 23,
        num_grow_ch: int = 32,
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__(scale, _NUM_UP, "RRDBNet", bicubic_residual)
        self.unshuffle = _UNSHUFFLE.get(scale, 1)
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if _NUM_UP[scale] == 3:
            self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def _head(self, feat: torch.Tensor) -> torch.Tensor:
        """The upsampling head: body features (B, F, h', w') to ``sr`` (B, C_out, 4h', 4w') (8h', 8w' for x8)."""
        ups = [self.conv_up1, self.conv_up2] + ([self.conv_up3] if hasattr(self, "conv_up3") else [])
        for conv_up in ups:
            feat = self.lrelu(conv_up(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def _head_band(self, feat: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """Rows ``r0:r1`` of the head's output (in body-feature rows), from those rows plus a halo.

        The head's receptive radius is 2 body-feature rows (its 3x3 convs run at 2x, 4x, 8x), so a
        halo of ``HEAD_HALO`` gives exactly the unbanded rows; at the edges of ``feat`` the convs'
        zero padding falls where it falls without bands.
        """
        lo, hi = max(r0 - HEAD_HALO, 0), min(r1 + HEAD_HALO, feat.shape[-2])
        out = self._head(feat[:, :, lo:hi])
        up = out.shape[-2] // (hi - lo)  # output rows per feature row
        return out[:, :, (r0 - lo) * up : (r1 - lo) * up]

    def forward_net(self, lq: torch.Tensor) -> torch.Tensor:
        """``lq`` (B, C, h, w) to the net's output (B, C_out, h*scale, w*scale), before the bicubic residual.

        Without gradients, a tall input's head runs in bands of ``HEAD_BAND`` body-feature rows:
        its 4x (8x) activations are the largest tensors of the net (552 x 552 x 64 floats, 78 MB, for
        a 138 px tile), and banding keeps two of them from being alive whole. Same output.
        """
        feat = lq
        if self.unshuffle > 1:
            h, w = lq.shape[-2:]
            if h % self.unshuffle or w % self.unshuffle:
                raise SRLabError(
                    f"RRDBNet scale {self.scale} needs input height and width divisible by {self.unshuffle}, "
                    f"got {h}x{w}; crop or pad the input"
                )
            feat = F.pixel_unshuffle(lq, self.unshuffle)  # (B, C*u*u, h/u, w/u)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))  # (B, F, h', w')
        rows = feat.shape[-2]
        if torch.is_grad_enabled() or torch.jit.is_tracing() or rows <= 2 * HEAD_BAND:
            sr = self._head(feat)
        else:
            sr = torch.cat([self._head_band(feat, r, min(r + HEAD_BAND, rows)) for r in range(0, rows, HEAD_BAND)], -2)
        return sr


def _detect_rrdbnet(sd: StateDict) -> dict | None:
    if "body.0.rdb1.conv1.weight" not in sd or "conv_body.weight" not in sd:
        return None
    num_feat, in_ch = shape(sd, "conv_first.weight")[:2]
    out_ch = shape(sd, "conv_last.weight")[0]
    # Real-ESRGAN's x2/x1 nets pixel-unshuffle the input by 2/4 first: conv_first sees 4x/16x channels
    unshuffle = math.isqrt(in_ch // out_ch) if in_ch % out_ch == 0 else 1
    scale = {4: 1, 2: 2}.get(unshuffle, 8 if "conv_up3.weight" in sd else 4)
    return {
        "_target_": "srlab.nets.rrdbnet.RRDBNet",
        "num_in_ch": in_ch // unshuffle**2, "num_out_ch": out_ch, "scale": scale, "num_feat": num_feat,
        "num_block": len(indices(sd, r"body\.(\d+)\.rdb1\.conv1\.weight")),
        "num_grow_ch": shape(sd, "body.0.rdb1.conv1.weight")[0],
    }  # fmt: skip


RRDBNET_SPEC = NetSpec(name="RRDBNet", detect=_detect_rrdbnet, scales=(1, 2, 4, 8), layouts="RRDBNet (BasicSR/Real-ESRGAN and original ESRGAN layouts)")
