"""Every config file composes, and every ``_target_`` in it instantiates."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from srlab.train import build_model
from tests.conftest import CONFIG_DIR, TINY_NETS, compose_config

CONF = Path(CONFIG_DIR)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", _options("model"))
def test_model_config_instantiates(tmp_path, model):
    cfg = compose_config(tmp_path, [f"model={model}", *TINY_NETS.get(model, [])])
    module = build_model(cfg)
    assert module.hparams["net_config"]["_target_"] == cfg.model.generator._target_


@pytest.mark.parametrize("data", _options("data"))
def test_data_config_instantiates(tmp_path, data):
    cfg = compose_config(tmp_path, [f"data={data}"])
    datamodule = hydra.utils.instantiate(cfg.data)
    assert datamodule is not None


@pytest.mark.parametrize("group", ["trainer", "callbacks", "logger", "debug", "experiment"])
def test_other_groups_compose_and_instantiate(tmp_path, group):
    for option in _options(group):
        cfg = compose_config(tmp_path, [f"{group}={option}"])
        if group == "trainer":
            node = OmegaConf.to_container(cfg.trainer, resolve=True)
            node.update(accelerator="cpu", devices=1, strategy="auto")  # no GPUs/DDP on a test machine
            assert hydra.utils.instantiate(node) is not None
        elif group in ("callbacks", "logger"):
            for item in (cfg.get(group) or {}).values():
                if item is not None and "_target_" in item and "Wandb" not in item._target_:
                    assert hydra.utils.instantiate(item) is not None
