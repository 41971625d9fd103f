"""Whole-image validation on ``data.val_sets``: ``evaluate``'s inference and metrics, reduced over ranks.

Each sample is upscaled by :func:`srlab.infer.upscale_array` (the function ``evaluate`` uses,
tiled when the set asks for it) and measured by :func:`srlab.metrics.measure` on uint8 images with
``crop_border = scale`` (PSNR/SSIM, and the set's perceptual ``metrics``, their networks built once on
the generator's device), so a set's logged mean is the number ``python -m srlab.evaluate`` prints for
the same weights. Under DDP every rank scores its shard; the per-image rows are gathered, put back
in file order and averaged exactly as ``evaluate`` averages them.
"""

from __future__ import annotations

import numpy as np
import torch

from srlab.data.val_sets import VAL_SET_KEYS
from srlab.infer import SRGenerator, upscale_array
from srlab.metrics import METRICS, PERCEPTUAL, PerceptualMetric, mean_metric, measure


class BenchmarkScores:
    """Per-image metric rows of one validation epoch, and which sets' bicubic rows are logged already."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.bicubic_logged: set[str] = set()
        self.perceptual: dict[tuple, PerceptualMetric] = {}  # (name, hub_dir, device) -> its network, kept

    def _perceptual(self, sample: dict, device: torch.device) -> dict[str, PerceptualMetric]:
        out = {}
        for name in sample.get("metrics") or ():
            key = (name, sample.get("hub_dir"), device)
            if key not in self.perceptual:
                self.perceptual[key] = PerceptualMetric(name, sample.get("hub_dir"), device)
            out[name] = self.perceptual[key]
        return out

    def reset(self) -> None:
        self.rows = []

    def score(self, gen: SRGenerator, sample: dict, crop_border: int) -> np.ndarray:
        """Upscale one sample's LR, record its metrics (and its bicubic row until logged); return ``sr`` uint8."""
        sr = upscale_array(gen, sample["lq"], sample["tile"], sample["tile_pad"])
        where = {"set": sample["set"], "index": sample["index"]}
        perceptual = self._perceptual(sample, next(gen.parameters(), torch.empty(0)).device)
        self.rows.append({**where, "method": "model", **measure(sr, sample["hr"], crop_border, perceptual)})
        if sample["set"] not in self.bicubic_logged:
            self.rows.append({**where, "method": "bicubic",
                              **measure(sample["bicubic"], sample["hr"], crop_border, perceptual)})
        return sr

    def summary(self, final: bool) -> dict[str, float]:
        """Means per set (all ranks' rows): ``val/<set>/psnr_y`` ... (``val/<set>/lpips`` ... where asked for),
        and ``..._bicubic`` the first time.

        Args:
            final: a real validation epoch (not Lightning's sanity check): bicubic rows are then
                marked as logged and not measured again.
        """
        rows = sorted(_gather(self.rows), key=lambda r: (r["set"], r["method"], r["index"]))
        out: dict[str, float] = {}
        for name, method in dict.fromkeys((r["set"], r["method"]) for r in rows):
            group = [r for r in rows if r["set"] == name and r["method"] == method]
            suffix = "_bicubic" if method == "bicubic" else ""
            for metric in [*METRICS, *(m for m in PERCEPTUAL if m in group[0])]:
                out[f"val/{name}/{VAL_SET_KEYS[metric]}{suffix}"] = mean_metric([r[metric] for r in group])
            if method == "bicubic" and final:
                self.bicubic_logged.add(name)
        return out


def _gather(rows: list[dict]) -> list[dict]:
    """Every rank's rows, on every rank (a no-op in one process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(rows)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, rows)
    return [r for part in parts for r in part]
