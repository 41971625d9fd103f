"""Image quality: BasicSR's PSNR/SSIM (:mod:`.fidelity`) and the perceptual distances (:mod:`.perceptual`).

``measure`` is the per-image row of ``evaluate`` and of whole-image validation on ``data.val_sets``.
"""

from __future__ import annotations

import numpy as np

from srlab.metrics.fidelity import mean_metric, psnr, rgb_to_y, ssim, to_uint8_hwc
from srlab.metrics.perceptual import PERCEPTUAL, PerceptualMetric, lower_is_better

__all__ = ["METRICS", "PERCEPTUAL", "PerceptualMetric", "lower_is_better", "mean_metric", "measure", "psnr",
           "rgb_to_y", "ssim", "to_uint8_hwc"]

# always measured, in this order; perceptual ones (PERCEPTUAL) follow when asked for
METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")


def measure(sr: np.ndarray, hr: np.ndarray, crop_border: int,
            perceptual: dict[str, PerceptualMetric] | None = None) -> dict[str, float]:
    """BasicSR PSNR/SSIM on RGB and Y of one uint8 image pair, keyed by :data:`METRICS`, and each given
    perceptual distance under its name (``lpips``, ``lpips_vgg``, ``dists``)."""
    row = {
        "psnr_rgb": psnr(sr, hr, crop_border),
        "ssim_rgb": ssim(sr, hr, crop_border),
        "psnr_y": psnr(sr, hr, crop_border, y_channel=True),
        "ssim_y": ssim(sr, hr, crop_border, y_channel=True),
    }
    for name, metric in (perceptual or {}).items():
        row[name] = metric(sr, hr, crop_border)
    return row
