"""Checks of a composed training config that stop a run before any work, naming the key."""

from __future__ import annotations

from omegaconf import DictConfig

from srlab.errors import ConfigError


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for values that would fail (or silently mislead) later.

    Args:
        cfg: the composed ``train.yaml`` config.
    """
    data = cfg.data
    scale, patch = int(data.scale), int(data.patch_size)
    if patch % scale:
        raise ConfigError(f"data.patch_size={patch} is not divisible by data.scale={scale}; use a multiple of {scale}")
    if "val_fraction" in data and data.val_fraction is not None and not 0.0 < float(data.val_fraction) < 1.0:
        raise ConfigError(f"data.val_fraction={data.val_fraction} must be between 0 and 1 (exclusive)")
    for key in ("optimizer", "optimizer_g", "optimizer_d"):
        node = cfg.model.get(key)
        if node is not None and "lr" in node and float(node.lr) <= 0:
            raise ConfigError(f"model.{key}.lr={node.lr} must be positive")
