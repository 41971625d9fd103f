"""Every config file composes, and every ``_target_`` in it instantiates."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from srlab.config import CONFIG_DIR, degradation_group_overrides
from srlab.data.degradations import build_degradation
from srlab.train import build_model
from tests.conftest import TINY_NETS, compose_config

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


def test_user_configs_join_through_hydra_searchpath(tmp_path, monkeypatch):
    """README "Your own configs": my_conf/model/mynet.yaml is model=mynet, the package untouched."""
    from srlab.train import main

    (tmp_path / "my_conf" / "model").mkdir(parents=True)
    (tmp_path / "my_conf" / "model" / "mynet.yaml").write_text(
        "defaults:\n  - quickstart\n  - _self_\ngenerator:\n  num_feat: 8\n  num_block: 1\n  num_grow_ch: 4\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["srlab.train", "hydra.searchpath=[file://my_conf]", "model=mynet", "debug=smoke",
                                      "callbacks=none", "hydra.run.dir=run"])
    main()
    saved = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml")
    assert saved.model.generator.num_feat == 8 and saved.model.generator._target_ == "srlab.nets.rrdbnet.RRDBNet"
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()
    assert not (Path(CONFIG_DIR) / "model" / "mynet.yaml").exists()


def test_a_degradation_preset_by_name_becomes_its_config_group():
    rewrite = degradation_group_overrides
    assert rewrite(["model=realesrnet", "data.degradation=realesrgan"]) == ["model=realesrnet", "data/degradation=realesrgan"]
    assert rewrite(["data.degradation=realesrgan,bicubic"]) == ["data/degradation=realesrgan,bicubic"]  # a sweep
    kept = ["data.degradation=null", "data.degradation=realesrgn", "data.degradation.noise_range=[1,10]", "+x=1"]
    assert rewrite(kept) == kept  # the config checks name what is wrong with these


@pytest.mark.parametrize("model", ["realesrnet", "realesrgan"])
def test_real_esrgan_models_train_with_the_sources_crop_pool_and_flips(tmp_path, model):
    cfg = compose_config(tmp_path, degradation_group_overrides([f"model={model}", "data.degradation=realesrgan"]))
    data = OmegaConf.to_container(cfg.data, resolve=True)
    deg = build_degradation(data["degradation"], data["scale"])
    assert deg.crop_for(data["patch_size"]) == 152 > data["patch_size"] == 96  # 400:256, Real-ESRGAN's crop
    assert deg.cfg.queue_size == 180  # Real-ESRGAN's queue_size: 15 batches of its 12, whatever srlab's batch
    assert {k: data["augment"][k] for k in ("hflip", "vflip", "rot90", "affine")} == {
        "hflip": 0.5, "vflip": 0.0, "rot90": 0.0, "affine": 0.0}  # use_hflip: True, use_rot: False
    mine = compose_config(tmp_path, [f"model={model}", "data/degradation=realesrgan", "data.augment.rot90=0.5",
                                     "data.degradation.queue_size=0"])
    assert mine.data.augment.rot90 == 0.5 and mine.data.degradation.queue_size == 0  # overridable


def test_other_models_keep_srlabs_flips_and_turns(tmp_path):
    cfg = compose_config(tmp_path, ["model=quickstart", "data/degradation=realesrgan"])
    assert (cfg.data.augment.vflip, cfg.data.augment.rot90) == (0.5, 0.5)
