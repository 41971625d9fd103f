"""Which file format ``srlab.upscale`` writes an output in (``--ext``, ``--quality``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srlab.errors import SRLabError

EXTS = ("auto", "png", "jpg", "webp")
# formats kept by --ext auto as they are; anything else becomes PNG
_KEPT = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def output_ext(src: Path, img: np.ndarray, ext: str) -> str:
    """The output's extension (with the dot) for input ``src`` read as ``img`` (H, W, C).

    ``auto`` keeps the input's format, except that an image with alpha or 16 bits becomes PNG (the
    one format every reader takes both in). An explicit ``jpg`` for an image with alpha is refused:
    JPEG cannot store it, and flattening it onto a colour would be a guess.

    Args:
        src: the input file.
        img: the input as ``read_image`` returns it.
        ext: ``auto``, ``png``, ``jpg`` or ``webp``.

    Raises:
        SRLabError: ``jpg`` for an image with alpha.
    """
    alpha = img.shape[2] in (2, 4)
    if ext == "auto":
        own = src.suffix.lower()
        return ".png" if alpha or img.dtype == np.uint16 or own not in _KEPT else own
    if ext == "jpg" and alpha:
        raise SRLabError("has an alpha channel, which JPEG cannot store; use --ext png, webp or auto")
    return f".{ext}"
