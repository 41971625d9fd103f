"""Swin Transformer parts of SwinIR: window attention, shifted-window blocks, residual groups (RSTB).

Module names follow the official SwinIR code so released weights load key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# What the official code adds to attention logits between tokens from different image regions in
# a shifted window: large enough to vanish in the softmax; kept (not -inf) for identical outputs.
_MASKED = -100.0


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/ws * W/ws, ws*ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B * H/ws * W/ws, ws*ws, C) -> (B, H, W, C), the inverse of ``window_partition``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device: torch.device | None = None) -> torch.Tensor:
    """Additive mask (nW, ws*ws, ws*ws) that keeps attention inside each region of a shifted window.

    After the cyclic shift by ``shift``, the last ``ws`` rows/columns mix pixels from the image's
    far edge; rows (columns) fall into 3 bands: [0, H-ws), [H-ws, H-shift), [H-shift, H). Tokens
    attend only to tokens of the same (row band, column band). Computed with comparisons rather than
    slice assignment so it follows dynamic sizes in an ONNX graph.
    """
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    band_h = (rows >= h - ws).long() + (rows >= h - shift).long()
    band_w = (cols >= w - ws).long() + (cols >= w - shift).long()
    region = (band_h[:, None] * 3 + band_w[None, :]).view(1, h, w, 1).float()
    ids = window_partition(region, ws).squeeze(-1)  # (nW, ws*ws)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, _MASKED)


def _drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero a sample's whole branch with probability ``rate`` (training only)."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - rate)
    return x * keep / (1 - rate)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ws x ws windows with a learned relative position bias."""

    def __init__(self, dim: int, ws: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)  # (2, N)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)  # (N, N, 2), offsets >= 0
        # derived from ws, but saved (persistent) because official releases carry it
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B*nW, N, C); ``mask`` (nW, N, N) additive or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)  # (1, heads, N, N)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias + mask[:, None]).repeat(bw // nw, 1, 1, 1)  # (B*nW, heads, N, N), windows batch-major
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B*nW, heads, N, C/heads)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Linear-GELU-Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, each with a residual (Swin, Liu et al. 2021)."""

    def __init__(self, dim: int, num_heads: int, ws: int, shift: int, mlp_ratio: float, drop_path: float,
                 img_size: int) -> None:  # fmt: skip
        super().__init__()
        self.ws, self.shift, self.drop_path = ws, shift, drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # Saved for layout compatibility only (official releases hold the mask for img_size);
        # forward uses the mask the net computes once per input size.
        mask = shifted_window_mask(img_size, img_size, ws, shift) if shift else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, H*W, C) tokens of an H x W map; ``mask`` is this block's shifted-window mask."""
        h, w = size
        b, _, c = x.shape
        feat = self.norm1(x).view(b, h, w, c)
        if self.shift:
            feat = torch.roll(feat, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(feat, self.ws), mask if self.shift else None)
        feat = window_reverse(windows, self.ws, h, w)
        if self.shift:
            feat = torch.roll(feat, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + _drop_path(feat.reshape(b, h * w, c), self.drop_path, self.training)
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class BasicLayer(nn.Module):
    """``depth`` Swin blocks, every second one shifted by half a window."""

    def __init__(self, dim: int, depth: int, num_heads: int, ws: int, mlp_ratio: float, drop_path: list[float],
                 img_size: int) -> None:  # fmt: skip
        super().__init__()
        # the official code does not shift when the training patch fits in one window
        half = ws // 2 if img_size > ws else 0
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, num_heads, ws, 0 if i % 2 == 0 else half, mlp_ratio, drop_path[i], img_size)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size, mask)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a ``BasicLayer``, a conv on the map, and a residual."""

    def __init__(self, dim: int, depth: int, num_heads: int, ws: int, mlp_ratio: float, drop_path: list[float],
                 img_size: int, resi_connection: str) -> None:  # fmt: skip
        super().__init__()
        self.residual_group = BasicLayer(dim, depth, num_heads, ws, mlp_ratio, drop_path, img_size)
        self.conv = self.residual_conv(dim, resi_connection)

    @staticmethod
    def residual_conv(dim: int, resi_connection: str) -> nn.Module:
        """``1conv``: one 3x3 conv; ``3conv``: 3x3 to dim/4, 1x1, 3x3 back (fewer parameters, SwinIR-L)."""
        if resi_connection == "1conv":
            return nn.Conv2d(dim, dim, 3, 1, 1)
        q = dim // 4
        return nn.Sequential(
            nn.Conv2d(dim, q, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(q, q, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(q, dim, 3, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, H*W, C) -> same shape."""
        h, w = size
        b, _, c = x.shape
        feat = self.residual_group(x, size, mask).transpose(1, 2).reshape(b, c, h, w)
        return self.conv(feat).flatten(2).transpose(1, 2) + x
