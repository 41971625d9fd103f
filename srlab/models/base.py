"""Shared Lightning plumbing of every srlab model: generator, EMA copy, validation metrics."""

from __future__ import annotations

import copy
from typing import Any, Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from srlab.data.transforms import denormalize, images_to_float
from srlab.errors import ConfigError, SRLabError
from srlab.infer import SRGenerator, read_stored
from srlab.models.benchmark_scores import BenchmarkScores
from srlab.models.nonfinite import NonFiniteGuard
from srlab.weights import load_generator_weights

# what validation on crops (data.val_dir / data.val_fraction) logs; data.val_sets add val/<set>/...
CROP_METRICS = ("val/psnr", "val/ssim", "val/psnr_bicubic")


# nets, losses and optimizer/scheduler factories stay out of hparams: checkpoints must hold only
# tensors and plain containers so that they load with torch.load(weights_only=True)
HPARAMS_IGNORE = [
    "generator", "discriminator", "adversarial_loss", "pixel_loss", "perceptual_loss",
    "optimizer", "scheduler", "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d",
]


class SRModule(L.LightningModule):
    """Owns the generator, its optional EMA copy and the validation loop.

    Subclasses add the training step (automatic or manual optimization). Validation logs
    ``val/psnr`` and ``val/ssim`` on [0, 1] RGB (or Y, per ``metrics.test_y_channel``) with
    ``metrics.crop_border`` pixels removed, plus ``val/psnr_bicubic``: plain bicubic upsampling
    of the same LQ images, computed once so every run shows whether it beats bicubic.
    Whole-image benchmark samples (``data.val_sets``) are scored as ``evaluate`` scores them
    (:mod:`srlab.models.benchmark_scores`): ``val/<set>/psnr_y``, ``ssim_y``, ``psnr``, ``ssim``,
    and the same with ``_bicubic`` once. Both use the EMA generator when there is one.

    Args:
        generator: the network that maps ``lq`` (B, 3, h, w) to ``sr`` (B, 3, h*scale, w*scale).
        optimizer: partial optimizer (``_partial_: true``), called with the parameters.
        scheduler: partial LR scheduler or None.
        scale: upscaling factor.
        normalized_input: batches are ImageNet-normalized; metrics and images undo it.
        metrics: ``crop_border`` and ``test_y_channel`` conventions.
        ema_decay: generator EMA decay (0 disables); validation and export then use the EMA copy. The
            decay ramps up as ``min(ema_decay, (1 + n) / (10 + n))`` after ``n`` optimizer steps
            (:func:`ema_decay_at`), so that early in a run the copy is not mostly the random init.
        generator_init: weights to start the generator from (an srlab checkpoint or export, or
            published ESRGAN/Real-ESRGAN/BasicSR weights), e.g. ESRGAN's stage-1 RRDBNet.
        channels_last: keep every net and batch in channels_last (NHWC) memory format, the
            layout GPU tensor cores and oneDNN's bf16 kernels work in; ``"auto"`` turns it on when
            training on a CUDA GPU (measured faster there: experiments/benchmarks) or in bf16 on
            any device, and leaves it off for fp32 on CPUs.
        compile: ``torch.compile`` the generator, the discriminator and the perceptual network in place
            (``nn.Module.compile``: parameter names, and so checkpoints, stay as they are): ``true``
            (inductor's default mode) or one of its modes by name, e.g. ``reduce-overhead``, which
            also replays each net's kernels as CUDA graphs on a GPU (no per-kernel launch cost).
        on_nonfinite: a NaN/Inf loss or gradient norm ``stop``s the run (naming it and the batch) or
            ``skip``s the batch (no weight update, counted in ``batches_skipped``); decided on the
            device, read on the host every ``trainer.log_every_n_steps`` batches
            (:class:`~srlab.models.nonfinite.NonFiniteGuard`).
    """

    def __init__(
        self,
        generator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scale: int = 4,
        normalized_input: bool = False,
        metrics: dict | None = None,
        ema_decay: float = 0.0,
        generator_init: str | None = None,
        channels_last: bool | str = False,
        compile: bool | str = False,  # noqa: A002 - the config key model.compile
        on_nonfinite: str = "stop",
    ) -> None:
        super().__init__()
        if generator_init:  # any stored generator the one door reads: a file or a shipped model's name
            stored = read_stored(generator_init)
            load_generator_weights(generator, stored.state_dict, label=f"model.generator_init={stored.label}")
        self.generator = generator
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scale = scale
        self.normalized_input = normalized_input
        metrics = dict(metrics or {})
        self.crop_border = int(metrics.get("crop_border", 0))
        self.test_y_channel = bool(metrics.get("test_y_channel", False))
        self.ema_decay = float(ema_decay)
        if channels_last not in (True, False, "auto"):
            raise ConfigError(f"model.channels_last={channels_last!r}: use true, false or auto")
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last is True else torch.contiguous_format
        self.generator_ema = _frozen_copy(generator) if self.ema_decay > 0 else None
        self.val_psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.val_ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.val_psnr_bicubic = PeakSignalNoiseRatio(data_range=1.0)
        # bicubic PSNR depends only on the (fixed) validation set: measured once, logged every epoch
        self.register_buffer("psnr_bicubic", torch.tensor(float("nan")))
        self.benchmark_scores = BenchmarkScores()
        self.batch_degradation = None
        self.nonfinite = NonFiniteGuard(on_nonfinite)
        self.compile_mode = compile_mode(compile)
        self.register_buffer("batches_skipped", torch.zeros((), dtype=torch.long))

    # ----------------------------------------------------------------- batches on the device
    def setup(self, stage: str) -> None:
        # before the strategy moves the module and builds the optimizers; `.to` keeps the
        # Parameter objects, so optimizers and EMA still point at the same tensors
        on_gpu = self.trainer.strategy.root_device.type == "cuda"
        if self.channels_last == "auto" and (on_gpu or "bf16" in str(self.trainer.precision)):
            self.memory_format = torch.channels_last
        if self.memory_format is torch.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_mode is not None:
            for net in self.compiled_nets():
                # in place, after the layout change; the EMA copy (validation only) stays eager
                net.compile(mode=None if self.compile_mode == "default" else self.compile_mode)
        # the data's on-device step (Real-ESRGAN's degradation): a plain object, not a submodule, so
        # DDP neither syncs nor checkpoints its training-pair pool
        if self.trainer.datamodule is not None:
            self.batch_degradation = getattr(self.trainer.datamodule, "batch_degradation", None)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.compile_mode is not None:
            # CUDA-graph modes replay into fixed buffers: a new step may overwrite the last one's outputs
            torch.compiler.cudagraph_mark_step_begin()

    def compiled_nets(self) -> list[nn.Module]:
        """What ``compile=true`` compiles: the generator, the discriminator, the perceptual loss's network."""
        nets = [self.generator, getattr(self, "discriminator", None)]
        perceptual = getattr(self, "perceptual_loss", None)
        nets.append(getattr(perceptual, "vgg", perceptual))
        return [net for net in nets if isinstance(net, nn.Module)]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "degradation" in batch:
            if self.batch_degradation is None:
                raise SRLabError("the batches carry degradation parameters but no data module gave the step that "
                                 "applies them; train through SRDataModule (data.degradation)")
            # it takes the loader's uint8 GT and normalizes what it makes
            batch = self.batch_degradation(batch, training=self.trainer.training)
        elif isinstance(batch, dict) and "set" not in batch:  # not a whole benchmark image (data.val_sets)
            batch = images_to_float(batch, self.normalized_input)  # the loaders send uint8
        if self.memory_format is torch.contiguous_format or not isinstance(batch, dict):
            return batch
        return {k: v.contiguous(memory_format=self.memory_format) if torch.is_tensor(v) and v.dim() == 4 else v
                for k, v in batch.items()}

    @staticmethod
    def loss_target(batch: dict) -> torch.Tensor:
        """The pixel/perceptual target: the USM-sharpened GT when the degradation made one (Real-ESRGAN)."""
        return batch.get("gt_usm", batch["gt"])

    # ----------------------------------------------------------------- NaN/Inf policy, without host syncs
    @property
    def on_nonfinite(self) -> str:
        return self.nonfinite.mode

    def end_batch_checks(self, batch_idx: int) -> None:
        """Count a skipped batch; every ``log_every_n_steps`` batches read the record (``stop`` raises here)."""
        self.nonfinite.end_batch(self.batches_skipped)
        if self.nonfinite.read_due(self.trainer, batch_idx):
            self.nonfinite.raise_if_stopped()
            if self.on_nonfinite == "skip":
                self.log("train/skipped_batches", self.batches_skipped.float(), on_step=True)

    def on_train_epoch_end(self) -> None:
        self.nonfinite.raise_if_stopped()

    def on_train_end(self) -> None:
        self.nonfinite.raise_if_stopped()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.nonfinite.raise_if_stopped()  # a stopped run writes nothing: the last checkpoint stays good

    # ----------------------------------------------------------------- inference
    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` with the generator (the EMA copy in eval mode when enabled)."""
        net = self.generator_ema if (self.generator_ema is not None and not self.training) else self.generator
        return net(lq)

    def to_unit_range(self, x: torch.Tensor) -> torch.Tensor:
        """Map a network-space tensor to RGB in [0, 1] for metrics and images."""
        if self.normalized_input:
            x = denormalize(x)
        return x.clamp(0.0, 1.0)

    # ----------------------------------------------------------------- EMA
    @torch.no_grad()
    def update_ema(self, usable: torch.Tensor | None = None) -> None:
        """Move the EMA copy toward the current generator weights.

        Args:
            usable: device bool; False leaves the EMA weights as they are (a skipped batch), without a host sync.
        """
        if self.generator_ema is None:
            return
        ema_params = list(self.generator_ema.parameters())
        params = [p.detach() for p in self.generator.parameters()]
        # the step count is a host int (Lightning's, restored on resume): no sync, and resumes stay exact
        steps_done = self._trainer.global_step if self._trainer is not None else None
        weight = 1.0 - ema_decay_at(self.ema_decay, steps_done)
        if usable is not None:
            weight = usable.to(ema_params[0].dtype) * weight  # a device scalar: 0 masks the update
        # ema + w * (p - ema) (lerp's formula for w < 0.5); `_foreach_lerp_` would read a tensor w on the host
        steps = torch._foreach_sub(params, ema_params)
        torch._foreach_mul_(steps, weight)
        torch._foreach_add_(ema_params, steps)
        for ema_buf, buf in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buf.copy_(buf)

    # ----------------------------------------------------------------- validation
    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        if "set" in batch:  # a whole benchmark image of data.val_sets
            return self._validate_benchmark(batch)
        lq, gt = batch["lq"], batch["gt"]
        sr = self.to_unit_range(self(lq)).float()
        gt = self.to_unit_range(gt)
        lq = self.to_unit_range(lq)
        # metrics in fp32 whatever the training precision: under bf16 autocast SSIM's Gaussian-filtered
        # variances (E[x^2] - E[x]^2) cancel catastrophically (val/ssim 0.18 instead of 0.53, same PSNR)
        with torch.autocast(self.device.type, enabled=False):
            sr_m = crop_and_select(sr, self.crop_border, self.test_y_channel)
            gt_m = crop_and_select(gt, self.crop_border, self.test_y_channel)
            self.val_psnr.update(sr_m, gt_m)
            self.val_ssim.update(sr_m, gt_m)
            bicubic = F.interpolate(lq, size=gt.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            if self._measuring_bicubic():
                self.val_psnr_bicubic.update(crop_and_select(bicubic, self.crop_border, self.test_y_channel), gt_m)
        # returned for the comparison-grid callback
        return {"lq_bicubic": bicubic, "sr": sr, "gt": gt}

    def _validate_benchmark(self, sample: dict) -> dict:
        net = self.generator_ema if self.generator_ema is not None else self.generator
        gen = SRGenerator(net, self.scale, {}, self.normalized_input)
        # fp32 like evaluate's default, whatever mixed precision training uses
        with torch.autocast(self.device.type, enabled=False):
            sr = self.benchmark_scores.score(gen, sample, crop_border=self.scale)
        images = {"lq_bicubic": sample["bicubic"], "sr": sr, "gt": sample["hr"]}
        # (1, 3, H, W) in [0, 1] for the comparison-grid callback
        return {"set": sample["set"], **{k: torch.tensor(v).permute(2, 0, 1)[None].float() / 255 for k, v in images.items()}}

    def on_validation_epoch_start(self) -> None:
        self.benchmark_scores.reset()

    def _measuring_bicubic(self) -> bool:
        return bool(torch.isnan(self.psnr_bicubic)) and not self.trainer.sanity_checking

    def on_validation_epoch_end(self) -> None:
        final = not self.trainer.sanity_checking
        # every rank takes part (the rows are gathered); each logs the same values
        for name, value in self.benchmark_scores.summary(final).items():
            self.log(name, value, sync_dist=False, add_dataloader_idx=False, prog_bar=name.endswith("/psnr_y"))
        if not self.val_psnr.update_called:  # benchmarks only: no crops
            return
        if self._measuring_bicubic():
            self.psnr_bicubic.fill_(self.val_psnr_bicubic.compute())
            self.val_psnr_bicubic.reset()
        self.log("val/psnr", self.val_psnr.compute(), prog_bar=True, sync_dist=False, add_dataloader_idx=False)
        self.log("val/ssim", self.val_ssim.compute(), prog_bar=True, sync_dist=False, add_dataloader_idx=False)
        self.log("val/psnr_bicubic", self.psnr_bicubic, sync_dist=False, add_dataloader_idx=False)
        self.val_psnr.reset()
        self.val_ssim.reset()

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.validation_step(batch, batch_idx, dataloader_idx)

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    # ----------------------------------------------------------------- optimizers
    def build_optimizer(self, params, factory: Callable[..., torch.optim.Optimizer], scheduler_factory):
        """Instantiate one partial optimizer (and its scheduler) from config."""
        optimizer = factory(params=params)
        if scheduler_factory is None:
            return {"optimizer": optimizer}
        # milestones count optimizer steps (iterations), as in ESRGAN/BasicSR configs
        scheduler = scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def ema_decay_at(decay: float, steps_done: int | None) -> float:
    """The EMA decay used after ``steps_done`` optimizer steps (None: ``decay`` itself).

    With 0.999 from the first step, a 500-step run's EMA copy would still be 61% its random
    initial weights (0.999^500), and validation would score that copy; the ramp (TensorFlow's
    ``ExponentialMovingAverage(num_updates)``) reaches ``decay`` after about 9000 steps.
    """
    return decay if steps_done is None else min(decay, (1 + steps_done) / (10 + steps_done))


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value: bool | str | None) -> str | None:
    """``model.compile`` as an inductor mode name (``true`` is ``default``), or None for no compiling."""
    if value in (False, None, "false"):
        return None
    if value in (True, "true"):
        return "default"
    if value not in COMPILE_MODES:
        raise ConfigError(f"model.compile={value!r}: use false, true or a torch.compile mode "
                          f"({', '.join(COMPILE_MODES)})")
    return value


def _frozen_copy(net: nn.Module) -> nn.Module:
    ema = copy.deepcopy(net)
    ema.requires_grad_(False)
    ema.eval()
    return ema


def crop_and_select(x: torch.Tensor, crop_border: int, y_channel: bool) -> torch.Tensor:
    """Apply BasicSR's metric conventions to a (B, 3, H, W) [0, 1] batch.

    Args:
        x: images in [0, 1].
        crop_border: pixels removed on each side before measuring.
        y_channel: keep only ITU-R BT.601 luma, as published SR tables do.
    """
    if crop_border > 0:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        weights = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
        x = (16.0 + (x * weights).sum(dim=1, keepdim=True)) / 255.0  # (B, 1, H, W)
    return x
