"""JPEG compression of a batch in torch, on the batch's device: the algorithm of DiffJPEG.

Real-ESRGAN simulates JPEG with BasicSR's ``DiffJPEG(differentiable=False)`` (after Lomnitz's DiffJPEG),
not with libjpeg: RGB -> YCbCr (JFIF matrix), 4:2:0 chroma by 2x2 averaging, 8x8 DCT, quantisation
with the standard tables scaled by a continuous quality factor (no integer rounding or clamping of
the table, unlike libjpeg), rounding, the inverse path, chroma upsampled by pixel repetition, and no
rounding of the decoded pixels. The image is zero-padded to a multiple of 16 first. This module
implements the same computation, vectorised over the batch (one quality per image), so that
training data match Real-ESRGAN's; it differs from OpenCV/libjpeg by a few grey levels (measured in
``experiments/realesrgan/README.md``). Runs in the input's dtype (float32 in training, float64 for
the fixed evaluation set).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

# The standard (ITU-T T.81 Annex K) tables, transposed as DiffJPEG (and so Real-ESRGAN) uses them:
# its luminance table is indexed [horizontal, vertical] frequency; kept for identical training data.
_Y_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.float32).T
_C_TABLE = np.full((8, 8), 99, dtype=np.float32)
_C_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)
_YCC2RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)


def _dct_basis() -> np.ndarray:
    """(64, 64) float32: entry [(x, y), (u, v)] = cos((2x+1) u pi/16) cos((2y+1) v pi/16)."""
    t = np.zeros((8, 8, 8, 8), dtype=np.float32)
    for x, y, u, v in itertools.product(range(8), repeat=4):
        t[x, y, u, v] = np.cos((2 * x + 1) * u * np.pi / 16) * np.cos((2 * y + 1) * v * np.pi / 16)
    return t.reshape(64, 64)


@lru_cache(maxsize=8)
def _constants(device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    alpha = np.array([1.0 / np.sqrt(2)] + [1.0] * 7)
    outer = np.outer(alpha, alpha)
    basis = _dct_basis()
    consts = {
        "dct": basis, "idct": basis.T.copy(),  # the inverse basis is the transpose: [(u, v), (x, y)]
        "dct_scale": (outer * 0.25).astype(np.float32).reshape(64), "idct_alpha": outer.astype(np.float32).reshape(64),
        "y_table": _Y_TABLE.reshape(64), "c_table": _C_TABLE.reshape(64),
        "rgb2ycc": _RGB2YCC, "ycc_shift": np.array([0.0, 128.0, 128.0], dtype=np.float32),
        "ycc2rgb": _YCC2RGB, "rgb_shift": np.array([0.0, -128.0, -128.0], dtype=np.float32),
    }
    return {k: torch.from_numpy(v).to(device=device, dtype=dtype) for k, v in consts.items()}


def quality_to_factor(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's quality scaling, continuous: 50/q below 50, 2 - q/50 from 50 (100 -> 0)."""
    return torch.where(quality < 50, 5000.0 / quality, 200.0 - quality * 2) / 100.0


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, H*W/64, 64): 8x8 blocks in raster order, pixels row-major."""
    b, h, w = plane.shape
    return plane.view(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4).reshape(b, -1, 64)


def _merge(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_blocks`."""
    b = blocks.shape[0]
    return blocks.view(b, h // 8, w // 8, 8, 8).permute(0, 1, 3, 2, 4).reshape(b, h, w)


def _code(plane: torch.Tensor, table: torch.Tensor, c: dict) -> torch.Tensor:
    """Encode and decode one (B, H, W) plane (0-255 scale) with a (B, 1, 64) quantisation table."""
    h, w = plane.shape[-2:]
    coef = c["dct_scale"] * ((_blocks(plane) - 128) @ c["dct"])  # (B, N, 64)
    coef = torch.round(coef / table) * table  # the only lossy step
    pixels = 0.25 * ((coef * c["idct_alpha"]) @ c["idct"]) + 128
    return _merge(pixels, h, w)


def jpeg(img: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Compress and decompress a batch.

    Args:
        img: (B, 3, H, W) RGB in [0, 1] (clamp first: values outside make strong artifacts).
        quality: (B,) JPEG quality per image, any real in [1, 100].

    Returns:
        (B, 3, H, W) in [0, 1], same dtype and device.
    """
    c = _constants(img.device, img.dtype)
    b, _, h, w = img.shape
    pad_h, pad_w = -h % 16, -w % 16  # whole 16x16 macroblocks (8x8 chroma blocks after subsampling)
    x = F.pad(img, (0, pad_w, 0, pad_h)) * 255
    ycc = torch.einsum("bchw,dc->bdhw", x, c["rgb2ycc"]) + c["ycc_shift"].view(1, 3, 1, 1)
    factor = quality_to_factor(quality.to(img.dtype)).view(b, 1, 1)
    y = _code(ycc[:, 0], c["y_table"] * factor, c)
    chroma = F.avg_pool2d(ycc[:, 1:], 2)  # (B, 2, H/2, W/2): 4:2:0
    cb, cr = (_code(chroma[:, i], c["c_table"] * factor, c) for i in (0, 1))
    chroma = torch.stack([cb, cr], 1).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    ycc = torch.cat([y.unsqueeze(1), chroma], 1) + c["rgb_shift"].view(1, 3, 1, 1)
    rgb = torch.einsum("bchw,dc->bdhw", ycc, c["ycc2rgb"]).clamp(0, 255) / 255
    return rgb[..., :h, :w]
