"""MATLAB-compatible bicubic ``imresize`` (numpy and torch), and Pillow's bicubic for comparison.

MATLAB's ``imresize(img, scale, 'bicubic')`` is how the classic SR benchmarks made their LR
images: Keys' cubic kernel with a = -0.5, the kernel widened by 1/scale when downscaling
(antialiasing), and symmetric (edge-including) mirroring at the borders. Each axis is a fixed
linear map, so it is built once as an (out, in) weight matrix and applied with a matmul; this
gives the same numbers as BasicSR's ``matlab_functions.imresize`` loop.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

# Keys' cubic convolution parameter used by MATLAB (and Pillow)
_A = -0.5
RESIZE_METHODS = ("pil", "matlab")


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = ((_A + 2) * ax3 - (_A + 3) * ax2 + 1) * (ax <= 1)
    far = (_A * ax3 - 5 * _A * ax2 + 8 * _A * ax - 4 * _A) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_matrix(in_length: int, out_length: int, scale: float | None = None, antialiasing: bool = True) -> np.ndarray:
    """The (out_length, in_length) float64 matrix of MATLAB's bicubic resize along one axis.

    Args:
        in_length: input size along the axis.
        out_length: output size along the axis.
        scale: the requested factor; MATLAB maps coordinates with it rather than with
            ``out_length / in_length`` (they differ when ``in_length * scale`` is not an integer).
        antialiasing: widen the kernel by 1/scale when downscaling (MATLAB's default).
    """
    scale = out_length / in_length if scale is None else float(scale)
    width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    # output pixel centers mapped back to (1-based) input coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # (out, taps), 1-based
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if shrink else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    # symmetric mirroring that repeats the edge pixel: 0 -> 1, -1 -> 2, n+1 -> n (1-based)
    period = 2 * in_length
    src = (idx - 1) % period
    src = np.where(src >= in_length, period - 1 - src, src).astype(np.int64)
    mat = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_length), taps), src.ravel()), w.ravel())
    return mat


def _matrices(h: int, w: int, scale: float | None, size: tuple[int, int] | None, antialiasing: bool):
    if size is not None:
        return resize_matrix(h, int(size[0]), None, antialiasing), resize_matrix(w, int(size[1]), None, antialiasing)
    if scale is None:
        raise ValueError("give scale or size")
    return (
        resize_matrix(h, math.ceil(h * scale), scale, antialiasing),
        resize_matrix(w, math.ceil(w * scale), scale, antialiasing),
    )


def imresize(
    img: np.ndarray | torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray | torch.Tensor:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: numpy (H, W) / (H, W, C), uint8 or float; or torch (C, H, W) / (B, C, H, W) float.
            uint8 input gives uint8 output (rounded and clipped, as MATLAB does); float stays float,
            unclipped.
        scale: factor (output size ``ceil(in * scale)``); or give ``size``.
        size: output (height, width).
        antialiasing: widen the kernel when downscaling.
    """
    if isinstance(img, torch.Tensor):
        mh, mw = _matrices(img.shape[-2], img.shape[-1], scale, size, antialiasing)
        mh, mw = torch.from_numpy(mh).to(img.device, img.dtype), torch.from_numpy(mw).to(img.device, img.dtype)
        return torch.einsum("oh,...hw,pw->...op", mh, img, mw)
    arr = np.asarray(img)
    mh, mw = _matrices(arr.shape[0], arr.shape[1], scale, size, antialiasing)
    x = arr.astype(np.float64)
    out = np.einsum("oh,hw...->ow...", mh, x)
    out = np.einsum("pw,ow...->op...", mw, out)
    if arr.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype) if np.issubdtype(arr.dtype, np.floating) else out


def resize_uint8(img: np.ndarray, size: tuple[int, int], method: str = "pil") -> np.ndarray:
    """Bicubic resize of a uint8 HWC/HW image to (height, width) with Pillow or the MATLAB kernel.

    Args:
        img: uint8 image.
        size: output (height, width).
        method: ``pil`` (``Image.resize(..., BICUBIC)``, what srlab's data pipeline uses) or
            ``matlab`` (:func:`imresize`, the classic benchmark protocol).
    """
    if method == "pil":
        return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))
    if method == "matlab":
        return imresize(img, size=size)
    raise ValueError(f"resize method {method!r}: use 'pil' or 'matlab'")
