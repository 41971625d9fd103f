"""Validated settings of the Real-ESRGAN degradation (``data.degradation`` with ``kind: realesrgan``).

The defaults live in one place, ``conf/data/degradation/realesrgan.yaml`` (the values of Real-ESRGAN's
``train_realesrgan_x4plus.yml``, same key names); this module only checks a complete dict and gives
typed access. Every error is one line naming the key, raised before any training work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from srlab.data.realesrgan.kernels import KERNEL_TYPES
from srlab.errors import ConfigError

RESIZE_MODES = ("area", "bilinear", "bicubic")
USM_RADIUS = 51  # BasicSR's USMSharp(radius=50), rounded up to odd
PREFIX = "data.degradation"


def _key(name: str) -> str:
    return f"{PREFIX}.{name}"


def _pair(name: str, value, lo: float | None = None, hi: float | None = None) -> tuple[float, float]:
    """A ``[min, max]`` range within [lo, hi]."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_key(name)}={value!r} must be a [min, max] pair of numbers") from None
    if a > b:
        raise ConfigError(f"{_key(name)}={[a, b]}: min > max")
    if (lo is not None and a < lo) or (hi is not None and b > hi):
        raise ConfigError(f"{_key(name)}={[a, b]} must lie within [{lo}, {hi if hi is not None else 'inf'}]")
    return a, b


def _prob(name: str, value) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_key(name)}={value!r} must be a probability in [0, 1]") from None
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{_key(name)}={p} must be a probability in [0, 1]")
    return p


def _probs(name: str, value, n: int, what: str) -> tuple[float, ...]:
    """A probability list of length ``n`` that sums to 1."""
    try:
        ps = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_key(name)}={value!r} must be a list of {n} probabilities ({what})") from None
    if len(ps) != n or any(p < 0 for p in ps):
        raise ConfigError(f"{_key(name)}={list(ps)} must be {n} non-negative probabilities ({what})")
    if abs(sum(ps) - 1.0) > 1e-6:
        raise ConfigError(f"{_key(name)}={list(ps)} sums to {sum(ps):.6g}, not 1")
    return ps


def _odd_size(name: str, value) -> tuple[int, int]:
    lo, hi = _pair(name, value, 1)
    if lo != int(lo) or hi != int(hi) or int(lo) % 2 == 0 or int(hi) % 2 == 0:
        raise ConfigError(f"{_key(name)}={[lo, hi]}: kernel sizes must be odd integers (e.g. [7, 21])")
    return int(lo), int(hi)


@dataclass(frozen=True)
class BlurSettings:
    """Kernel draw settings of one degradation stage (Real-ESRGAN's ``kernel_list``, ``sinc_prob``...)."""

    kernel_list: tuple[str, ...]
    kernel_prob: tuple[float, ...]
    sinc_prob: float
    blur_sigma: tuple[float, float]
    betag_range: tuple[float, float]
    betap_range: tuple[float, float]


@dataclass(frozen=True)
class StageSettings:
    """Resize, noise and JPEG settings of one degradation stage."""

    resize_prob: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]
    gaussian_noise_prob: float
    noise_range: tuple[float, float]  # Gaussian sigma on the 0-255 scale
    poisson_scale_range: tuple[float, float]
    gray_noise_prob: float
    jpeg_range: tuple[float, float]  # JPEG quality


@dataclass(frozen=True)
class RealESRGANConfig:
    """Every setting of the second-order degradation, checked.

    ``blur1``/``stage1`` and ``blur2``/``stage2`` hold the keys without and with Real-ESRGAN's ``2``
    suffix. See ``conf/data/degradation/realesrgan.yaml`` for what each key means.
    """

    kernel_size_range: tuple[int, int]
    sinc_cutoff_small: tuple[float, float]
    sinc_cutoff_large: tuple[float, float]
    final_sinc_cutoff: tuple[float, float]
    blur1: BlurSettings
    blur2: BlurSettings
    stage1: StageSettings
    stage2: StageSettings
    second_blur_prob: float
    final_sinc_prob: float
    final_resize_first_prob: float
    resize_modes: tuple[str, ...]
    gt_usm: bool
    queue_size: int
    crop_size: int | None
    crop_ratio: float

    @property
    def kernel_sizes(self) -> tuple[int, ...]:
        """Every odd side in ``kernel_size_range`` (Real-ESRGAN: 7, 9, ..., 21)."""
        return tuple(range(self.kernel_size_range[0], self.kernel_size_range[1] + 1, 2))

    @property
    def kernel_pad(self) -> int:
        """Side every kernel is padded to, so a batch of kernels stacks: the largest size."""
        return self.kernel_size_range[1]

    def min_crop_size(self, scale: int) -> int:
        """Smallest HQ crop (a multiple of ``scale``) the pipeline can degrade with these settings.

        Blurring pads by reflection, which needs every image side above the kernel's half-width:
        the HQ crop (first blur), its first-stage resize at the smallest factor (second blur) and
        the LQ (final sinc); and the crop above the USM blur's half-width when it is sharpened.
        The second-stage resize must also keep one pixel.
        """
        need = self.kernel_pad // 2 + 1
        usm = USM_RADIUS // 2 + 1 if self.gt_usm else 1
        side = max(need, usm, scale * need, math.ceil(scale / self.stage2.resize_range[0] - 1e-9))
        if self.second_blur_prob > 0:
            r = self.stage1.resize_range[0]
            side = max(side, math.ceil(need / r - 1e-9))
            while math.floor(side * r) < need:  # guard the float rounding of the product
                side += 1
        return -(-side // scale) * scale

    def crop_for(self, out_size: int, scale: int, key: str = "data.patch_size", train: bool = True) -> int:
        """HQ crop to degrade for an output patch of ``out_size`` (a larger crop is degraded, then cut).

        ``crop_size`` when set; else, for training, ``crop_ratio`` x ``out_size`` rounded up to a
        multiple of ``scale`` (Real-ESRGAN degrades a 400 px crop and cuts its 256 px patch at random,
        so the blur's reflect padding and the JPEG grid's origin mostly lie outside the patch); for
        validation the patch itself, so that the same images stay usable and scores comparable. Never
        below :meth:`min_crop_size`.

        Raises:
            ConfigError: ``crop_size`` is set below ``out_size`` or the minimum, or is not a multiple of scale.
        """
        least = max(out_size, self.min_crop_size(scale))
        if self.crop_size is None:
            return max(least, -(-math.ceil(out_size * self.crop_ratio - 1e-9) // scale) * scale) if train else least
        if self.crop_size % scale or self.crop_size < least:
            raise ConfigError(f"{_key('crop_size')}={self.crop_size} must be a multiple of data.scale={scale} "
                              f"and at least {least} ({key}={out_size}, kernels up to {self.kernel_pad} px, "
                              f"resize down to {self.stage1.resize_range[0]})")
        return self.crop_size


def _blur(d: dict, sfx: str) -> BlurSettings:
    kernel_list = tuple(str(k) for k in d[f"kernel_list{sfx}"])
    unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
    if unknown or not kernel_list:
        raise ConfigError(f"{_key('kernel_list' + sfx)}: unknown kernel type {unknown[0] if unknown else 'none'!r}; "
                          f"known: {', '.join(KERNEL_TYPES)}")
    betag, betap = _pair(f"betag_range{sfx}", d[f"betag_range{sfx}"], 0), _pair(f"betap_range{sfx}", d[f"betap_range{sfx}"], 0)
    for name, (lo, hi) in ((f"betag_range{sfx}", betag), (f"betap_range{sfx}", betap)):
        if not (lo > 0 and lo <= 1 <= hi):  # beta is drawn below and above 1
            raise ConfigError(f"{_key(name)}={[lo, hi]} must satisfy 0 < min <= 1 <= max")
    sigma = _pair(f"blur_sigma{sfx}", d[f"blur_sigma{sfx}"], 0)
    if sigma[0] <= 0:
        raise ConfigError(f"{_key('blur_sigma' + sfx)}={list(sigma)}: sigmas must be > 0")
    return BlurSettings(kernel_list, _probs(f"kernel_prob{sfx}", d[f"kernel_prob{sfx}"], len(kernel_list),
                                            f"one per kernel_list{sfx} entry"),
                        _prob(f"sinc_prob{sfx}", d[f"sinc_prob{sfx}"]), sigma, betag, betap)


def _stage(d: dict, sfx: str) -> StageSettings:
    resize = _pair(f"resize_range{sfx}", d[f"resize_range{sfx}"], 0)
    if resize[0] <= 0:
        raise ConfigError(f"{_key('resize_range' + sfx)}={list(resize)}: factors must be > 0")
    if not resize[0] <= 1 <= resize[1]:  # 'down' draws from [min, 1], 'up' from [1, max]
        raise ConfigError(f"{_key('resize_range' + sfx)}={list(resize)} must satisfy min <= 1 <= max")
    return StageSettings(
        _probs(f"resize_prob{sfx}", d[f"resize_prob{sfx}"], 3, "up, down, keep"), resize,
        _prob(f"gaussian_noise_prob{sfx}", d[f"gaussian_noise_prob{sfx}"]),
        _pair(f"noise_range{sfx}", d[f"noise_range{sfx}"], 0),
        _pair(f"poisson_scale_range{sfx}", d[f"poisson_scale_range{sfx}"], 0),
        _prob(f"gray_noise_prob{sfx}", d[f"gray_noise_prob{sfx}"]),
        _pair(f"jpeg_range{sfx}", d[f"jpeg_range{sfx}"], 1, 100))


def parse_config(d: dict) -> RealESRGANConfig:
    """Check a complete ``data.degradation`` dict of kind ``realesrgan``.

    Raises:
        ConfigError: a missing or unknown key, a probability list that does not sum to 1, a range
            with min > max, an unknown kernel type, a JPEG quality outside 1..100, an even kernel size...
    """
    known = {f.name for f in fields(RealESRGANConfig)} - {"blur1", "blur2", "stage1", "stage2"}
    known |= {f"{f.name}{s}" for cls in (BlurSettings, StageSettings) for f in fields(cls) for s in ("", "2")}
    known.add("kind")
    unknown, missing = sorted(set(d) - known), sorted(known - set(d))
    if "queue_batches" in d:  # srlab's older key, counted in batches
        raise ConfigError(f"{_key('queue_batches')} is now {_key('queue_size')}, counted in samples "
                          f"(Real-ESRGAN: 180; queue_batches={d['queue_batches']} x data.batch_size before)")
    if unknown:
        raise ConfigError(f"{_key(unknown[0])}: unknown key for kind realesrgan")
    if missing:
        raise ConfigError(f"{_key(missing[0])} is missing (see conf/data/degradation/realesrgan.yaml)")
    modes = tuple(str(m) for m in d["resize_modes"])
    if not modes or any(m not in RESIZE_MODES for m in modes):
        raise ConfigError(f"{_key('resize_modes')}={list(modes)}: use some of {', '.join(RESIZE_MODES)}")
    queue = d["queue_size"]
    if isinstance(queue, bool) or not isinstance(queue, int) or queue < 0:
        raise ConfigError(f"{_key('queue_size')}={queue!r} must be an integer >= 0 (samples; 0 = no training-pair pool)")
    crop = d["crop_size"]
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise ConfigError(f"{_key('crop_size')}={crop!r} must be a positive integer or null")
    ratio = d["crop_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 1 <= ratio < math.inf:
        raise ConfigError(f"{_key('crop_ratio')}={ratio!r} must be a number >= 1 (1 = degrade the patch itself)")
    cutoffs = {k: _pair(k, d[k], 0, 1) for k in ("sinc_cutoff_small", "sinc_cutoff_large", "final_sinc_cutoff")}
    return RealESRGANConfig(
        kernel_size_range=_odd_size("kernel_size_range", d["kernel_size_range"]), **cutoffs,
        blur1=_blur(d, ""), blur2=_blur(d, "2"), stage1=_stage(d, ""), stage2=_stage(d, "2"),
        second_blur_prob=_prob("second_blur_prob", d["second_blur_prob"]),
        final_sinc_prob=_prob("final_sinc_prob", d["final_sinc_prob"]),
        final_resize_first_prob=_prob("final_resize_first_prob", d["final_resize_first_prob"]),
        resize_modes=modes, gt_usm=bool(d["gt_usm"]), queue_size=queue, crop_size=crop,
        crop_ratio=float(ratio))
