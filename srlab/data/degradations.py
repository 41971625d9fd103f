"""The report's degradation (bicubic 1/scale, then Gaussian blur radius 1.5) and plain bicubic.

Pillow is the default on purpose: the origin report made its LQ images with exactly
``hq.resize((w // s, h // s), Image.BICUBIC).filter(ImageFilter.GaussianBlur(radius=1.5))``,
and any other resize (OpenCV, torch) differs from it by a few grey levels. ``resize="matlab"``
swaps in MATLAB's ``imresize`` bicubic (:mod:`srlab.data.resize`), the one published benchmark
tables made their LR with; the blur stays Pillow's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from srlab.data.resize import RESIZE_METHODS, resize_uint8
from srlab.errors import ConfigError

ORDERS = ("resize_then_blur", "blur_then_resize")


def check_scale(scale: int, key: str = "data.scale") -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``scale`` is a positive integer."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"{key} must be a positive integer, got {scale!r}")


def check_patch_sizes(scale: int, patch_size: int, val_patch_size: int | None = None) -> None:
    """The one rule for patches: HQ patch sides are positive multiples of ``data.scale`` (LQ = HQ / scale)."""
    check_scale(scale)
    for key, size in (("patch_size", patch_size), ("val_patch_size", val_patch_size)):
        if (size is not None or key == "patch_size") and (isinstance(size, bool) or not isinstance(size, int)
                                                           or size < scale or size % scale):
            raise ConfigError(f"data.{key}={size} must be a positive multiple of data.scale={scale} (e.g. {scale * 32})")


def check_degradation(scale: int, blur_radius: float, order: str, resize: str = "pil") -> None:
    """Raise :class:`ConfigError` naming the ``data.degradation`` key that is out of range."""
    check_scale(scale)
    if blur_radius is None or blur_radius < 0:
        raise ConfigError(f"data.degradation.blur_radius must be >= 0 (0 disables the blur), got {blur_radius!r}")
    if order not in ORDERS:
        raise ConfigError(f"data.degradation.order must be one of {', '.join(ORDERS)}, got {order!r}")
    if resize not in RESIZE_METHODS:
        raise ConfigError(f"data.degradation.resize must be one of {', '.join(RESIZE_METHODS)}, got {resize!r}")


def modcrop(img: Image.Image | np.ndarray, scale: int) -> Image.Image | np.ndarray:
    """Crop the right and bottom edges so width and height are multiples of ``scale``.

    The top-left corner stays put, so HQ pixel ``(y, x)`` still lies over LQ pixel ``(y // s, x // s)``.

    Args:
        img: PIL image, or array of shape (H, W) / (H, W, C).
        scale: the SR factor.
    """
    if isinstance(img, np.ndarray):
        h, w = img.shape[:2]
        return img[: h - h % scale, : w - w % scale]
    w, h = img.size
    if w % scale == 0 and h % scale == 0:
        return img
    return img.crop((0, 0, w - w % scale, h - h % scale))


def degrade(
    hq: Image.Image, scale: int = 4, blur_radius: float = 1.5, order: str = "resize_then_blur", resize: str = "pil"
) -> Image.Image:
    """Make the LQ image of ``modcrop(hq, scale)`` the way the origin report did.

    Args:
        hq: RGB PIL image; it is modcropped first, so the result is exactly ``1/scale`` of
            ``modcrop(hq, scale)`` in each dimension.
        scale: downscaling factor.
        blur_radius: ``ImageFilter.GaussianBlur`` radius; 0 disables the blur (plain bicubic).
        order: ``"resize_then_blur"`` (the report) or ``"blur_then_resize"``.
        resize: bicubic implementation, ``"pil"`` (the report) or ``"matlab"`` (published tables).

    Returns:
        The LQ image, size ``(w // scale, h // scale)``.

    Raises:
        ConfigError: invalid scale, radius, order or resize; or the image is smaller than ``scale``.
    """
    check_degradation(scale, blur_radius, order, resize)
    hq = modcrop(hq, scale)
    w, h = hq.size
    if w == 0 or h == 0:
        raise ConfigError(f"image of {hq.size} is smaller than data.scale={scale}")
    blur = ImageFilter.GaussianBlur(radius=blur_radius) if blur_radius > 0 else None
    if order == "blur_then_resize" and blur is not None:
        hq = hq.filter(blur)
    lq = Image.fromarray(resize_uint8(np.asarray(hq), (h // scale, w // scale), resize))
    if order == "resize_then_blur" and blur is not None:
        lq = lq.filter(blur)
    return lq


def bicubic(hq: Image.Image, scale: int = 4) -> Image.Image:
    """Plain Pillow bicubic downscaling of ``modcrop(hq, scale)`` (no blur), as used by evaluation.

    Args:
        hq: RGB PIL image.
        scale: downscaling factor.
    """
    return degrade(hq, scale=scale, blur_radius=0)


def make_pair(
    hq: Image.Image, scale: int = 4, blur_radius: float = 1.5, order: str = "resize_then_blur", resize: str = "pil"
) -> tuple[Image.Image, Image.Image]:
    """Return ``(modcrop(hq), degrade(hq))``: an exactly aligned HQ/LQ pair.

    Args:
        hq: RGB PIL image.
        scale: downscaling factor.
        blur_radius: Gaussian blur radius, 0 for none.
        order: see :func:`degrade`.
        resize: ``"pil"`` or ``"matlab"`` bicubic, see :func:`degrade`.
    """
    return modcrop(hq, scale), degrade(hq, scale, blur_radius, order, resize)
