"""Benchmark folders (Set5, Set14, ...): finding their images and making their LR, one way for all.

``python -m srlab.evaluate`` and training validation on ``data.val_sets`` both read benchmarks here,
so the LR a model is validated on while it trains is, bit for bit, the LR ``evaluate`` scores it on.
The LR comes from :func:`srlab.data.degradations.degrade`, the function training data is made with.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from srlab.data.degradations import build_degradation, degrade, modcrop
from srlab.data.images import list_images, load_rgb
from srlab.errors import ConfigError, SRLabError
from srlab.data.resize import RESIZE_METHODS

# benchmark LR protocols: plain bicubic 1/scale (the published tables), the origin report's bicubic +
# Gaussian blur, or a fixed synthetic real-world set (Real-ESRGAN's degradation, seeded per image)
BENCHMARK_DEGRADATIONS = ("bicubic", "blur", "realesrgan")


@dataclass
class Benchmark:
    """One benchmark: HR files and, for paired folders, their LQ files."""

    name: str
    hr: list[Path]
    lq: dict[Path, Path] = field(default_factory=dict)


def find_benchmark(folder: str | Path, scale: int = 4, key: str = "benchmarks") -> Benchmark:
    """Read ``<set>/HR`` (+ optional ``<set>/LQ`` or ``<set>/LR``), or a folder of HR images.

    Args:
        folder: the benchmark folder.
        scale: SR factor (LQ files may be named ``<stem>x<scale>``, as BasicSR's are).
        key: the config key that named the folder, for error messages.

    Raises:
        SRLabError: the folder is missing or empty, or an HR image has no LQ file.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SRLabError(f"{key}: {folder} {'is not a folder' if folder.exists() else 'does not exist'}")
    hr_dir = folder / "HR" if (folder / "HR").is_dir() else folder
    name = folder.parent.name if folder.name == "HR" else folder.name
    hr = list_images(hr_dir, recursive=False)
    if not hr:
        raise SRLabError(f"{key}: {hr_dir} holds no images (png, jpg, webp, bmp, tif)")
    lq_dir = next((folder / d for d in ("LQ", "LR") if (folder / d).is_dir() and hr_dir != folder), None)
    if lq_dir is None:
        return Benchmark(name, hr)
    lq_files = {p.stem.lower(): p for p in list_images(lq_dir, recursive=False)}
    lq = {}
    for p in hr:  # BasicSR names LR files like baby.png or babyx4.png
        stem = p.stem.lower()
        match = next((lq_files[k] for k in (stem, f"{stem}x{scale}", f"{stem}_x{scale}") if k in lq_files), None)
        if match is None:
            raise SRLabError(f"{key}: {lq_dir} has no LQ file for {p.name}")
        lq[p] = match
    return Benchmark(name, hr, lq)


def check_lq_protocol(degradation: str, resize: str, blur_radius: float, key: str = "") -> None:
    """Raise :class:`ConfigError` naming ``<key>degradation``, ``<key>resize`` or ``<key>blur_radius``."""
    if degradation not in BENCHMARK_DEGRADATIONS:
        raise ConfigError(f"{key}degradation={degradation}: use {' or '.join(BENCHMARK_DEGRADATIONS)}")
    if resize not in RESIZE_METHODS:
        raise ConfigError(f"{key}resize={resize}: use {' or '.join(RESIZE_METHODS)}")
    if degradation == "blur" and (isinstance(blur_radius, bool) or not isinstance(blur_radius, (int, float))
                                  or blur_radius < 0):
        raise ConfigError(f"{key}blur_radius={blur_radius}: must be a number >= 0")


def make_lq(hr: np.ndarray, scale: int, degradation: str = "bicubic", resize: str = "pil",
            blur_radius: float = 1.5, seed: int = 0, name: str = "") -> np.ndarray:
    """LR of a modcropped uint8 HR image by :func:`~srlab.data.degradations.degrade`, or Real-ESRGAN's degradation.

    Args:
        hr: (H, W, 3) uint8, H and W multiples of ``scale``.
        scale: SR factor.
        degradation: ``bicubic`` (plain bicubic 1/scale), ``blur`` (bicubic, then Gaussian blur) or
            ``realesrgan`` (``conf/data/degradation/realesrgan.yaml``, the training degradation).
        resize: bicubic implementation, ``pil`` or ``matlab``.
        blur_radius: Gaussian blur radius of ``blur``.
        seed: with ``name``, fixes the ``realesrgan`` draw of this image: the same seed gives the
            same LR on any machine (computed in float64 on the CPU), whatever other images the set holds.
        name: the image's file name.
    """
    check_lq_protocol(degradation, resize, blur_radius)
    if degradation == "realesrgan":
        deg = build_degradation("realesrgan", scale)
        if min(hr.shape[:2]) < deg.min_size:
            raise SRLabError(f"{name}: {hr.shape[1]}x{hr.shape[0]} is smaller than the {deg.min_size} px "
                             "degradation=realesrgan needs")
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        return deg.apply(hr, deg.draw(rng, min(hr.shape[:2]), None, train=False))
    radius = blur_radius if degradation == "blur" else 0
    return np.asarray(degrade(Image.fromarray(hr), scale, radius, resize=resize))


def load_pair(bench: Benchmark, path: Path, scale: int, degradation: str = "bicubic", resize: str = "pil",
              blur_radius: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(hr, lq)`` uint8 RGB of one benchmark image: HR modcropped, LQ from its file or :func:`make_lq`.

    Raises:
        SRLabError: a given LQ file is not 1/scale of the HR.
    """
    hr = modcrop(np.asarray(load_rgb(path)), scale)  # gray files (Set14 bridge) become RGB, as BasicSR
    lq = (np.asarray(load_rgb(bench.lq[path])) if path in bench.lq
          else make_lq(hr, scale, degradation, resize, blur_radius, seed, path.name))
    if lq.shape[0] * scale != hr.shape[0] or lq.shape[1] * scale != hr.shape[1]:
        raise SRLabError(f"{bench.lq.get(path, path)}: LQ {lq.shape[1]}x{lq.shape[0]} is not 1/{scale} of HR")
    return hr, lq
