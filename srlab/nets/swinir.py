"""SwinIR (Liang et al., ICCVW 2021) with the official repository's module and state-dict names."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError
from srlab.nets.blocks import require_choice
from srlab.nets.edsr import DIV2K_RGB_MEAN, shuffle_upsampler
from srlab.nets.swin import RSTB, shifted_window_mask
from srlab.nets.spec import NetSpec, StateDict, indices, shape, shuffle_stack_scale

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "none")
_NUM_FEAT = 64  # width of the reconstruction convs, fixed in the official code


def _check(upsampler: str, upscale: int, depths: list[int], num_heads: list[int], embed_dim: int) -> None:
    require_choice(upsampler, UPSAMPLERS, "upsampler")
    ok = {
        "pixelshuffle": upscale > 0 and (upscale & (upscale - 1) == 0 or upscale == 3),
        "pixelshuffledirect": upscale >= 1,
        "nearest+conv": upscale in (2, 4),
        "none": upscale == 1,
    }[upsampler]
    if not ok:
        allowed = {"pixelshuffle": "powers of two and 3", "pixelshuffledirect": "any factor >= 1",
                   "nearest+conv": "2 or 4", "none": "1 (denoising, JPEG)"}[upsampler]  # fmt: skip
        raise ConfigError(
            f"model.generator.upscale={upscale}: SwinIR's {upsampler} upsampler supports {allowed} "
            "(set data.scale or model.generator.upsampler accordingly)"
        )
    if len(depths) != len(num_heads):
        raise ConfigError(f"model.generator.num_heads has {len(num_heads)} entries but depths has {len(depths)}")
    if any(embed_dim % h for h in num_heads):
        raise ConfigError(f"model.generator.embed_dim={embed_dim} is not divisible by every num_heads {num_heads}")


class SwinIR(nn.Module):
    """Shallow conv, residual Swin Transformer groups (RSTB), conv reconstruction.

    ``conv_first`` -> ``patch_embed.norm`` -> ``layers`` (one RSTB per entry of ``depths``) ->
    ``norm`` -> ``conv_after_body`` + long skip -> reconstruction by ``upsampler``:

    - ``pixelshuffle`` (classical SR): ``conv_before_upsample`` -> ``upsample`` (conv +
      PixelShuffle per factor) -> ``conv_last``. SwinIR-M x4 (embed_dim 180, 6 x 6 blocks,
      6 heads, window 8, mlp_ratio 2) has 11,900,199 parameters.
    - ``pixelshuffledirect`` (lightweight SR): one conv + PixelShuffle straight to RGB. SwinIR-S
      x4 (embed_dim 60, 4 x 6 blocks, 6 heads, window 8, mlp_ratio 2): 929,628 parameters; the
      paper's 897K leaves out the relative-position bias tables (24 x 225 x 6 = 32,400).
    - ``nearest+conv`` (real-world SR, fewer artifacts): ``conv_before_upsample``, then per
      doubling nearest x2 + ``conv_upN`` + LeakyReLU, ``conv_hr``, ``conv_last`` (x2 or x4).
    - ``none``: x1 restoration (denoising, JPEG), ``conv_last`` output added to the input.

    Inputs of any size are reflect-padded to a multiple of ``window_size`` and the output cropped
    back. The state dict matches official releases key for key, including the derived buffers
    ``relative_position_index`` and ``attn_mask`` (for ``img_size``) that the official code saves.

    Args:
        in_chans: channels of ``lq`` and ``sr`` (3 RGB, 1 gray), values in [0, 1].
        img_size: training patch size of the official configs (48 or 64); fixes the saved
            ``attn_mask`` shapes only, any input size runs.
        embed_dim: token width.
        depths: Swin blocks per RSTB.
        num_heads: attention heads per RSTB.
        window_size: side of the attention windows (8 in the released models).
        mlp_ratio: hidden width of the block MLPs over ``embed_dim``.
        drop_path_rate: stochastic-depth rate, rising linearly over all blocks.
        upscale: the scale factor (official name; srlab configs pass ``upscale: ${data.scale}`` and
            the net exposes ``scale``).
        img_range: range the trunk sees (1.0 in the released models).
        upsampler: one of ``UPSAMPLERS``.
        resi_connection: ``1conv`` or ``3conv`` (the cheaper 3-conv block of SwinIR-L).

    Raises:
        ConfigError: unknown upsampler or resi_connection, a scale the upsampler lacks, or
            heads that do not divide ``embed_dim``.
    """

    def __init__(
        self,
        in_chans: int = 3, img_size: int = 64,
        embed_dim: int = 96, depths: list[int] = (6, 6, 6, 6), num_heads: list[int] = (6, 6, 6, 6),
        window_size: int = 8, mlp_ratio: float = 4.0, drop_path_rate: float = 0.1,
        upscale: int = 2, img_range: float = 1.0, upsampler: str = "pixelshuffle", resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        depths, num_heads = list(depths), list(num_heads)
        _check(upsampler, upscale, depths, num_heads, embed_dim)
        require_choice(resi_connection, ("1conv", "3conv"), "resi_connection")
        self.upscale = self.scale = upscale
        self.upsampler, self.img_range = upsampler, img_range
        # the official code shrinks the window to a smaller training patch; keep that so shapes agree
        self.window_size = min(window_size, img_size)
        self.shift = self.window_size // 2 if img_size > self.window_size else 0
        mean = torch.tensor(DIV2K_RGB_MEAN if in_chans == 3 else (0.0,) * in_chans).view(1, in_chans, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = nn.Module()  # only its LayerNorm holds weights: keeps the name patch_embed.norm
        self.patch_embed.norm = nn.LayerNorm(embed_dim)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linspace, meta-device safe
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            first = sum(depths[:i])
            self.layers.append(
                RSTB(embed_dim, depth, heads, self.window_size, mlp_ratio, rates[first:first + depth],
                     img_size, resi_connection)
            )  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = RSTB.residual_conv(embed_dim, resi_connection)

        if upsampler in ("pixelshuffle", "nearest+conv"):
            # LeakyReLU's default slope 0.01 here, 0.2 in the nearest+conv head: both as in the official code
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, _NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
        if upsampler == "pixelshuffle":
            self.upsample = shuffle_upsampler(upscale, _NUM_FEAT)
            self.conv_last = nn.Conv2d(_NUM_FEAT, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, upscale * upscale * in_chans, 3, 1, 1), nn.PixelShuffle(upscale)
            )
        elif upsampler == "nearest+conv":
            self.conv_up1 = nn.Conv2d(_NUM_FEAT, _NUM_FEAT, 3, 1, 1)
            if upscale == 4:
                self.conv_up2 = nn.Conv2d(_NUM_FEAT, _NUM_FEAT, 3, 1, 1)
            self.conv_hr = nn.Conv2d(_NUM_FEAT, _NUM_FEAT, 3, 1, 1)
            self.conv_last = nn.Conv2d(_NUM_FEAT, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.apply(_init_weights)

    def forward_features(self, feat: torch.Tensor) -> torch.Tensor:
        """The transformer trunk on (B, E, H, W) features, H and W multiples of the window."""
        b, c, h, w = feat.shape
        tokens = self.patch_embed.norm(feat.flatten(2).transpose(1, 2))  # (B, H*W, E)
        # one mask per input size serves every shifted block
        mask = None
        if self.shift:
            mask = shifted_window_mask(h, w, self.window_size, self.shift, feat.device).to(feat.dtype)
        for layer in self.layers:
            tokens = layer(tokens, (h, w), mask)
        return self.norm(tokens).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C, h*upscale, w*upscale)."""
        h, w = lq.shape[-2:]
        ws = self.window_size
        pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
        # reflect (as BasicSR) needs the pad below the size; only inputs smaller than a window fall
        # back to replicate. Always padding (by 0 too) keeps one graph for every size in an ONNX export.
        exporting = torch.onnx.is_in_onnx_export()
        mode = "reflect" if exporting or (pad_h < h and pad_w < w) else "replicate"
        x = F.pad(lq, (0, pad_w, 0, pad_h), mode=mode)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        feat = self.conv_first(x)  # (B, E, H, W)
        feat = self.conv_after_body(self.forward_features(feat)) + feat
        if self.upsampler == "pixelshuffle":
            out = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
        elif self.upsampler == "pixelshuffledirect":
            out = self.upsample(feat)
        elif self.upsampler == "nearest+conv":
            out = self.conv_before_upsample(feat)
            for conv_up in [self.conv_up1] + ([self.conv_up2] if self.upscale == 4 else []):
                out = self.lrelu(conv_up(F.interpolate(out, scale_factor=2, mode="nearest")))
            out = self.conv_last(self.lrelu(self.conv_hr(out)))
        else:
            out = x + self.conv_last(feat)
        sr = out / self.img_range + mean  # (B, C, H*upscale, W*upscale)
        return sr[..., : h * self.upscale, : w * self.upscale]


def _init_weights(m: nn.Module) -> None:
    """Truncated-normal Linear weights (std 0.02), unit LayerNorms: the official initialisation."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _detect_swinir(sd: StateDict) -> dict | None:
    if "layers.0.residual_group.blocks.0.attn.qkv.weight" not in sd:
        return None
    embed_dim, in_chans = shape(sd, "conv_first.weight")[:2]
    layers = indices(sd, r"layers\.(\d+)\.residual_group\.blocks\.0\.attn\.qkv\.weight")
    block = "layers.{}.residual_group.blocks.{}."
    depths = [len(indices(sd, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight")) for i in layers]
    heads = [shape(sd, block.format(i, 0) + "attn.relative_position_bias_table")[1] for i in layers]
    window = (math.isqrt(shape(sd, block.format(0, 0) + "attn.relative_position_bias_table")[0]) + 1) // 2
    # the saved shifted-window mask is (nW, N, N) for an img_size x img_size training patch; no mask
    # in a file with 2+ blocks per group means the official code ran unshifted (img_size <= window)
    mask = next((v for k, v in sd.items() if k.endswith(".attn_mask")), None)
    img_size = math.isqrt(mask.shape[0]) * window if mask is not None else (window if max(depths) > 1 else 64)
    if "conv_up1.weight" in sd:
        upsampler, scale = "nearest+conv", 4 if "conv_up2.weight" in sd else 2
    elif "conv_before_upsample.0.weight" in sd:
        num_feat = shape(sd, "conv_before_upsample.0.weight")[0]
        upsampler, scale = "pixelshuffle", shuffle_stack_scale(sd, "upsample", num_feat)
    elif "upsample.0.weight" in sd:
        upsampler, scale = "pixelshuffledirect", math.isqrt(shape(sd, "upsample.0.weight")[0] // in_chans)
    else:
        upsampler, scale = "none", 1
    return {
        "_target_": "srlab.nets.swinir.SwinIR",
        "in_chans": in_chans, "img_size": img_size, "embed_dim": embed_dim, "depths": depths, "num_heads": heads,
        "window_size": window, "mlp_ratio": shape(sd, block.format(0, 0) + "mlp.fc1.weight")[0] / embed_dim,
        "upscale": scale, "upsampler": upsampler,
        "resi_connection": "1conv" if "conv_after_body.weight" in sd else "3conv",
    }  # fmt: skip


SWINIR_SPEC = NetSpec(name="SwinIR", detect=_detect_swinir, scales=(1, 2, 3, 4, 8), layouts="SwinIR (official)")
