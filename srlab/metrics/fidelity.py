"""PSNR and SSIM computed exactly as BasicSR's ``calculate_psnr`` / ``calculate_ssim``.

Published SR tables follow BasicSR's conventions, so numbers here are comparable with them:
images are quantized to uint8 first, ``crop_border`` pixels (the scale) are removed on each side,
the Y channel is ITU-R BT.601 luma on the [16, 235] scale of 255 (``rgb2ycbcr(y_only=True)``),
and SSIM uses an 11x11 Gaussian window (sigma 1.5) with 'valid' filtering, averaged over channels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import correlate1d

# BT.601 luma weights for RGB in [0, 1] giving Y in [16, 235] (BasicSR rgb2ycbcr y_only)
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
# SSIM stabilisers of Wang et al. 2004 for data range 255
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def to_uint8_hwc(img: np.ndarray | torch.Tensor) -> np.ndarray:
    """Quantize an image to uint8 HWC, as BasicSR's ``tensor2img`` does before measuring.

    Args:
        img: uint8 HWC/HW numpy array (returned as is), float numpy HWC in [0, 1], or a torch
            tensor (C, H, W) / (1, C, H, W) float in [0, 1] or uint8.
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
            t = t[0]
        if t.ndim == 3:
            t = t.permute(1, 2, 0)  # (H, W, C)
        if t.dtype != torch.uint8:
            t = (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8)
        return t.numpy()
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, 0, 1) * 255.0).round().astype(np.uint8)
    raise ValueError(f"unsupported image dtype {arr.dtype}: use uint8 or float in [0, 1]")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 (or [0, 255] float) HWC image, float64 in [16, 235]."""
    # BasicSR divides by 255 in float32, takes the dot product and multiplies back; same weights
    rgb = np.asarray(img, dtype=np.float64) / 255.0
    return rgb @ _Y_WEIGHTS + 16.0  # (H, W)


def _prepare(img, img2, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_uint8_hwc(img), to_uint8_hwc(img2)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if crop_border > 0:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and a.shape[-1] == 3:
        return rgb_to_y(a)[..., None], rgb_to_y(b)[..., None]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(img, img2, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB for data range 255; ``inf`` for identical images.

    Args:
        img: the restored image (uint8 HWC, float HWC in [0, 1], or a CHW torch tensor).
        img2: the reference image, same kind and shape.
        crop_border: pixels removed on each side before measuring (BasicSR uses the scale).
        y_channel: measure the BT.601 Y channel instead of RGB.
    """
    a, b = _prepare(img, img2, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    # same values as cv2.getGaussianKernel(11, 1.5), which BasicSR uses
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation keeping only 'valid' positions (BasicSR's filter2D then [5:-5, 5:-5])."""
    r = len(g) // 2
    out = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return out[r:-r, r:-r]


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    g = _gaussian_window()
    if min(a.shape) < len(g):
        raise ValueError(f"SSIM needs images of at least {len(g)}x{len(g)} after cropping, got {a.shape}")
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid(b * b, g) - mu2_sq
    sigma12 = _filter_valid(a * b, g) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2))
    return float(ssim_map.mean())


def ssim(img, img2, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004), mean over channels; 1.0 for identical images.

    Args:
        img: the restored image (uint8 HWC, float HWC in [0, 1], or a CHW torch tensor).
        img2: the reference image, same kind and shape.
        crop_border: pixels removed on each side before measuring.
        y_channel: measure the BT.601 Y channel instead of RGB.
    """
    a, b = _prepare(img, img2, crop_border, y_channel)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def mean_metric(values: list[float]) -> float:
    """Mean over images; one ``inf`` PSNR (a perfect image) makes the mean ``inf``, NaN if empty."""
    return float(np.mean(values)) if values else float("nan")
