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

from srlab.config import CONFIG_DIR, degradation_group_overrides  # noqa: E402
from srlab.errors import ConfigError, SRLabError, user_errors  # noqa: E402
from srlab.device import settle_trainer_precision  # noqa: E402
from srlab.runs.card import ModelCard  # noqa: E402
from srlab.runs.checkpointing import resolve_ckpt_path  # noqa: E402
from srlab.runs.checks import validate_config  # noqa: E402
from srlab.runs.launch import launcher_rank, worker_overrides  # noqa: E402
from srlab.runs.wandb_setup import log_config  # noqa: E402
from srlab.weights import record_net_config  # noqa: E402

log = logging.getLogger(__name__)


def _instantiate(node: DictConfig, key: str, **kwargs):  # noqa: ANN202 - whatever the node builds
    """``hydra.utils.instantiate`` whose failures are one line: srlab's own errors as they are, others naming ``key``."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, SRLabError):
            raise cause from None
        # e.g. a key only some models take, such as model.perceptual_loss on the autoencoder
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc).strip().splitlines()[-1]
        raise ConfigError(f"{key}: cannot build {node.get('_target_')} ({detail})") from None


def _instantiate_group(group: DictConfig | None, key: str) -> list:
    """Instantiate every ``_target_`` entry of a callbacks/logger group (None entries are switched off)."""
    if not group:
        return []
    nodes = {name: node for name, node in group.items() if node is not None and "_target_" in node}
    return [_instantiate(node, f"{key}.{name}") for name, node in nodes.items()]


def build_model(cfg: DictConfig) -> L.LightningModule:
    """Instantiate ``cfg.model`` with the generator's config recorded in its hparams."""
    # plain containers (not DictConfig) in hparams keep checkpoints loadable with weights_only=True
    model = _instantiate(cfg.model, "model", _convert_="all")
    # the generator's own config, so export/evaluate/upscale rebuild it from a checkpoint alone
    record_net_config(model.hparams, OmegaConf.to_container(cfg.model.generator, resolve=True))
    return model


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Build data module, model and trainer from a composed config."""
    datamodule = _instantiate(cfg.data, "data", _convert_="all")
    model = build_model(cfg)
    trainer = _instantiate(
        cfg.trainer,
        "trainer",
        strategy=_strategy(cfg, model),
        # not optional: every checkpoint says what its weights were trained for
        callbacks=[*_instantiate_group(cfg.get("callbacks"), "callbacks"), ModelCard(cfg)],
        logger=_instantiate_group(cfg.get("logger"), "logger"),
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
    # trainer.precision=auto -> what this machine computes fast; logged and written into .hydra/config.yaml
    settle_trainer_precision(cfg)
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
    main_cfg = OmegaConf.merge(cfg, {"stage1": None})
    if launcher_rank(os.environ) > 0:
        # another node's process (torchrun/srun): rank 0 wrote stage 1's checkpoint in its own folder, and
        # DDP copies rank 0's weights into every process when stage 2 starts
        return main_cfg
    last = stage_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise SRLabError(f"stage 1 wrote no {last}; cannot start stage 2")
    with open_dict(main_cfg):
        main_cfg.model.generator_init = str(last)
    return main_cfg


def _report(cfg: DictConfig, trainer: L.Trainer) -> None:
    metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    log.info("finished: %s", metrics)
    log.info("outputs in %s", cfg.paths.output_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors(hydra_task=True)
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: srlab's user-facing errors become one line (naming the sweep job) and exit code 2."""
    return run(cfg)


if __name__ == "__main__":
    # under torchrun/srun every rank runs this: only global rank 0 makes a run folder
    sys.argv = [sys.argv[0], *degradation_group_overrides(sys.argv[1:]), *worker_overrides(os.environ)]
    main()
