"""Per-sample random draws of the Real-ESRGAN degradation, made in the DataLoader workers.

A :class:`Draw` holds every random choice for one sample: three kernels (first blur, second blur,
final sinc), the resize, noise and JPEG parameters of both stages, the order of the final step, the
seed of the noise and where the training patch is cut. :meth:`Draw.to_item` turns it into plain
numbers and arrays, and :func:`collate` makes a batch of them: the arrays and per-sample factors as
tensors that go to the device, and every number again as Python lists that stay on the host. The
batch pipeline (:mod:`srlab.data.realesrgan.pipeline`) branches, sizes and seeds on those lists only,
so it never reads a device tensor back (each read would wait for the device's queue). Operations
that change the tensor size or apply to the batch as a whole (resize factors and modes, Gaussian vs
Poisson, whether to blur again, the final order) follow the batch's first sample, as Real-ESRGAN
draws them once per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch.utils.data import default_collate

from srlab.data.realesrgan.config import RESIZE_MODES, BlurSettings, RealESRGANConfig, StageSettings
from srlab.data.realesrgan.kernels import KernelSpec, draw_kernel

DIRECTIONS = ("up", "down", "keep")
# what the batch step computes with per sample (tensors on the device); every number of an item is
# also in the batch's "host" lists
ON_DEVICE = ("kernel1", "kernel2", "sinc", "sigma1", "sigma2", "poisson1", "poisson2", "gray1", "gray2",
             "jpeg1", "jpeg2")


@dataclass(frozen=True)
class StageDraw:
    """Resize, noise and JPEG of one stage."""

    resize: str           # up / down / keep
    resize_scale: float   # factor (1 for keep)
    resize_mode: str      # area / bilinear / bicubic
    gaussian: bool        # Gaussian noise, else Poisson
    sigma: float          # Gaussian sigma (0-255 scale)
    poisson_scale: float
    gray: bool
    jpeg_quality: float

    def to_json(self) -> dict:
        d = {"resize": self.resize, "resize_scale": self.resize_scale, "resize_mode": self.resize_mode}
        noise = {"type": "gaussian", "sigma": self.sigma} if self.gaussian else {"type": "poisson", "scale": self.poisson_scale}
        return {**d, "noise": {**noise, "gray": self.gray}, "jpeg_quality": self.jpeg_quality}


@dataclass(frozen=True)
class Draw:
    """Every random choice of one sample's degradation (see the module docstring)."""

    kernel1: KernelSpec
    kernel2: KernelSpec
    sinc: KernelSpec | None      # final sinc filter, None = identity
    stage1: StageDraw
    second_blur: bool
    stage2: StageDraw
    final_resize_first: bool     # [resize back + sinc] before the last JPEG
    final_mode: str
    seed: int                    # of the noise (and the training-pair pool's shuffle)
    cut: tuple[int, int, int]    # LQ-grid (y, x, size) of the patch cut from the degraded crop; size 0 = no cut

    def to_item(self, pad_to: int) -> dict:
        """Numbers and (pad_to, pad_to) float64 kernels, one sample's part of a :func:`collate_draws` batch."""
        item = {"kernel1": self.kernel1.build(pad_to), "kernel2": self.kernel2.build(pad_to),
                "sinc": self.sinc.build(pad_to) if self.sinc else _delta(pad_to), "has_sinc": self.sinc is not None,
                "second_blur": self.second_blur, "final_resize_first": self.final_resize_first,
                "final_mode": RESIZE_MODES.index(self.final_mode), "seed": self.seed,
                "cut_y": self.cut[0], "cut_x": self.cut[1], "cut_size": self.cut[2]}
        for i, s in ((1, self.stage1), (2, self.stage2)):
            item.update({f"resize{i}_scale": s.resize_scale, f"resize{i}_mode": RESIZE_MODES.index(s.resize_mode),
                         f"gaussian{i}": s.gaussian, f"sigma{i}": s.sigma, f"poisson{i}": s.poisson_scale,
                         f"gray{i}": s.gray, f"jpeg{i}": s.jpeg_quality})
        return item

    def to_json(self) -> dict:
        """What a person reads in the preview's params JSON (only the parameters in effect)."""
        return {"kernel1": self.kernel1.to_json(), "stage1": self.stage1.to_json(),
                "kernel2": self.kernel2.to_json() if self.second_blur else None, "stage2": self.stage2.to_json(),
                "final": {"order": "resize+sinc, jpeg" if self.final_resize_first else "jpeg, resize+sinc",
                          "resize_mode": self.final_mode, "sinc": self.sinc.to_json() if self.sinc else None},
                "noise_seed": self.seed}


def collate_draws(items: list[dict]) -> dict:
    """Batch of :meth:`Draw.to_item` dicts: the :data:`ON_DEVICE` entries as (B, ...) tensors (as
    ``default_collate`` makes them) and ``"host"``: ``{key: [one Python number per sample]}``."""
    batch = default_collate([{k: item[k] for k in ON_DEVICE} for item in items])
    batch["host"] = {k: [item[k] for item in items] for k, v in items[0].items() if not isinstance(v, np.ndarray)}
    return batch


def collate(samples: list[dict]) -> dict:
    """The loaders' ``collate_fn``: ``default_collate``, but the ``"degradation"`` entries through
    :func:`collate_draws`."""
    batch = default_collate([{k: v for k, v in s.items() if k != "degradation"} for s in samples])
    batch["degradation"] = collate_draws([s["degradation"] for s in samples])
    return batch


def _delta(size: int) -> np.ndarray:
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0  # convolving with a centred pulse changes nothing
    return k


def _kernel(rng: np.random.Generator, cfg: RealESRGANConfig, blur: BlurSettings) -> KernelSpec:
    return draw_kernel(rng, cfg.kernel_sizes, blur.kernel_list, blur.kernel_prob, blur.sinc_prob, blur.blur_sigma,
                       blur.betag_range, blur.betap_range, cfg.sinc_cutoff_small, cfg.sinc_cutoff_large)


def _stage(rng: np.random.Generator, cfg: RealESRGANConfig, s: StageSettings) -> StageDraw:
    direction = DIRECTIONS[rng.choice(3, p=np.asarray(s.resize_prob) / np.sum(s.resize_prob))]
    lo, hi = s.resize_range
    factor = float(rng.uniform(1, hi)) if direction == "up" else float(rng.uniform(lo, 1)) if direction == "down" else 1.0
    mode = str(cfg.resize_modes[rng.integers(len(cfg.resize_modes))])
    return StageDraw(direction, factor, mode, bool(rng.random() < s.gaussian_noise_prob),
                     float(rng.uniform(*s.noise_range)), float(rng.uniform(*s.poisson_scale_range)),
                     bool(rng.random() < s.gray_noise_prob), float(rng.uniform(*s.jpeg_range)))


def draw(cfg: RealESRGANConfig, rng: np.random.Generator, crop: int, out: int | None, scale: int,
         train: bool = True) -> Draw:
    """Draw one sample's degradation.

    Args:
        cfg: checked settings.
        rng: the sample's generator (the dataset seeds it per sample).
        crop: side of the HQ crop that gets degraded.
        out: HQ side of the patch cut from it afterwards (``None``: keep the whole image).
        scale: SR factor.
        train: cut at a random position; otherwise at the centre.
    """
    kernel1, kernel2 = _kernel(rng, cfg, cfg.blur1), _kernel(rng, cfg, cfg.blur2)
    sinc = None
    if rng.random() < cfg.final_sinc_prob:
        size = int(rng.choice(cfg.kernel_sizes))
        sinc = KernelSpec("sinc", size, omega_c=float(rng.uniform(*cfg.final_sinc_cutoff)) * math.pi)
    stage1 = _stage(rng, cfg, cfg.stage1)
    second_blur = bool(rng.random() < cfg.second_blur_prob)
    stage2 = _stage(rng, cfg, cfg.stage2)
    final_first = bool(rng.random() < cfg.final_resize_first_prob)
    final_mode = str(cfg.resize_modes[rng.integers(len(cfg.resize_modes))])
    seed = int(rng.integers(2**62))
    cut = (0, 0, 0)  # size 0: keep the whole degraded image
    if out is not None:
        room = (crop - out) // scale
        y, x = (int(rng.integers(room + 1)), int(rng.integers(room + 1))) if train else (room // 2, room // 2)
        cut = (y, x, out // scale)
    return Draw(kernel1, kernel2, sinc, stage1, second_blur, stage2, final_first, final_mode, seed, cut)
