"""SPAN, the Swift Parameter-free Attention Network (NTIRE 2024 ESR winner), in its training and deploy forms."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import InputRange, require_input_range, require_positive_ints
from srlab.nets.edsr import DIV2K_RGB_MEAN
from srlab.nets.spec import NetSpec, StateDict, indices, layout_differences, shape, shuffle_scale


class _FusedKernel(nn.Module):
    """The training form's ``eval_conv``: buffers (no gradients) that hold the fused 3x3 kernel for saving."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(c_out, c_in, 3, 3))
        self.register_buffer("bias", torch.zeros(c_out))


def _refresh_fused(module: RepConv, prefix: str, keep_vars: bool) -> None:
    """State-dict pre-hook: saved ``eval_conv`` tensors equal the branches (a stale copy would mislead readers)."""
    with torch.no_grad():
        weight, bias = module.fused()
        module.eval_conv.weight.copy_(weight)
        module.eval_conv.bias.copy_(bias)


class RepConv(nn.Module):
    """A 3x3 conv trained as (1x1 -> 3x3 -> 1x1) + 1x1 skip and run as one fused 3x3 conv (SPAN's ``Conv3XC``).

    Training form: ``sk`` (1x1 skip), ``conv.0/1/2`` (1x1 to ``gain * c_in``, 3x3 valid on the zero-padded
    input, 1x1 back) and ``eval_conv`` (the fused kernel, kept in sync for saving, never trained). In
    training mode the branches run; in eval mode their fused kernel does, as the source and spandrel do (the
    two differ on the 1-px border, where the padded 1x1 conv's bias is not zero). Deploy form: ``eval_conv``
    is a plain trainable ``nn.Conv2d``.

    Args:
        c_in: input channels.
        c_out: output channels.
        gain: channel expansion inside the branch (SPAN: 2).
        deploy: build the deploy form.
    """

    def __init__(self, c_in: int, c_out: int, gain: int = 2, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.eval_conv = nn.Conv2d(c_in, c_out, 3, 1, 1)
            return
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * gain, 1), nn.Conv2d(c_in * gain, c_out * gain, 3), nn.Conv2d(c_out * gain, c_out, 1)
        )
        self.eval_conv = _FusedKernel(c_in, c_out)
        self.register_state_dict_pre_hook(_refresh_fused)

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel (c_out, c_in, 3, 3) and bias (c_out,) equal to the branches (differentiable)."""
        if self.deploy:
            return self.eval_conv.weight, self.eval_conv.bias
        (w1, b1), (w2, b2), (w3, b3) = ((c.weight, c.bias) for c in self.conv)
        # 1x1 kernels are matrices, so the chain is a product: W = w3 @ w2 @ w1 at every 3x3 tap
        weight = torch.einsum("om,mnyx,ni->oiyx", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
        bias = w3[:, :, 0, 0] @ (w2.sum((2, 3)) @ b1 + b2) + b3
        weight = weight + F.pad(self.sk.weight, (1, 1, 1, 1))  # the 1x1 skip is the 3x3 kernel's centre tap
        return weight, bias + self.sk.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W)."""
        if self.deploy:
            return self.eval_conv(x)
        # Training too runs the one fused 3x3 conv: the branches are linear, so it is the same function of
        # the same parameters (conv(pad(x)) + sk(x) up to rounding) and their gradients flow through
        # fused(); the branch chain would cost (1 + 2 gain + gain^2)x the MACs (a 6x slower SPAN step).
        weight, bias = self.fused()
        return F.conv2d(x, weight, bias, padding=1)


class SPAB(nn.Module):
    """Swift parameter-free attention block: three RepConvs, then the output gates itself with ``sigmoid - 0.5``."""

    def __init__(self, channels: int, deploy: bool = False) -> None:
        super().__init__()
        self.c1_r = RepConv(channels, channels, deploy=deploy)
        self.c2_r = RepConv(channels, channels, deploy=deploy)
        self.c3_r = RepConv(channels, channels, deploy=deploy)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> the block's output and its first activated features, both (B, C, H, W)."""
        # the source's in-place SiLU overwrites c1_r's output, so the features it hands on are activated
        out1 = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(out1)))
        attention = torch.sigmoid(out3) - 0.5  # parameter-free: centred on 0, so it can also suppress
        return (out3 + x) * attention, out1


class SPAN(InputRange, nn.Module):
    """SPAN (Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution", CVPRW 2024).

    State-dict names are the source's and spandrel's (``conv_1``, ``block_1.c1_r``, ``conv_cat``, ``conv_2``,
    ``upsampler.0``). The training form (``deploy=False``) holds every branch of each :class:`RepConv` plus its
    fused ``eval_conv``; the deploy form (``deploy=True``, NTIRE's "slim" files) holds only ``eval_conv``: no
    branches, so it trains as a plain conv net. :meth:`reparameterize` turns a trained net into the deploy
    form. The NTIRE 2024 team38 file is ``SPAN(feature_channels=28, deploy=True)``: 150,688 parameters.

    Args:
        num_in_ch: channels of ``lq`` (B, num_in_ch, h, w).
        num_out_ch: channels of ``sr`` (B, num_out_ch, h*upscale, w*upscale).
        feature_channels: width of every conv.
        upscale: integer scale >= 1 (one PixelShuffle).
        num_blocks: number of SPABs (the published nets use 6).
        norm: subtract ``rgb_mean`` and multiply by ``img_range`` first; ``False`` saves a ``no_norm`` buffer,
            as spandrel's and traiNNer's SPAN do.
        img_range: the normalisation's factor (the source's 255 on [0, 1] input). Not in the state dict.
        rgb_mean: the mean subtracted, one value per input channel (DIV2K's). Not in the state dict.
        deploy: build the deploy (slim) form.
        input_range: ``forward`` runs the net on ``lq * input_range`` and divides the result by it (255 for
            files trained on [0, 255]). Not in the state dict.

    Raises:
        ConfigError: a non-positive size or scale, or an ``rgb_mean`` whose length is not ``num_in_ch``.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48, upscale: int = 4,
        num_blocks: int = 6, norm: bool = True,
        img_range: float = 255.0, rgb_mean: tuple[float, ...] = DIV2K_RGB_MEAN,
        deploy: bool = False,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = {"num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "feature_channels": feature_channels,
                 "upscale": upscale, "num_blocks": num_blocks}  # fmt: skip
        require_positive_ints("SPAN", **sizes)
        if norm and len(rgb_mean) != num_in_ch:
            raise ConfigError(f"model.generator.rgb_mean={list(rgb_mean)}: needs num_in_ch={num_in_ch} values")
        # the constructor's kwargs, as spandrel's models keep them (reparameterize rebuilds from them)
        self.hyperparameters = {**sizes, "norm": norm, "img_range": img_range, "rgb_mean": tuple(rgb_mean),
                                "deploy": deploy, "input_range": input_range}  # fmt: skip
        self.upscale = self.scale = upscale
        self.img_range, self.input_range, self.deploy = img_range, require_input_range(input_range), deploy
        mean = torch.tensor([float(v) for v in rgb_mean]).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)  # moves with .to(), not saved
        self.no_norm: torch.Tensor | None
        if norm:
            self.no_norm = None
        else:
            self.register_buffer("no_norm", torch.zeros(1))
        self.conv_1 = RepConv(num_in_ch, feature_channels, deploy=deploy)
        self.num_blocks = num_blocks
        for i in range(1, num_blocks + 1):
            self.add_module(f"block_{i}", SPAB(feature_channels, deploy=deploy))
        self.conv_cat = nn.Conv2d(feature_channels * 4, feature_channels, 1)
        self.conv_2 = RepConv(feature_channels, feature_channels, deploy=deploy)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, num_out_ch * upscale * upscale, 3, 1, 1), nn.PixelShuffle(upscale)
        )

    def forward_in_range(self, x: torch.Tensor) -> torch.Tensor:
        """``lq * input_range`` (B, C, h, w) to ``sr * input_range`` (B, C_out, h*upscale, w*upscale)."""
        if self.no_norm is None:
            x = (x - self.mean) * self.img_range
        feat = self.conv_1(x)  # (B, F, h, w)
        out_b1, first = self.block_1(feat)
        out = out_b1
        for i in range(2, self.num_blocks + 1):
            out, first = getattr(self, f"block_{i}")(out)
        # the last block's activated first conv rides along with the shallow and first-block features
        out = self.conv_cat(torch.cat([feat, self.conv_2(out), out_b1, first], 1))  # (B, F, h, w)
        return self.upsampler(out)

    def reparameterize(self) -> SPAN:
        """A deploy-form copy whose every RepConv is its fused 3x3 conv (the same output in eval mode)."""
        if self.deploy:
            return copy.deepcopy(self)
        slim = SPAN(**{**self.hyperparameters, "deploy": True}).to(self.conv_cat.weight)  # device and dtype
        wanted = slim.state_dict().keys()
        slim.load_state_dict({k: v for k, v in self.state_dict().items() if k in wanted}, strict=True)
        return slim.train(self.training)


def detect_span(sd: StateDict) -> dict[str, Any] | None:
    """The config of the SPAN (training or deploy form) that loads ``sd`` strictly, or None if it is not one."""
    if "conv_1.eval_conv.weight" not in sd or "block_1.c1_r.eval_conv.weight" not in sd or "conv_cat.weight" not in sd:
        return None
    feature_channels, num_in_ch = shape(sd, "conv_1.eval_conv.weight")[:2]
    upscale = shuffle_scale(shape(sd, "upsampler.0.weight")[0], num_in_ch)  # assumes num_out_ch == num_in_ch
    cfg = {
        "_target_": "srlab.nets.span.SPAN",
        "num_in_ch": num_in_ch,
        "num_out_ch": num_in_ch,
        "feature_channels": feature_channels,
        "upscale": upscale,
        "num_blocks": len(indices(sd, r"block_(\d+)\.c1_r\.eval_conv\.weight")),
        "norm": "no_norm" not in sd,
        "deploy": "conv_1.sk.weight" not in sd,
    }
    if num_in_ch != 3:
        cfg["rgb_mean"] = [0.0] * num_in_ch  # the DIV2K mean is RGB's; a state dict cannot say what else was used
    return None if layout_differences(cfg, sd) else cfg


SPAN_SPEC = NetSpec(name="SPAN", detect=detect_span, scales=(1, 2, 3, 4), input_range=None,
                    layouts="SPAN training form (conv_1.sk + eval_conv) and deploy/slim form (eval_conv only)")
