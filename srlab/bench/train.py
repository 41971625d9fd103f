"""Section ``train``: one training step of every model, built from the real configs and run by a real Trainer.

Each model is composed exactly as ``python -m srlab.train model=NAME`` composes it (the VGG of the
perceptual losses with *random* weights: same cost, no download) and trained by a Lightning
``Trainer.fit`` over synthetic in-memory batches, so that the data pipeline (section ``data``)
does not mix into the step time. A step is the time from one ``on_train_batch_start`` to the
next: forward, backward, optimizer steps, EMA, logging and the loop itself. The first batch is
not timed (lazy initialisation, optimizer state); FLOPs are counted on it with ``FlopCounterMode``
(:func:`srlab.infer.efficiency.flop_counter`: attention's CPU kernel counted too).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from srlab.bench.ceilings import bf16_skip_reason
from srlab.bench.utils import median, spread, sync
from srlab.config import compose_train
from srlab.data.transforms import images_to_float
from srlab.models.base import compile_mode
from srlab.device import AUTO, arch_name, resolve_train_precision
from srlab.infer.efficiency import flop_counter
from srlab.train import build_model

MODELS = ("quickstart", "autoencoder", "vanilla_gan", "srgan", "rrdbnet", "esrgan", "srvgg", "edsr", "msrresnet",
          "swinir_light", "swinir")
PATCH = 128  # HR patch side; LQ is PATCH / 4


def batch_size(device: torch.device) -> int:
    return 16 if device.type == "cuda" else 4


def quiet_lightning() -> None:
    """Keep Lightning's banners and the few-workers hint out of the benchmark output."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in ("does not have many workers", "Checkpoint directory", "no `val_dataloader`", "LeafSpec",
                    "smaller than the logging interval", "infer the `batch_size`", "logs directory .* exists"):
        warnings.filterwarnings("ignore", message=f".*{message}")


def compose_config(model: str, device: torch.device, extra: list[str] | None = None,
                   out_dir: str | None = None) -> DictConfig:
    """``conf/train.yaml`` with ``model=NAME``, batch and patch of the benchmark, VGG weights random."""
    out_dir = out_dir or tempfile.mkdtemp(prefix="srlab-bench-")
    overrides = [
        f"model={model}", f"data.batch_size={batch_size(device)}", f"data.patch_size={PATCH}",
        f"trainer={'gpu' if device.type == 'cuda' else 'cpu'}", "callbacks=none", f"paths.output_dir={out_dir}",
        "vgg_weights=random", *(extra or []),
    ]
    cfg = compose_train(overrides)
    # trainer.precision=auto resolved as srlab.train resolves it, for this generator (Lightning knows no "auto")
    cfg.trainer.precision = resolve_train_precision(cfg.trainer.precision, device, arch_name(cfg.model.generator))[0]
    return cfg


class _Batches(Dataset):
    """``n`` fixed random samples {lq, gt}: gt uniform noise, lq its 4x box-downscale; uint8 like the real loaders."""

    def __init__(self, n: int, patch: int, scale: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        gt = torch.rand(n, 3, patch, patch, generator=gen)
        self.gt = gt.mul(255).round().to(torch.uint8)
        self.lq = F.avg_pool2d(gt, scale).mul(255).round().to(torch.uint8)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        return {"lq": self.lq[i], "gt": self.gt[i], "path": f"synthetic/{i}"}


def synthetic_loader(cfg: DictConfig, n_batches: int) -> DataLoader:
    bs = int(cfg.data.batch_size)
    return DataLoader(_Batches(n_batches * bs, int(cfg.data.patch_size), int(cfg.data.scale)), batch_size=bs)


def synthetic_batches(cfg: DictConfig, n_batches: int, device: torch.device) -> list[dict]:
    """The batches on ``device`` as a model's step sees them: float, as ``on_after_batch_transfer`` makes them."""
    loader = synthetic_loader(cfg, n_batches)
    return [images_to_float({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}, normalized=False)
            for b in loader]


class StepTimer(L.Callback):
    """Records when each training batch starts (and the last one ends); counts FLOPs on batch ``flops_batch``."""

    def __init__(self, device: torch.device, flops_batch: int | None = 0) -> None:
        self.device, self.flops_batch = device, flops_batch
        self.starts: list[float] = []
        self.end = 0.0
        self.flops: int | None = None
        self._counter: FlopCounterMode | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        sync(self.device)
        self.starts.append(time.perf_counter())
        if batch_idx == self.flops_batch:
            self._counter = flop_counter()
            self._counter.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops, self._counter = int(self._counter.get_total_flops()), None
        sync(self.device)
        self.end = time.perf_counter()

    def step_times(self, skip: int = 1) -> list[float]:
        """Seconds per batch, start to next start (the last: start to end); the first ``skip`` dropped."""
        bounds = self.starts + [self.end]
        return [b - a for a, b in zip(bounds[:-1], bounds[1:])][skip:]


def make_trainer(cfg: DictConfig, timer: StepTimer, n_batches: int) -> L.Trainer:
    """The configured Trainer (precision, accelerator, CSV logger) limited to ``n_batches`` without validation."""
    loggers = [hydra.utils.instantiate(node) for node in (cfg.get("logger") or {}).values() if node]
    return hydra.utils.instantiate(
        cfg.trainer, callbacks=[timer], logger=loggers or False, max_epochs=1, max_steps=-1, max_time=None,
        limit_train_batches=n_batches, limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, devices=1,
    )


def lightning_steps(cfg: DictConfig, model: L.LightningModule, n: int, device: torch.device, flops: bool = True,
                    warmup: int = 1):
    """``Trainer.fit`` over ``warmup`` + ``n`` synthetic batches; returns (n step times, FLOPs of batch 0 or None)."""
    timer = StepTimer(device, flops_batch=0 if flops else None)
    make_trainer(cfg, timer, n + warmup).fit(model, train_dataloaders=synthetic_loader(cfg, n + warmup))
    return timer.step_times(skip=warmup), timer.flops


def precisions(device: torch.device, ceiling: dict | None, overrides) -> tuple[list[str], dict[str, str]]:
    """The precisions to step every model in, and ``{precision: why not}`` for those left out.

    ``--set trainer.precision=X`` runs X alone (``auto`` resolved per model, as ``srlab.train`` does);
    otherwise 32-true, plus bf16-mixed where the device computes bf16 natively, for every model (the
    rows that say whether ``auto``'s per-architecture rule holds).
    """
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("trainer.precision=")]
    if chosen:
        resolve_train_precision(chosen[-1], device)  # an unknown value stops here, before any model is built
        return [chosen[-1]], {}
    reason = bf16_skip_reason(device, ceiling)
    return (["32-true"], {"bf16-mixed": reason}) if reason else (["32-true", "bf16-mixed"], {})


def run(device: torch.device, ceiling: dict | None, quick: bool = False, models: tuple[str, ...] = MODELS,
        overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Seconds per step, samples/s, FLOPs and fraction of the conv ceiling of every model, in every precision.

    ``overrides`` (Hydra ``KEY=VALUE``) apply to every model, e.g. ``model.channels_last=true``.
    """
    quiet_lightning()
    rows, auto = [], {}
    # a GPU step is milliseconds: more of them cost nothing and steady the median
    n = (2 if quick else 4) * (3 if device.type == "cuda" else 1)
    runs, skipped = precisions(device, ceiling, overrides)
    others = [o for o in overrides if not o.startswith("trainer.precision=")]
    for name in models:
        for precision in runs:
            cfg = compose_config(name, device, [*others, f"trainer.precision={precision}"])
            L.seed_everything(0, verbose=False)
            model = build_model(cfg)
            if compile_mode(cfg.model.get("compile")) is None:
                times, flops = lightning_steps(cfg, model, n, device)
            else:
                # FLOPs of one eager step (FlopCounterMode would be traced into the graphs); compiling
                # takes the first step, recording CUDA graphs the next ones: those are not timed
                eager = compose_config(name, device, [*others, f"trainer.precision={precision}", "model.compile=false"])
                flops = lightning_steps(eager, build_model(eager), 0, device)[1]
                times, _ = lightning_steps(cfg, model, n, device, flops=False, warmup=3)
            step, resolved = median(times), str(cfg.trainer.precision)  # auto: what it resolved to
            rows.append({
                "model": name, "generator": cfg.model.generator._target_.rsplit(".", 1)[-1],
                "batch": int(cfg.data.batch_size), "precision": resolved, "steps": len(times),
                "s_per_step": step, "spread": spread(times), "samples_per_s": cfg.data.batch_size / step,
                "gflop_per_step": flops / 1e9, "gflops": flops / step / 1e9,
            })
            if ceiling:
                half = "16" in resolved and "32" not in resolved  # bf16 or fp16 mixed
                key = "conv_ceiling_bf16_gflops" if half else "conv_ceiling_gflops"
                rows[-1]["fraction_of_conv_ceiling"] = rows[-1]["gflops"] / ceiling[key]
            del model
        auto[name] = resolve_train_precision(AUTO, device, arch_name(cfg.model.generator))
    return {"rows": rows, "patch": PATCH, "vgg_weights": "random", "overrides": list(overrides), "skipped": skipped,
            "auto": auto}


def table(result: dict) -> list[str]:
    lines = [
        f"HR patch {result['patch']} px, LQ {result['patch'] // 4} px; VGG of the perceptual losses with random "
        "weights (same cost as ImageNet weights). Step = one batch of `Trainer.fit` (forward, backward, "
        "optimizer steps, EMA, logging); median over the timed steps (min-max in brackets).",
        "",
        "| model | generator | batch | precision | s/step | samples/s | GFLOP/step | GFLOP/s | of conv ceiling |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    if result.get("overrides"):
        lines[1:1] = ["", "Overrides on every model: " + " ".join(f"`{o}`" for o in result["overrides"]) + "."]
    for r in result["rows"]:
        frac = f"{r['fraction_of_conv_ceiling']:.0%}" if "fraction_of_conv_ceiling" in r else "n/a"
        lines.append(
            f"| {r['model']} | {r['generator']} | {r['batch']} | {r['precision']} | {r['s_per_step']:.3f} "
            f"({r['spread']}) | {r['samples_per_s']:.2f} | {r['gflop_per_step']:.1f} | {r['gflops']:.1f} | {frac} |"
        )
    lines += [f"\n{precision}: {why}." for precision, why in result.get("skipped", {}).items()]
    if result.get("auto"):
        lines += ["", "`trainer.precision=auto` here: " + "; ".join(
            f"{name} -> {precision} ({why})" for name, (precision, why) in result["auto"].items()) + "."]
    return lines


