"""EFDN, the Edge-enhanced Feature Distillation Network (icandle/EFDN; the NTIRE 2025 ESR baseline ``team00_EFDN``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_positive_ints
from srlab.nets.rlfn import ESA
from srlab.nets.spec import NetSpec, StateDict, require_layout, shape, shuffle_scale

# Fixed 3x3 edge filters of the EDBB branches; only a per-channel scale on each is learned.
_EDGE_MASKS = {
    "conv1x1_sbx": [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],  # Sobel x
    "conv1x1_sby": [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]],  # Sobel y
    "conv1x1_lpl": [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],  # Laplacian
}


class EdgeBranch(nn.Module):
    """A 1x1 conv, then a fixed depthwise edge filter scaled per channel (the source's ``SeqConv3x3``).

    Args:
        channels: input and output width.
        mask: the 3x3 edge filter.
    """

    def __init__(self, channels: int, mask: list[list[float]]) -> None:
        super().__init__()
        conv = nn.Conv2d(channels, channels, 1)  # its default init, as the source's
        self.k0, self.b0 = conv.weight, conv.bias
        self.scale = nn.Parameter(torch.randn(channels, 1, 1, 1) * 1e-3)  # edges start almost switched off
        self.bias = nn.Parameter(torch.randn(channels) * 1e-3)
        self.register_buffer("mask", torch.tensor(mask).expand(channels, 1, 3, 3).clone())  # fixed, saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        # 1x1 conv of the zero-padded input: the border is b0, as the source pads; this is what makes it foldable
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.k0, self.b0)  # (B, C, H+2, W+2)
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=y.shape[1])

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (weight, bias) of the one 3x3 conv that computes this branch."""
        dw = (self.scale * self.mask)[:, 0]  # (C, 3, 3): output channel o filters only channel o
        weight = dw[:, None] * self.k0  # (C, C, 3, 3) = dw[o] * k0[o, i]
        return weight, self.bias + self.b0 * dw.sum(dim=(1, 2))


class EDBB(nn.Module):
    """Edge-enhanced Diverse Branch Block: a 3x3 conv with PReLU that trains as five parallel branches.

    Training form (``deploy=False``): 3x3 conv (``rep_conv``) + 1x1 conv + Sobel-x, Sobel-y and
    Laplacian branches, summed; deploy form: the single ``rep_conv`` they fold into (:meth:`fused`).

    Args:
        channels: input and output width.
        deploy: build only the folded ``rep_conv``.
        unused_13_channels: width of the source's ``conv1x1_3x3`` branch, which its training form
            creates but never runs (``with_13=False``); >0 keeps its tensors as buffers so those
            training checkpoints load strictly. 0 (srlab's own nets): not stored.
    """

    def __init__(self, channels: int, deploy: bool = True, unused_13_channels: int = 0) -> None:
        super().__init__()
        self.rep_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.deploy = deploy
        if not deploy:
            self.conv1x1 = nn.Conv2d(channels, channels, 1)
            for name, mask in _EDGE_MASKS.items():
                self.add_module(name, EdgeBranch(channels, mask))
            if unused_13_channels:
                self.conv1x1_3x3 = nn.Module()
                mid = unused_13_channels
                for key, size in (("k0", (mid, channels, 1, 1)), ("b0", (mid,)), ("k1", (channels, mid, 3, 3))):
                    self.conv1x1_3x3.register_buffer(key, torch.zeros(size))
                self.conv1x1_3x3.register_buffer("b1", torch.zeros(channels))
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        y = self.rep_conv(x)
        if not self.deploy:
            y = y + self.conv1x1(x) + self.conv1x1_sbx(x) + self.conv1x1_sby(x) + self.conv1x1_lpl(x)
        return self.act(y)

    @torch.no_grad()
    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (weight, bias) of the deploy ``rep_conv`` that computes the sum of the branches."""
        weight, bias = self.rep_conv.weight.clone(), self.rep_conv.bias.clone()
        if not self.deploy:
            weight[:, :, 1:2, 1:2] += self.conv1x1.weight  # a 1x1 conv is a 3x3 with only the centre tap
            bias += self.conv1x1.bias
            for branch in (self.conv1x1_sbx, self.conv1x1_sby, self.conv1x1_lpl):
                w, b = branch.fused()
                weight += w
                bias += b
        return weight, bias


class Cell(nn.Module):
    """Edge-enhanced Feature Distillation Block: 1x1 conv, two EDBBs, 4-way distillation fuse, ESA, skip.

    Args:
        channels: block input and output width (divisible by 4).
        deploy: EDBBs in deploy form.
        unused_13_channels: see :class:`EDBB`.
    """

    def __init__(self, channels: int, deploy: bool, unused_13_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Module()  # the source's ``conv``: a 1x1 conv and a PReLU, named conv1x1 / act
        self.conv1.conv1x1 = nn.Conv2d(channels, channels, 1)
        self.conv1.act = nn.PReLU(channels)
        self.conv2 = EDBB(channels, deploy, unused_13_channels)
        self.conv3 = EDBB(channels, deploy, unused_13_channels)
        self.fuse = nn.Conv2d(channels * 2, channels, 1)
        self.att = ESA(channels, channels // 4, full=True)  # RFDN's ESA, keys and maths
        self.branch = nn.ModuleList([nn.Conv2d(channels, channels // 2, 1) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out1 = self.conv1.act(self.conv1.conv1x1(x))
        out2 = self.conv2(out1)
        out3 = self.conv3(out2)
        # distil C/2 channels from every stage: (B, 2C, H, W) -> (B, C, H, W)
        distilled = torch.cat([b(t) for b, t in zip(self.branch, (x, out1, out2, out3), strict=True)], dim=1)
        return self.att(self.fuse(distilled)) + x


class EFDN(InputRange, nn.Module):
    """Edge-enhanced Feature Distillation Network (Wang, CVPRW 2022; NTIRE 2022 ESR, the NTIRE 2025 baseline).

    A 3x3 head, four Cells joined by three 1x1 ``local_fuse`` convs (the source's wiring, which feeds
    the second Cell's output to the second and third fuse), a skip from the head, then a 3x3 conv and
    a PixelShuffle. Names as in the source (``head``, ``cells.N``, ``local_fuse.N``, ``tail.0``).
    The published files hold the deploy form: ``EFDN(deploy=True)``, 276,192 parameters.

    Args:
        in_channels: channels of ``lq`` (B, in_channels, h, w), values in [0, 1]; h, w >= 15.
        out_channels: channels of ``sr`` (B, out_channels, h*upscale, w*upscale), values in [0, 1].
        n_feats: trunk width (divisible by 4).
        upscale: integer scale factor >= 1 (one PixelShuffle); the source calls it ``scale``.
        deploy: each EDBB as one 3x3 conv (the published files); False: the five-branch training
            form, which :meth:`reparameterize` folds into the deploy form.
        unused_13_channels: see :class:`EDBB` (training form only).
        input_range: the value range the weights were trained on (EFDN's files: 1); ``lq`` is
            multiplied by it on the way in and ``sr`` divided on the way out. Not in the state dict.

    Raises:
        ConfigError: a size that is not an integer >= 1, ``n_feats`` not divisible by 4, or a
            non-positive ``input_range``.
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, n_feats: int = 48, upscale: int = 4, deploy: bool = True,
        unused_13_channels: int = 0,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = {"in_channels": in_channels, "out_channels": out_channels, "n_feats": n_feats}
        require_positive_ints("EFDN", **sizes, upscale=upscale)
        if n_feats % 4:
            raise ConfigError(f"model.generator.n_feats={n_feats}: EFDN needs a multiple of 4 (ESA uses n_feats/4)")
        if unused_13_channels and deploy:
            raise ConfigError("model.generator.unused_13_channels: only the training form (deploy=false) has them")
        self.scale = self.upscale = upscale
        self.input_range = require_input_range(input_range)
        self._sizes = sizes
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.cells = nn.ModuleList([Cell(n_feats, deploy, unused_13_channels) for _ in range(4)])
        self.local_fuse = nn.ModuleList([nn.Conv2d(n_feats * 2, n_feats, 1) for _ in range(3)])
        self.tail = nn.Sequential(nn.Conv2d(n_feats, out_channels * upscale**2, 3, padding=1), nn.PixelShuffle(upscale))

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, C, h, w) to ``sr * input_range`` (B, C, h*upscale, w*upscale)."""
        out0 = self.head(x)  # (B, F, h, w)
        out1 = self.cells[0](out0)
        out2 = self.cells[1](out1)
        out3 = self.cells[2](self.local_fuse[0](torch.cat([out1, out2], dim=1)))
        out4 = self.cells[3](self.local_fuse[1](torch.cat([out2, out3], dim=1)))
        out = self.local_fuse[2](torch.cat([out2, out4], dim=1)) + out0
        # the source clamps to [0, 1] here; srlab clamps its outputs itself, and a clamp inside the net
        # would stop the gradient of every pixel that overshoots while training
        return self.tail(out)

    @torch.no_grad()
    def reparameterize(self) -> EFDN:
        """A deploy-form copy with every EDBB folded into one 3x3 conv (the same outputs, up to rounding)."""
        net = EFDN(**self._sizes, upscale=self.upscale, deploy=True, input_range=self.input_range)
        kept = {k: v for k, v in self.state_dict().items() if k in net.state_dict()}
        net.load_state_dict(kept | self._folded(), strict=True)
        return net.to(self.head.weight).train(self.training)  # the same device and dtype

    def _folded(self) -> dict[str, torch.Tensor]:
        """The deploy ``rep_conv`` tensors of every EDBB, by state-dict key."""
        out = {}
        for i, cell in enumerate(self.cells):
            for name in ("conv2", "conv3"):
                weight, bias = getattr(cell, name).fused()
                out[f"cells.{i}.{name}.rep_conv.weight"] = weight
                out[f"cells.{i}.{name}.rep_conv.bias"] = bias
        return out


# keys only EFDN has: its Cell's 1x1 conv + PReLU pair, RFDN's ESA inside a Cell, the fuses between Cells
_ANCHORS = ("cells.0.conv1.conv1x1.weight", "cells.0.att.conv_max.weight", "local_fuse.0.weight", "head.weight")


def _detect_efdn(sd: StateDict) -> dict[str, Any] | None:
    """The config of the EFDN that loads ``sd`` (the source's names, deploy or training form), or None."""
    if not all(k in sd for k in _ANCHORS):
        return None
    n_feats, in_channels = shape(sd, "head.weight")[:2]
    deploy = "cells.0.conv2.conv1x1_sbx.k0" not in sd
    cfg = {
        "_target_": "srlab.nets.efdn.EFDN",
        "in_channels": in_channels,
        "out_channels": in_channels,  # a file does not say; every EFDN maps RGB to RGB
        "n_feats": n_feats,
        "upscale": shuffle_scale(shape(sd, "tail.0.weight")[0], in_channels),
        "deploy": deploy,
    }
    if "cells.0.conv2.conv1x1_3x3.k0" in sd:
        cfg["unused_13_channels"] = shape(sd, "cells.0.conv2.conv1x1_3x3.k0")[0]
    return require_layout(cfg, sd)


EFDN_SPEC = NetSpec(name="EFDN", detect=_detect_efdn, scales=(2, 3, 4), input_range=None,
                    layouts="EFDN, deploy or training (EDBB) form (icandle/EFDN, NTIRE 2022/2025 ESR team00_EFDN)")
