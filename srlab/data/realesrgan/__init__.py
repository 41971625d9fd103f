"""Real-ESRGAN's second-order degradation (Wang et al., ICCV-W 2021), split as Real-ESRGAN splits it.

- :mod:`.kernels`: blur kernel formulas and their random draw (numpy);
- :mod:`.config`: the checked settings (``data.degradation``, kind ``realesrgan``);
- :mod:`.params`: every random choice for one sample, drawn in the DataLoader workers, and the
  collate that splits a batch of them into device tensors and host-side numbers;
- :mod:`.ops`, :mod:`.jpeg`: batch operations on tensors (filter, resize, noise, JPEG, USM);
- :mod:`.pipeline`: the whole degradation of a batch on its device, the patch cut and the
  training-pair pool.

:class:`RealESRGANDegradation` is what datasets, ``srlab.degrade`` and ``srlab.evaluate`` use.
"""

from __future__ import annotations

import numpy as np
import torch

from srlab.data.realesrgan.config import RealESRGANConfig, parse_config
from srlab.data.realesrgan.params import Draw, collate_draws, draw
from srlab.data.realesrgan.params import collate as collate_batch
from srlab.data.realesrgan.pipeline import BatchDegradation, degrade


class RealESRGANDegradation:
    """The ``realesrgan`` kind of ``data.degradation``: per-sample draws on the CPU, the rest per batch.

    Args:
        cfg: the complete ``data.degradation`` dict (see ``conf/data/degradation/realesrgan.yaml``).
        scale: SR factor.
    """

    kind = "realesrgan"
    on_device = True
    collate = staticmethod(collate_batch)  # the loaders' collate_fn: the batch step's numbers stay on the host

    def __init__(self, cfg: dict, scale: int) -> None:
        self.cfg: RealESRGANConfig = parse_config(cfg)
        self.scale = scale

    @property
    def min_size(self) -> int:
        """Smallest image side (HQ pixels) that can be degraded whole."""
        return self.cfg.min_crop_size(self.scale)

    def crop_for(self, out_size: int, key: str = "data.patch_size", train: bool = True) -> int:
        """HQ crop to degrade for an ``out_size`` patch (see :meth:`RealESRGANConfig.crop_for`)."""
        return self.cfg.crop_for(out_size, self.scale, key, train)

    def draw(self, rng: np.random.Generator, crop: int, out: int | None, train: bool) -> Draw:
        """One sample's random choices (see :func:`srlab.data.realesrgan.params.draw`)."""
        return draw(self.cfg, rng, crop, out, self.scale, train)

    def sample(self, gt: np.ndarray, rng: np.random.Generator, out: int | None, train: bool) -> dict:
        """What a dataset adds to an HQ crop ``gt`` (H, W, 3): the drawn parameters, LQ comes later."""
        return {"degradation": self.draw(rng, gt.shape[0], out, train).to_item(self.cfg.kernel_pad)}

    def batch_degradation(self, normalized: bool = False) -> BatchDegradation:
        """The on-device half, for the LightningModule's ``on_after_batch_transfer``."""
        return BatchDegradation(self.scale, self.cfg.gt_usm, self.cfg.queue_size, normalized)

    def apply(self, hq: np.ndarray, d: Draw, dtype: torch.dtype = torch.float64) -> np.ndarray:
        """Degrade one whole uint8 (H, W, 3) image with draw ``d`` on the CPU (evaluation set, preview).

        float64 by default, so that the result does not depend on the CPU's vector instructions.
        """
        p = collate_draws([d.to_item(self.cfg.kernel_pad)])
        gt = torch.from_numpy(np.ascontiguousarray(hq.transpose(2, 0, 1)))[None].to(dtype) / 255
        lq = degrade(gt, p, self.scale, torch.Generator().manual_seed(d.seed))[0]
        return (lq * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


__all__ = ["RealESRGANDegradation", "RealESRGANConfig", "BatchDegradation", "degrade", "draw"]
