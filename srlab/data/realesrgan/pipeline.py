"""Real-ESRGAN's second-order degradation of a whole batch, on the batch's device.

:func:`degrade` is the pure computation (parameters in, LQ out) that follows Real-ESRGAN's
``RealESRNetModel.feed_data`` step by step; :class:`BatchDegradation` wraps it for training and
validation (USM-sharpened targets, the patch cut, the training-pair pool, normalisation). The
LightningModule calls it from ``on_after_batch_transfer``, so a GPU run degrades on the GPU and a CPU
run on the CPU with the same code.
"""

from __future__ import annotations

import torch

from srlab.data.realesrgan import ops
from srlab.data.realesrgan.jpeg import jpeg
from srlab.data.transforms import normalize


def _stage_noise(x: torch.Tensor, p: dict, i: int, generator: torch.Generator) -> torch.Tensor:
    if bool(p[f"gaussian{i}"][0]):  # Gaussian or Poisson for the whole batch
        return ops.gaussian_noise(x, p[f"sigma{i}"], p[f"gray{i}"], generator)
    return ops.poisson_noise(x, p[f"poisson{i}"], p[f"gray{i}"], generator)


def _resize_back_and_sinc(x: torch.Tensor, p: dict, size: tuple[int, int]) -> torch.Tensor:
    x = ops.resize(x, int(p["final_mode"][0]), size=size)
    return ops.filter2d(x, p["sinc"]) if bool(p["has_sinc"].any()) else x  # identity kernels otherwise


@torch.no_grad()
def degrade(gt: torch.Tensor, p: dict, scale: int, generator: torch.Generator) -> torch.Tensor:
    """Second-order degradation of ``gt`` with the drawn parameters ``p``.

    Args:
        gt: (B, 3, H, W) in [0, 1], H and W multiples of ``scale``.
        p: collated :meth:`Draw.to_item` dicts (tensors with a leading batch dimension, any device).
        scale: SR factor.
        generator: source of the noise, on ``gt``'s device.

    Returns:
        (B, 3, H / scale, W / scale) LQ, quantised to 8-bit levels, in [0, 1].
    """
    h, w = gt.shape[-2:]
    # first stage: blur, resize, noise, JPEG
    x = ops.filter2d(gt, p["kernel1"])
    s1 = float(p["resize1_scale"][0])
    if s1 != 1.0:  # Real-ESRGAN's 'keep' interpolates by 1, which changes nothing
        x = ops.resize(x, int(p["resize1_mode"][0]), scale=s1)
    x = _stage_noise(x, p, 1, generator)
    x = jpeg(x.clamp(0, 1), p["jpeg1"])
    # second stage: the target size is relative to the LQ size, not to the first stage's output
    if bool(p["second_blur"][0]):
        x = ops.filter2d(x, p["kernel2"])
    s2 = float(p["resize2_scale"][0])
    x = ops.resize(x, int(p["resize2_mode"][0]), size=(int(h / scale * s2), int(w / scale * s2)))
    x = _stage_noise(x, p, 2, generator)
    # final: [resize back + sinc] and JPEG in random order (other orders make twisted lines, per Real-ESRGAN)
    lq_size = (h // scale, w // scale)
    if bool(p["final_resize_first"][0]):
        x = jpeg(_resize_back_and_sinc(x, p, lq_size).clamp(0, 1), p["jpeg2"])
    else:
        x = _resize_back_and_sinc(jpeg(x.clamp(0, 1), p["jpeg2"]), p, lq_size)
    return (x * 255).round().clamp(0, 255) / 255


def cut(gt: torch.Tensor, lq: torch.Tensor, p: dict, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each sample's patch at its drawn LQ-grid position (``cut_size`` 0: keep everything)."""
    size = int(p["cut_size"][0])
    if size == 0 or size == lq.shape[-1] == lq.shape[-2]:
        return gt, lq
    ys, xs = p["cut_y"].tolist(), p["cut_x"].tolist()
    lq = torch.stack([lq[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(zip(ys, xs))])
    s = size * scale
    gt = torch.stack([gt[i, :, y * scale : y * scale + s, x * scale : x * scale + s] for i, (y, x) in enumerate(zip(ys, xs))])
    return gt, lq


class TrainingPairPool:
    """Real-ESRGAN's training-pair pool: mixes degradations across batches.

    A batch shares its resize factors and noise type; the pool holds ``batches`` batches of
    (lq, gt) pairs and, once full, swaps each incoming batch for a random draw from it. While it
    fills, batches pass through unchanged. Its content is not saved in checkpoints (it refills).

    Args:
        batches: capacity in batches (Real-ESRGAN: 180 samples = 15 batches of 12).
    """

    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.filled = 0

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b = lq.shape[0]
        if self.lq is None or self.lq.shape[1:] != lq.shape[1:] or self.lq.device != lq.device:
            self.lq = lq.new_empty((self.batches * b, *lq.shape[1:]))
            self.gt = gt.new_empty((self.batches * b, *gt.shape[1:]))
            self.filled = 0
        capacity = self.lq.shape[0]
        if b > capacity:
            return lq, gt
        if self.filled < capacity:
            n = min(b, capacity - self.filled)
            self.lq[self.filled : self.filled + n] = lq[:n]
            self.gt[self.filled : self.filled + n] = gt[:n]
            self.filled += n
            return lq, gt
        order = torch.randperm(capacity, generator=generator, device=lq.device)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt


class BatchDegradation:
    """Turns a loader batch ``{"gt", "degradation": {...}}`` into ``{"lq", "gt"[, "gt_usm"]}`` on its device.

    Training: the LQ is made from the USM-sharpened GT when ``gt_usm`` (Real-ESRGAN), each sample's
    patch is cut, the pair goes through the pool, and ``gt_usm`` (the sharpened GT patch, the pixel
    and perceptual target) is added. Validation: LQ from the plain GT, the centre patch, no pool.

    Args:
        scale: SR factor.
        gt_usm: sharpen the GT as above.
        queue_batches: pool capacity in batches; 0 disables the pool.
        normalized: ImageNet-normalise ``lq`` and the targets last (``data.normalize``).
    """

    def __init__(self, scale: int, gt_usm: bool, queue_batches: int, normalized: bool = False) -> None:
        self.scale, self.gt_usm, self.normalized = scale, gt_usm, normalized
        self.pool = TrainingPairPool(queue_batches) if queue_batches else None

    @torch.no_grad()
    def __call__(self, batch: dict, training: bool) -> dict:
        p, gt = batch["degradation"], batch["gt"]
        generator = torch.Generator(device=gt.device)
        generator.manual_seed(int(p["seed"][0]))
        sharpen = training and self.gt_usm
        lq = degrade(ops.usm_sharpen(gt) if sharpen else gt, p, self.scale, generator)
        gt, lq = cut(gt, lq, p, self.scale)
        if training and self.pool is not None:
            lq, gt = self.pool(lq, gt, generator)
        out = {k: v for k, v in batch.items() if k != "degradation"}
        out.update(lq=lq.contiguous(), gt=gt.contiguous())
        if sharpen:
            out["gt_usm"] = ops.usm_sharpen(out["gt"])
        if self.normalized:
            out.update({k: normalize(out[k]) for k in ("lq", "gt", "gt_usm") if k in out})
        return out
