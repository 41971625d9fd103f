"""Training entry point: ``python -m srlab.train [overrides]`` (Hydra); tests call :func:`run`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks the network at import otherwise

import hydra  # noqa: E402
import lightning as L  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.errors import InstantiationException  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from srlab.errors import SRLabError  # noqa: E402
from srlab.runs.checkpointing import resolve_ckpt_path  # noqa: E402
from srlab.runs.checks import validate_config  # noqa: E402
from srlab.runs.wandb_setup import log_config  # noqa: E402

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def _instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a callbacks/logger group (None entries are switched off)."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def build_model(cfg: DictConfig) -> L.LightningModule:
    """Instantiate ``cfg.model`` with the generator's config recorded in its hparams."""
    # plain containers (not DictConfig) in hparams keep checkpoints loadable with weights_only=True
    try:
        model = hydra.utils.instantiate(cfg.model, _convert_="all")
    except InstantiationException as exc:  # srlab's own one-line errors come out unwrapped
        if isinstance(exc.__cause__, SRLabError):
            raise exc.__cause__ from None
        raise
    # the generator's own config, so export/evaluate/upscale rebuild it from a checkpoint alone
    model.hparams["net_config"] = OmegaConf.to_container(cfg.model.generator, resolve=True)
    return model


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Build data module, model and trainer from a composed config."""
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = build_model(cfg)
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        strategy=_strategy(cfg, model),
        callbacks=_instantiate_group(cfg.get("callbacks")),
        logger=_instantiate_group(cfg.get("logger")),
    )
    log_config(cfg, trainer.loggers)  # W&B run config = the resolved Hydra config
    return datamodule, model, trainer


def _strategy(cfg: DictConfig, model: L.LightningModule):
    """Resolve ``strategy: auto`` for several devices into a DDP that works for srlab's models."""
    strategy = cfg.trainer.get("strategy", "auto")
    devices = cfg.trainer.get("devices", 1)
    several = devices in (-1, "auto") or (isinstance(devices, int) and devices > 1) or cfg.trainer.get("num_nodes", 1) > 1
    if not isinstance(strategy, str) or strategy != "auto" or not several:
        return hydra.utils.instantiate(strategy) if isinstance(strategy, DictConfig) else strategy
    from lightning.pytorch.strategies import DDPStrategy

    # GAN steps freeze D during the G step (and vice versa): DDP must accept params without grads.
    # Inside a Hydra multirun the default subprocess launcher would re-run the whole sweep per rank.
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return DDPStrategy(
        find_unused_parameters=not model.automatic_optimization, start_method="spawn" if multirun else "popen"
    )


def run(cfg: DictConfig) -> float | None:
    """Train one model as configured; returns ``cfg.optimized_metric`` (for sweepers) or None.

    Args:
        cfg: the composed ``train.yaml`` config.
    """
    validate_config(cfg)
    # ckpt_path, or the newest matching run's last.ckpt for resume=auto; checked (safely) before any work
    ckpt_path = resolve_ckpt_path(cfg)
    if cfg.get("stage1") and ckpt_path is None:  # a resumed run is past stage 1
        cfg = _run_stage1(cfg)
    L.seed_everything(cfg.seed, workers=True)
    # tiny activations of freshly initialised nets (RRDBNet scales its init by 0.1) turn into
    # denormal floats that slow CPU convolutions several-fold; flushing them costs no accuracy
    torch.set_flush_denormal(True)
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric"))
    if trainer.is_global_zero:
        _report(cfg, trainer)
    return float(metric) if metric is not None else None


def _run_stage1(cfg: DictConfig) -> DictConfig:
    """Train ``cfg.stage1`` (e.g. ESRGAN's PSNR-oriented RRDBNet) and start the main model from it."""
    stage_dir = Path(cfg.paths.output_dir) / "stage1"
    stage1 = OmegaConf.to_container(cfg.stage1, resolve=True)  # resolve while ${model...} still means stage 2
    stage = OmegaConf.merge(cfg, {"model": None, "stage1": None})
    with open_dict(stage):
        stage.model = stage1["model"]
        stage.trainer = OmegaConf.merge(cfg.trainer, stage1.get("trainer") or {})
        stage.paths.output_dir = str(stage_dir)
        stage.task_name = f"{cfg.task_name}_stage1"
    log.info("stage 1: %s -> %s", stage.model._target_, stage_dir)
    run(stage)
    last = stage_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise SRLabError(f"stage 1 wrote no {last}; cannot start stage 2")
    main_cfg = OmegaConf.merge(cfg, {"stage1": None})
    with open_dict(main_cfg):
        main_cfg.model.generator_init = str(last)
    return main_cfg


def _report(cfg: DictConfig, trainer: L.Trainer) -> None:
    metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    log.info("finished: %s", metrics)
    log.info("outputs in %s", cfg.paths.output_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: turns srlab's user-facing errors into one line and exit code 2."""
    try:
        return run(cfg)
    except SRLabError as exc:
        log.error("error: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
