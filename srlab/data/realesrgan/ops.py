"""Batch operations of the Real-ESRGAN degradation on (B, C, H, W) tensors in [0, 1], on any device.

Each follows the BasicSR function Real-ESRGAN calls (named in its docstring) and takes the
per-sample parameters as tensors; randomness comes only from the ``generator`` passed in.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from srlab.data.realesrgan.config import RESIZE_MODES, USM_RADIUS

# ITU-R BT.601 luma weights as torchvision's rgb_to_grayscale (which BasicSR's Poisson noise uses)
_GRAY = (0.2989, 0.587, 0.114)


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every image with its own kernel, reflect-padded (BasicSR ``filter2D``).

    Args:
        img: (B, C, H, W); H and W must exceed half the kernel side.
        kernel: (B, k, k) or (1, k, k) with k odd.
    """
    b, c, h, w = img.shape
    k = kernel.shape[-1]
    x = F.pad(img, (k // 2,) * 4, mode="reflect")
    kernel = kernel.to(img.dtype)
    if img.dtype == torch.float64:
        return _fft_filter(x, kernel, k)
    if kernel.shape[0] == 1:
        return F.conv2d(x.reshape(b * c, 1, *x.shape[-2:]), kernel.view(1, 1, k, k)).view(b, c, h, w)
    weight = kernel.view(b, 1, k, k).repeat_interleave(c, dim=0)  # (B*C, 1, k, k): channel c of image i
    return F.conv2d(x.reshape(1, b * c, *x.shape[-2:]), weight, groups=b * c).view(b, c, h, w)


def _fft_filter(padded: torch.Tensor, kernel: torch.Tensor, k: int) -> torch.Tensor:
    """The valid part of the correlation, through the FFT: CPUs have no fast float64 depthwise
    convolution (100x slower than float32), and float64 makes the fixed evaluation set exact."""
    hp, wp = padded.shape[-2:]
    spectrum = torch.fft.rfft2(kernel.flip(-1, -2), s=(hp, wp))  # correlation = convolution with the flipped kernel
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * spectrum.unsqueeze(1), s=(hp, wp))
    return out[..., k - 1 :, k - 1 :]  # the circular wrap-around lands in the discarded border


@lru_cache(maxsize=32)
def _blur_matrix(n: int, radius: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n, n) matrix of a 1-D Gaussian blur with reflect padding along an axis of length n > radius // 2.

    OpenCV's getGaussianKernel(radius, 0): sigma from the size, float64 taps normalised to 1.
    """
    sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8
    r = radius // 2
    offsets = np.arange(-r, r + 1)
    taps = np.exp(-(offsets**2) / (2 * sigma**2))
    taps /= taps.sum()
    src = np.abs(np.arange(n)[:, None] + offsets[None])  # reflect at 0 ...
    src = np.where(src > n - 1, 2 * (n - 1) - src, src)  # ... and at n - 1 (edge pixel not repeated)
    mat = np.zeros((n, n))
    np.add.at(mat, (np.repeat(np.arange(n), radius), src.ravel()), np.tile(taps, n))
    return torch.from_numpy(mat).to(device=device, dtype=dtype)


def _gaussian_blur(img: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable blur as two matrix products: equal to ``filter2d`` with the 2-D Gaussian, and
    about 4x faster on a CPU than a 51-tap convolution."""
    h, w = img.shape[-2:]
    return _blur_matrix(h, radius, img.device, img.dtype) @ img @ _blur_matrix(w, radius, img.device, img.dtype).T


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, threshold: float = 10, radius: int = USM_RADIUS) -> torch.Tensor:
    """Unsharp masking of the ground truth (BasicSR ``USMSharp``, radius 50 -> 51 px Gaussian).

    ``img + weight * (img - blur)``, applied only where the residual exceeds ``threshold`` grey
    levels, through a blurred (soft) mask. Images must be larger than 25 px per side.
    """
    residual = img - _gaussian_blur(img, radius)
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    soft = _gaussian_blur(mask, radius)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def resize(img: torch.Tensor, mode: int, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.interpolate`` with mode ``RESIZE_MODES[mode]`` by ``scale`` or to ``size`` (as Real-ESRGAN)."""
    return F.interpolate(img, scale_factor=scale, size=size, mode=RESIZE_MODES[mode])


def gaussian_noise(img: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor | None,
                   generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of std ``sigma`` / 255, the same on all channels where ``gray``; clamp to [0, 1].

    BasicSR ``add_gaussian_noise_pt`` (clip, no rounding). Its gray noise is one field shared by the
    whole batch; here each image gets its own (identical draws for a batch of one).

    Args:
        img: (B, C, H, W).
        sigma: (B,) on the 0-255 scale.
        gray: (B,) flags, or None when no image of the batch takes gray noise: then the gray field
            is not drawn, as BasicSR skips it (the caller knows from the host, without reading ``gray``).
        generator: source of the noise.
    """
    b, _, h, w = img.shape
    sigma = sigma.to(img.dtype).view(b, 1, 1, 1)
    if gray is not None:  # drawn first, as BasicSR does
        noise_gray = torch.randn((b, 1, h, w), generator=generator, dtype=img.dtype, device=img.device) * sigma / 255
    noise = torch.randn(img.shape, generator=generator, dtype=img.dtype, device=img.device) * sigma / 255
    if gray is not None:
        gray = gray.to(img.dtype).view(b, 1, 1, 1)
        noise = noise * (1 - gray) + noise_gray * gray
    return (img + noise).clamp(0, 1)


def _levels(q: torch.Tensor) -> torch.Tensor:
    """Per image: 2 ** ceil(log2(number of distinct 8-bit values)), shape (B, 1, 1, 1)."""
    b = q.shape[0]
    idx = (q * 255).round().long().reshape(b, -1)  # reshape: stage-2 inputs can be channels_last (conv outputs)
    present = torch.zeros(b, 256, device=q.device).scatter_(1, idx, 1.0)  # torch.unique per image, without a loop
    return present.sum(1).double().log2().ceil().exp2().to(q.dtype).view(b, 1, 1, 1)


def _shot(q: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    vals = _levels(q)
    return torch.poisson(q * vals, generator=generator) / vals - q


def poisson_noise(img: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor | None,
                  generator: torch.Generator) -> torch.Tensor:
    """Add Poisson (shot) noise times ``scale`` (B,), from the luma where ``gray``; clamp to [0, 1].

    BasicSR ``add_poisson_noise_pt``: photon counts are the image quantised to 8 bits times
    2 ** ceil(log2(distinct levels)). ``gray`` as in :func:`gaussian_noise` (None: no luma noise drawn).
    """
    b, c, h, w = img.shape
    if gray is not None:
        r, g, bl = img.unbind(1)
        luma = (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * bl).unsqueeze(1)
        noise_gray = _shot(luma.mul(255).round().clamp(0, 255) / 255, generator).expand(b, c, h, w)
    noise = _shot(img.mul(255).round().clamp(0, 255) / 255, generator)
    if gray is not None:
        gray = gray.to(img.dtype).view(b, 1, 1, 1)
        noise = noise * (1 - gray) + noise_gray * gray
    return (img + noise * scale.to(img.dtype).view(b, 1, 1, 1)).clamp(0, 1)
