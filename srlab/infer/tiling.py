"""Run a generator over an image tile by tile, quantizing each output tile on its device."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from srlab.config import TILE_PAD


@torch.inference_mode()
def upscale_array(
    gen: nn.Module, img: np.ndarray, tile: int = 0, tile_pad: int = TILE_PAD, on_tile: Callable[[], None] | None = None
) -> np.ndarray:
    """Upscale an RGB uint8/uint16 (H, W, 3) image or (N, H, W, 3) batch to the same dtype at ``scale`` x size.

    Only one padded tile at a time is on the device; each output tile is quantized there and
    copied into a CPU array of the output dtype, so accelerator memory grows with ``tile``, not
    with the image. With ``tile_pad`` at least the net's receptive radius (in input pixels) the
    result equals the untiled one: every tile sees the same neighbourhood, and borders of the
    image get the same zero padding.

    Args:
        gen: the generator (its parameters' device and dtype are used), or an
            ``srlab.infer.onnx.OnnxGenerator``.
        img: (H, W, 3) uint8 (values /255) or uint16 (values /65535); (N, H, W, 3) runs each tile of
            the N images as one batch (video frames of one size).
        tile: tile size in input pixels; 0 runs the whole image at once.
        tile_pad: context added around each tile (clamped at image borders) and cropped after.
        on_tile: called after each tile (a progress bar's step); :func:`tile_count` tiles in all.
    """
    batch = img if img.ndim == 4 else img[None]
    if batch.ndim != 4 or batch.shape[3] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) uint8/uint16, got {img.shape} {img.dtype}")
    # a generator without parameters (srlab.infer.onnx.OnnxGenerator) takes float32 CPU tensors
    param = next(gen.parameters(), torch.empty(0))
    peak = 255.0 if img.dtype == np.uint8 else 65535.0
    qdtype = torch.uint8 if img.dtype == np.uint8 else torch.int32  # torch has no uint16 copy to numpy
    s, (n, h, w) = gen.scale, batch.shape[:3]
    lq = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))  # (N, 3, H, W) CPU, input dtype
    out = np.empty((n, h * s, w * s, 3), dtype=img.dtype)
    tile = tile if tile and tile > 0 else max(h, w)
    for ty in range(math.ceil(h / tile)):
        for tx in range(math.ceil(w / tile)):
            y0, x0 = ty * tile, tx * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            x = lq[:, :, py0:py1, px0:px1].to(param.device, torch.float32).div_(peak)  # (N, 3, h', w')
            if x.device.type == "cpu" or param.dtype != torch.float32:
                # a channels_last input makes oneDNN run every conv in NHWC, without layout reorders:
                # RRDBNet x4 tiles 1.1-1.25x faster, ~25% less memory (`python -m srlab.bench --sections infer`);
                # bf16/fp16 nets are channels_last on every device (to_device)
                x = x.contiguous(memory_format=torch.channels_last)
            half = getattr(gen, "autocast_dtype", None)  # an OnnxGenerator has none
            sr = gen(x if half else x.to(param.dtype)).float()  # (N, 3, h'*s, w'*s)
            sr = sr[:, :, (y0 - py0) * s : (y1 - py0) * s, (x0 - px0) * s : (x1 - px0) * s]
            q = sr.clamp_(0, 1).mul_(peak).round_().to(qdtype).permute(0, 2, 3, 1).cpu().numpy()
            out[:, y0 * s : y1 * s, x0 * s : x1 * s] = q
            if on_tile is not None:
                on_tile()
    return out if img.ndim == 4 else out[0]


def tile_count(h: int, w: int, tile: int) -> int:
    """How many tiles :func:`upscale_array` runs for an (h, w) image (1 when ``tile`` is 0)."""
    if not tile or tile <= 0:
        return 1
    return math.ceil(h / tile) * math.ceil(w / tile)
