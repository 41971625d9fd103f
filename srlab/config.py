"""Where srlab's Hydra configs live, and the one way srlab composes them outside a Hydra app.

The repository keeps its configs in the top-level ``conf/``; building the package (``setup.py``)
copies them into the package as ``srlab/conf``, so a non-editable install carries them. A source
checkout (an editable install, or ``python -m`` from the clone) reads ``conf/`` directly.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from srlab.errors import SRLabError

# input pixels of context around each inference tile (upscale, evaluate, validation on data.val_sets):
# at least the receptive radius of srlab's nets, so tiled output equals untiled (in fp32)
TILE_PAD = 16

_HERE = Path(__file__).resolve().parent
# an installed wheel first: beside site-packages/srlab a top-level "conf" may belong to anything
CONFIG_DIR = str(next((d for d in (_HERE / "conf", _HERE.parent / "conf") if (d / "train.yaml").is_file()),
                      _HERE / "conf"))


def model_names() -> list[str]:
    """The names ``model=NAME`` accepts: the files of ``conf/model`` without ``.yaml``."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml"))


def degradation_group_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` with ``data.degradation=NAME`` (a preset by name; a comma list sweeps) turned into the
    config-group choice ``data/degradation=NAME``.

    Both pick the preset, but the value form holds only its name; the group holds every key, so
    ``--cfg job`` shows the crop and pool a run uses, ``.hydra/config.yaml`` records them and
    ``data.degradation.KEY=VALUE`` can change them. Anything else (a dict, ``null``, an unknown
    name) is left for the config checks to judge.
    """
    presets = {p.stem for p in (Path(CONFIG_DIR) / "data" / "degradation").glob("*.yaml")}
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if key == "data.degradation" and sep and value and set(value.split(",")) <= presets:
            item = f"data/degradation={value}"
        out.append(item)
    return out


def compose_train(overrides: list[str], config_name: str = "train", return_hydra_config: bool = False) -> DictConfig:
    """``conf/<config_name>.yaml`` composed with ``overrides``, as ``python -m srlab.train`` composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)


def model_net_config(name: str, scale: int = 4) -> dict:
    """The generator's Hydra config from ``conf/model/<name>.yaml`` (``data.scale`` set to ``scale``).

    Args:
        name: a file name in ``conf/model`` without ``.yaml``.
        scale: value for the ``${data.scale}`` interpolation in the model config.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if name not in model_names():
        raise SRLabError(f"model={name}: no conf/model/{name}.yaml (known: {', '.join(model_names())})")
    if GlobalHydra.instance().is_initialized():  # inside a running Hydra app or a test's compose
        cfg = compose(overrides=[f"+model={name}"])
    else:
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose(overrides=[f"+model={name}"])
    if "generator" not in cfg.model:
        raise SRLabError(f"model={name}: conf/model/{name}.yaml has no 'generator' node")
    # model configs take their scale from ${data.scale}: give them a root that has it
    root = OmegaConf.create({"data": {"scale": scale, "normalize": False}, "model": {"generator": cfg.model.generator}})
    return OmegaConf.to_container(root.model.generator, resolve=True)
