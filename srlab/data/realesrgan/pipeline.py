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
from srlab.data.transforms import images_to_float, normalize


def _stage_noise(x: torch.Tensor, p: dict, i: int, generator: torch.Generator) -> torch.Tensor:
    host = p["host"]
    gray = p[f"gray{i}"] if any(host[f"gray{i}"]) else None
    if host[f"gaussian{i}"][0]:  # Gaussian or Poisson for the whole batch
        return ops.gaussian_noise(x, p[f"sigma{i}"], gray, generator)
    return ops.poisson_noise(x, p[f"poisson{i}"], gray, generator)


def _resize_back_and_sinc(x: torch.Tensor, p: dict, size: tuple[int, int]) -> torch.Tensor:
    x = ops.resize(x, p["host"]["final_mode"][0], size=size)
    return ops.filter2d(x, p["sinc"]) if any(p["host"]["has_sinc"]) else x  # identity kernels otherwise


@torch.no_grad()
def degrade(gt: torch.Tensor, p: dict, scale: int, generator: torch.Generator) -> torch.Tensor:
    """Second-order degradation of ``gt`` with the drawn parameters ``p``.

    Args:
        gt: (B, 3, H, W) in [0, 1], H and W multiples of ``scale``.
        p: :func:`~srlab.data.realesrgan.params.collate_draws` of the samples' draws: tensors on
            ``gt``'s device and the ``"host"`` lists; only those lists are read on the host.
        scale: SR factor.
        generator: source of the noise, on ``gt``'s device.

    Returns:
        (B, 3, H / scale, W / scale) LQ, quantised to 8-bit levels, in [0, 1].
    """
    h, w = gt.shape[-2:]
    host = p["host"]  # the batch's sizes and branches follow its first sample, as Real-ESRGAN draws them once
    # first stage: blur, resize, noise, JPEG
    x = ops.filter2d(gt, p["kernel1"])
    s1 = host["resize1_scale"][0]
    if s1 != 1.0:  # Real-ESRGAN's 'keep' interpolates by 1, which changes nothing
        x = ops.resize(x, host["resize1_mode"][0], scale=s1)
    x = _stage_noise(x, p, 1, generator)
    x = jpeg(x.clamp(0, 1), p["jpeg1"])
    # second stage: the target size is relative to the LQ size, not to the first stage's output
    if host["second_blur"][0]:
        x = ops.filter2d(x, p["kernel2"])
    s2 = host["resize2_scale"][0]
    x = ops.resize(x, host["resize2_mode"][0], size=(int(h / scale * s2), int(w / scale * s2)))
    x = _stage_noise(x, p, 2, generator)
    # final: [resize back + sinc] and JPEG in random order (other orders make twisted lines, per Real-ESRGAN)
    lq_size = (h // scale, w // scale)
    if host["final_resize_first"][0]:
        x = jpeg(_resize_back_and_sinc(x, p, lq_size).clamp(0, 1), p["jpeg2"])
    else:
        x = _resize_back_and_sinc(jpeg(x.clamp(0, 1), p["jpeg2"]), p, lq_size)
    return (x * 255).round().clamp(0, 255) / 255


def cut(host: dict, scale: int, lq: torch.Tensor, *hq: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cut each sample's patch at its drawn LQ-grid position (``host`` lists ``cut_y``, ``cut_x``,
    ``cut_size``; size 0: keep everything) from ``lq`` and the HQ tensors ``hq``; returns ``(lq, *hq)``."""
    size = host["cut_size"][0]
    if size == 0 or size == lq.shape[-1] == lq.shape[-2]:
        return (lq, *hq)
    pos = list(zip(host["cut_y"], host["cut_x"]))
    s = size * scale
    return (torch.stack([lq[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(pos)]),
            *(torch.stack([t[i, :, y * scale : y * scale + s, x * scale : x * scale + s] for i, (y, x) in enumerate(pos)])
              for t in hq))


class TrainingPairPool:
    """Real-ESRGAN's training-pair pool: mixes degradations across batches.

    A batch shares its resize factors and noise type; the pool holds ``size`` training pairs (lq,
    gt and the sharpened gt) and, once full, swaps each incoming batch for a random draw from it.
    While it fills, batches pass through unchanged. Unlike Real-ESRGAN's, the size need not be a
    multiple of the batch size (its 180 with srlab's batch 8). Its content is not saved in
    checkpoints (it refills).

    Args:
        size: capacity in samples (Real-ESRGAN: 180 = 15 batches of 12).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.store: list[torch.Tensor] = []
        self.filled = 0

    def __call__(self, tensors: tuple[torch.Tensor, ...], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Pass ``tensors`` (each (B, ...), one sample per row) through the pool."""
        b = tensors[0].shape[0]
        if b > self.size:
            return tensors
        if [t.shape[1:] for t in self.store] != [t.shape[1:] for t in tensors] or self.store[0].device != tensors[0].device:
            self.store, self.filled = [t.new_empty((self.size, *t.shape[1:])) for t in tensors], 0
        if self.filled < self.size:
            n = min(b, self.size - self.filled)
            for pooled, t in zip(self.store, tensors):
                pooled[self.filled : self.filled + n] = t[:n]
            self.filled += n
            return tensors
        order = torch.randperm(self.size, generator=generator, device=tensors[0].device)
        self.store = [pooled[order] for pooled in self.store]
        out = tuple(pooled[:b].clone() for pooled in self.store)
        for pooled, t in zip(self.store, tensors):
            pooled[:b] = t
        return out


class BatchDegradation:
    """Turns a loader batch ``{"gt", "degradation": {...}}`` into ``{"lq", "gt"[, "gt_usm"]}`` on its device.

    Training: the LQ is made from the USM-sharpened GT crop when ``gt_usm`` (Real-ESRGAN), each
    sample's patch is cut from LQ, GT and sharpened GT, they go through the pool together, and
    ``gt_usm`` (the pixel and perceptual target) is added. Validation: LQ from the plain GT, the
    centre patch, no pool.

    Args:
        scale: SR factor.
        gt_usm: sharpen the GT as above.
        queue_size: pool capacity in samples; 0 disables the pool.
        normalized: ImageNet-normalise ``lq`` and the targets last (``data.normalize``).
    """

    def __init__(self, scale: int, gt_usm: bool, queue_size: int, normalized: bool = False) -> None:
        self.scale, self.gt_usm, self.normalized = scale, gt_usm, normalized
        self.pool = TrainingPairPool(queue_size) if queue_size else None

    @torch.no_grad()
    def __call__(self, batch: dict, training: bool) -> dict:
        p, gt = batch["degradation"], images_to_float(batch, normalized=False, keys=("gt",))["gt"]  # loaders send uint8
        generator = torch.Generator(device=gt.device)
        generator.manual_seed(p["host"]["seed"][0])
        # Real-ESRGAN degrades the sharpened crop and sharpens the cut patch again; cutting the
        # crop's sharpening instead saves that second pass and keeps real context at patch borders
        sharp = ops.usm_sharpen(gt) if training and self.gt_usm else None
        lq = degrade(gt if sharp is None else sharp, p, self.scale, generator)
        pair = cut(p["host"], self.scale, lq, gt) if sharp is None else cut(p["host"], self.scale, lq, gt, sharp)
        if training and self.pool is not None:
            pair = self.pool(pair, generator)
        out = {k: v for k, v in batch.items() if k != "degradation"}
        out.update(zip(("lq", "gt", "gt_usm"), (t.contiguous() for t in pair)))
        if self.normalized:
            out.update({k: normalize(out[k]) for k in ("lq", "gt", "gt_usm") if k in out})
        return out
