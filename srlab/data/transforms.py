"""Paired crops, augmentation and tensor conversion that keep ``lq`` and ``gt`` pixel-aligned.

All randomness comes from a ``numpy.random.Generator`` the caller passes in, so a sample is
reproducible from its seed whatever the number of DataLoader workers.

Augmentation config (``data.augment``)::

    hflip: 0.5    # probability of a horizontal flip
    vflip: 0.5    # probability of a vertical flip
    rot90: 0.5    # probability of a 90-degree turn (with both flips: all 8 square symmetries)
    affine: 0.0   # probability of the report's Keras-style warp; HQ-only paths (see below)
    rotate: 90    # +- degrees (Keras rotation_range)
    shift: 0.2    # +- fraction of width/height (Keras width/height_shift_range)
    zoom: 0.2     # scale in [1 - zoom, 1 + zoom], x and y drawn separately (Keras zoom_range)
    shear: 0.2    # +- degrees; Keras reads shear_range in degrees, so the report's 0.2 is a tiny shear

Flips and 90-degree turns are exact pixel permutations and apply to HQ and LQ alike. The affine warp
(rotation, shift, zoom and shear in ONE resampling, replicate border = Keras ``fill_mode='nearest'``)
resamples pixels, so it is applied to HQ before degradation only: the on-the-fly HQ-folder dataset and
``srlab.prepare --augment-copies``. Paired folders get flips and 90-degree turns only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch

from srlab.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEFAULT_AUGMENT = {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5, "affine": 0.0,
                   "rotate": 90.0, "shift": 0.2, "zoom": 0.2, "shear": 0.2}
# The report's ImageDataGenerator: every copy gets the full warp, half of them mirrored.
REPORT_AUGMENT = {"hflip": 0.5, "vflip": 0.0, "rot90": 0.0, "affine": 1.0,
                  "rotate": 90.0, "shift": 0.2, "zoom": 0.2, "shear": 0.2}
_PROBS = ("hflip", "vflip", "rot90", "affine")


def augment_config(cfg: dict | None) -> dict:
    """Fill defaults into an augmentation dict and validate it.

    Args:
        cfg: user values (``data.augment``); ``None`` or ``{}`` gives the defaults.

    Raises:
        ConfigError: unknown key, or a probability outside [0, 1], or a negative range.
    """
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(DEFAULT_AUGMENT)
    if unknown:
        raise ConfigError(f"data.augment has unknown keys {sorted(unknown)}; known: {sorted(DEFAULT_AUGMENT)}")
    out = {**DEFAULT_AUGMENT, **{k: float(v) for k, v in cfg.items()}}
    for key, value in out.items():
        if key in _PROBS and not 0.0 <= value <= 1.0:
            raise ConfigError(f"data.augment.{key} is a probability in [0, 1], got {value}")
        if value < 0:
            raise ConfigError(f"data.augment.{key} must be >= 0, got {value}")
    if out["zoom"] >= 1:
        raise ConfigError(f"data.augment.zoom must be < 1 (scale range 1 +- zoom), got {out['zoom']}")
    return out


@dataclass(frozen=True)
class AugmentParams:
    """One drawn augmentation: flips, number of 90-degree turns, optional affine parameters."""

    hflip: bool = False
    vflip: bool = False
    rot90: int = 0
    affine: tuple[float, float, float, float, float, float] | None = None  # rotate, tx, ty, zx, zy, shear


def draw_augment(cfg: dict, rng: np.random.Generator, allow_affine: bool = True) -> AugmentParams:
    """Draw one augmentation from a validated config (:func:`augment_config`).

    Args:
        cfg: validated augmentation dict.
        rng: source of randomness.
        allow_affine: ``False`` for paired data, where only exact permutations keep alignment.
    """
    hflip = bool(rng.random() < cfg["hflip"])
    vflip = bool(rng.random() < cfg["vflip"])
    rot90 = int(rng.integers(1, 4)) if rng.random() < cfg["rot90"] else 0
    affine = None
    if allow_affine and rng.random() < cfg["affine"]:
        r, s, z, sh = cfg["rotate"], cfg["shift"], cfg["zoom"], cfg["shear"]
        affine = tuple(float(v) for v in (
            rng.uniform(-r, r), rng.uniform(-s, s), rng.uniform(-s, s),
            rng.uniform(1 - z, 1 + z), rng.uniform(1 - z, 1 + z), rng.uniform(-sh, sh)))
    return AugmentParams(hflip, vflip, rot90, affine)


def apply_flips(img: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Apply the exact part (flips, 90-degree turns) to an (H, W, C) array; same call for HQ and LQ."""
    if params.hflip:
        img = img[:, ::-1]
    if params.vflip:
        img = img[::-1]
    if params.rot90:
        img = np.rot90(img, params.rot90)
    return np.ascontiguousarray(img)


def import_affine() -> None:
    """Import albumentations (the warp's library) now, in the main process, for a dataset that warps.

    Imported first in a forked DataLoader worker, it runs W&B's import hook there, which raises
    wandb's ForkedError and ends the run (``logger=wandb`` with ``data.augment.affine`` > 0).
    """
    import albumentations  # noqa: F401


def apply_affine(img: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Apply the affine part with albumentations (bicubic, replicate border); identity if none drawn."""
    if params.affine is None:
        return img
    import albumentations as A  # heavy import, only needed when a warp is drawn (see import_affine)

    rotate, tx, ty, zx, zy, shear = params.affine
    warp = A.Affine(scale={"x": (zx, zx), "y": (zy, zy)}, translate_percent={"x": (tx, tx), "y": (ty, ty)},
                    rotate=(rotate, rotate), shear={"x": (shear, shear), "y": (0.0, 0.0)},
                    interpolation=cv2.INTER_CUBIC, border_mode=cv2.BORDER_REPLICATE, p=1.0)
    return warp(image=img)["image"]


def augment_hq(img: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Augment an HQ (H, W, C) uint8 array before degradation: warp first, then the exact flips."""
    return apply_flips(apply_affine(img, params), params)


def random_crop_hq(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random ``size`` x ``size`` crop of an (H, W, C) array at least that large."""
    h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[y : y + size, x : x + size]


def paired_random_crop(
    gt: np.ndarray, lq: np.ndarray, patch_size: int, scale: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``patch_size`` from ``gt`` and ``patch_size // scale`` from ``lq`` at the aligned position.

    The position is drawn on the LQ grid, so the HQ offset is a multiple of ``scale``.

    Args:
        gt: (H, W, C) with H = h * scale, W = w * scale.
        lq: (h, w, C).
        patch_size: HQ patch side, a multiple of ``scale``.
        scale: SR factor.
        rng: source of randomness.
    """
    p = patch_size // scale
    h, w = lq.shape[:2]
    y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
    return gt[y * scale : (y + p) * scale, x * scale : (x + p) * scale], lq[y : y + p, x : x + p]


def paired_center_crop(gt: np.ndarray, lq: np.ndarray, patch_size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned center crop: ``patch_size`` of ``gt``, ``patch_size // scale`` of ``lq`` (see paired_random_crop)."""
    p = patch_size // scale
    h, w = lq.shape[:2]
    y, x = (h - p) // 2, (w - p) // 2
    return gt[y * scale : (y + p) * scale, x * scale : (x + p) * scale], lq[y : y + p, x : x + p]


def to_uint8_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 array -> (3, H, W) uint8 tensor, what the training DataLoader sends."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 array -> (3, H, W) float32 tensor in [0, 1]."""
    return to_uint8_tensor(img).float().div_(255.0)


def images_to_float(batch: dict, normalized: bool, keys: tuple[str, ...] = ("lq", "gt")) -> dict:
    """The batch's uint8 images as float32 in [0, 1] (ImageNet-normalized when ``normalized``), on their device.

    Loaders send uint8 (a quarter of float32's bytes through worker queues, collate, pinning and
    the host-to-device copy); the conversion is one fused elementwise pass where the batch lands.

    Args:
        batch: ``{key: (B, 3, H, W) tensor, ...}``; other keys and non-uint8 images pass through.
        normalized: apply :func:`normalize` after scaling.
        keys: the image keys to convert.
    """
    out = dict(batch)
    for key in keys:
        x = out.get(key)
        if torch.is_tensor(x) and x.dtype == torch.uint8:
            x = x.float().div_(255.0)
            out[key] = normalize(x) if normalized else x
    return out


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _stats_on(x.dim(), x.device, x.dtype)


@lru_cache(maxsize=16)
def _stats_on(dim: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Made once per device: ``torch.tensor(..., device=cuda)`` is a blocking copy that waits for
    the GPU's queue, and (de)normalizing runs in every training step."""
    shape = (3, 1, 1) if dim == 3 else (1, 3, 1, 1)
    with torch.inference_mode(False):  # first made in validation, they must still serve autograd in training
        mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=device).view(shape)
        std = torch.tensor(IMAGENET_STD, dtype=dtype, device=device).view(shape)
    return mean, std


def normalize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB (3, H, W) or (B, 3, H, W) -> ImageNet-normalized (x - mean) / std."""
    mean, std = _stats(x)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize`: ImageNet-normalized (3, H, W) or (B, 3, H, W) -> [0, 1] scale (not clamped)."""
    mean, std = _stats(x)
    return x * std + mean
