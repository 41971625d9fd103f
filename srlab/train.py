"""Training entry point: ``python -m srlab.train [overrides]`` (Hydra); tests call :func:`run`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks the network at import otherwise

import hydra  # noqa: E402
import lightning as L  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from srlab.config_checks import validate_config  # noqa: E402
from srlab.errors import SRLabError  # noqa: E402

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def _instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a callbacks/logger group (None entries are switched off)."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Build data module, model and trainer from a composed config."""
    datamodule = hydra.utils.instantiate(cfg.data)
    net_config = OmegaConf.to_container(cfg.model.generator, resolve=True)
    model = hydra.utils.instantiate(cfg.model, net_config=net_config)
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=_instantiate_group(cfg.get("callbacks")), logger=_instantiate_group(cfg.get("logger"))
    )
    return datamodule, model, trainer


def run(cfg: DictConfig) -> float | None:
    """Train one model as configured; returns ``cfg.optimized_metric`` (for sweepers) or None.

    Args:
        cfg: the composed ``train.yaml`` config.
    """
    validate_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric"))
    if trainer.is_global_zero:
        _report(cfg, trainer)
    return float(metric) if metric is not None else None


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
