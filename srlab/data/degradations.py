"""How LQ images are made from HQ ones: the kinds of ``data.degradation``, used by training and evaluation.

- ``bicubic``: the report's degradation (bicubic 1/scale, then Gaussian blur radius 1.5) or plain
  bicubic (radius 0), in the loader workers. Pillow is the default on purpose: the origin report
  made its LQ images with exactly
  ``hq.resize((w // s, h // s), Image.BICUBIC).filter(ImageFilter.GaussianBlur(radius=1.5))``,
  and any other resize (OpenCV, torch) differs from it by a few grey levels. ``resize="matlab"``
  swaps in MATLAB's ``imresize`` bicubic (:mod:`srlab.data.resize`), the one published benchmark
  tables made their LR with; the blur stays Pillow's.
- ``realesrgan``: Real-ESRGAN's second-order degradation (:mod:`srlab.data.realesrgan`).
- ``none``: the LQ images are given (``data=paired``).

Presets are the files of ``conf/data/degradation/`` (``report``, ``bicubic``, ``realesrgan``, ``none``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image, ImageFilter

from srlab.config import CONFIG_DIR
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


# ---------------------------------------------------------------- the data.degradation kinds
KINDS = ("bicubic", "realesrgan", "none")
PRESETS_DIR = Path(CONFIG_DIR) / "data" / "degradation"


def preset(name: str) -> dict:
    """The settings of ``conf/data/degradation/<name>.yaml`` (report, bicubic, realesrgan, none).

    Raises:
        ConfigError: no such preset.
    """
    path = PRESETS_DIR / f"{name}.yaml"
    names = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    if not path.is_file():
        raise ConfigError(f"data.degradation={name!r}: no such preset; use one of {', '.join(names)}")
    return OmegaConf.to_container(OmegaConf.load(path)) or {}


class BicubicDegradation:
    """The ``bicubic`` kind: bicubic 1/scale, optionally blurred (:func:`degrade`), in the worker.

    Args:
        scale: SR factor.
        blur_radius: Gaussian blur radius, 0 for plain bicubic.
        order: ``resize_then_blur`` (the report) or ``blur_then_resize``.
        resize: bicubic implementation, ``pil`` (the report) or ``matlab`` (published tables).
    """

    kind = "bicubic"
    on_device = False

    def __init__(self, scale: int, blur_radius: float = 1.5, order: str = "resize_then_blur", resize: str = "pil") -> None:
        check_degradation(scale, blur_radius, order, resize)
        self.scale, self.blur_radius, self.order, self.resize = scale, blur_radius, order, resize

    @property
    def min_size(self) -> int:
        return self.scale

    def crop_for(self, out_size: int, key: str = "data.patch_size", train: bool = True) -> int:
        """The patch itself: nothing is cut after this degradation."""
        return out_size

    def sample(self, gt: np.ndarray, rng: np.random.Generator, out: int | None, train: bool) -> dict:
        """``{"lq": ...}`` for an HQ crop ``gt`` (H, W, 3) uint8."""
        lq = degrade(Image.fromarray(np.ascontiguousarray(gt)), self.scale, self.blur_radius, self.order, self.resize)
        return {"lq": np.asarray(lq)}

    def batch_degradation(self, normalized: bool = False) -> None:
        return None  # nothing left to do on the device


def settings_of(value: str | Mapping | None, source: str = "samples") -> dict:
    """The settings a ``data.degradation`` value means: a preset name read, ``None`` the source's default.

    ``None`` is srlab's older spelling: the given LQ images for ``paired``, the report's degradation
    for every other source.
    """
    if value is None:
        value = "none" if source == "paired" else "report"
    return preset(value) if isinstance(value, str) else dict(value)


def build_degradation(value: str | Mapping | None, scale: int):  # noqa: ANN201 - one of the kinds' classes
    """The degradation object of a ``data.degradation`` value.

    Args:
        value: a preset name (``data.degradation=realesrgan``), a dict with ``kind`` (what the
            ``data/degradation`` config group gives; a dict without ``kind`` is the ``bicubic`` kind,
            srlab's older spelling ``{blur_radius, order}``), or None (the report's degradation).
        scale: SR factor.

    Returns:
        :class:`BicubicDegradation`, :class:`srlab.data.realesrgan.RealESRGANDegradation`, or None for
        kind ``none`` (LQ images are given).

    Raises:
        ConfigError: unknown preset or kind, or a bad setting (named).
    """
    cfg = settings_of(value)
    kind = cfg.get("kind", "bicubic")
    if kind == "none":
        return None
    if kind == "bicubic":
        unknown = sorted(set(cfg) - {"kind", "blur_radius", "order", "resize"})
        if unknown:
            raise ConfigError(f"data.degradation.{unknown[0]}: unknown key for kind bicubic (blur_radius, order, resize)")
        return BicubicDegradation(scale, cfg.get("blur_radius", 1.5), cfg.get("order", "resize_then_blur"),
                                  cfg.get("resize", "pil"))
    if kind == "realesrgan":
        from srlab.data.realesrgan import RealESRGANDegradation  # numpy/scipy kernels: only when asked for

        return RealESRGANDegradation(cfg, scale)
    raise ConfigError(f"data.degradation.kind={kind!r}: use one of {', '.join(KINDS)}")
