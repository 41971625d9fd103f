"""The model card of a training run (:mod:`srlab.weights.card`), made from its composed config.

:func:`make_card` writes it from the run's config, the built generator and the set-up data module
(``srlab.runs.card.ModelCard`` puts it into every checkpoint); :func:`card_from_run` rebuilds it
from a finished run's folder for checkpoints saved before srlab wrote cards.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from srlab.weights.card import CARD_VERSION
from srlab.data.degradations import settings_of

# where each data source keeps its images; only the folder's NAME goes into a card, never its path
_FOLDER_KEYS = {"samples": ("samples_dir",), "hq_folder": ("train_dir",), "paired": ("root", "hq_dir")}
# the prepare settings that describe how prepared LQ images were made (srlab.prepare's options)
# a card rebuilt for a checkpoint saved before srlab wrote cards says so: its srlab version is the reader's
REBUILT = "rebuilt from the run folder's .hydra/ (checkpoint saved before srlab wrote cards)"
_PREPARE_KEYS = ("scale", "blur_radius", "order", "bicubic", "hq_scales", "augment_copies", "fixed_size")


def make_card(cfg: DictConfig, generator: Any = None, datamodule: Any = None, choices: dict | None = None) -> dict:
    """The card of a training run, from its composed config (image counts from the set-up data module).

    Args:
        cfg: the composed ``train.yaml`` config.
        generator: the built generator (its class and parameter count), or None.
        datamodule: the data module after ``setup`` (``train_set``/``val_set`` image counts), or None.
        choices: the options picked for config groups (``{"model": "quickstart", ...}``); default:
            those of the running Hydra job.
    """
    choices = _hydra_choices() if choices is None else choices
    data = OmegaConf.to_container(cfg.data, resolve=True)
    net_config = OmegaConf.to_container(cfg.model.generator, resolve=True) if cfg.model.get("generator") else {}
    target = str(net_config.get("_target_", ""))
    return {
        "card_version": CARD_VERSION,
        "name": choices.get("experiment") or choices.get("model") or target.rsplit(".", 1)[-1].lower() or "model",
        "scale": data.get("scale"),
        "generator": {
            "class": type(generator).__name__ if generator is not None else target.rsplit(".", 1)[-1],
            "target": target,
            "params": sum(p.numel() for p in generator.parameters()) if generator is not None else None,
        },
        "degradation": _degradation(data, choices.get("data/degradation")),
        "data": _data(data, datamodule),
        "validation": None,
        "srlab": srlab_version(),
    }


def _hydra_choices() -> dict[str, str]:
    """The options picked for config groups in the running Hydra job (``model: quickstart``), else {}."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return _plain_choices(OmegaConf.select(HydraConfig.get(), "runtime.choices", default=None))


def _plain_choices(node: Any) -> dict[str, str]:
    choices = OmegaConf.to_container(node) if OmegaConf.is_config(node) else dict(node or {})
    return {k: str(v) for k, v in choices.items() if v not in (None, "null")}


def _data_folder(data: dict) -> Path | None:
    keys = _FOLDER_KEYS.get(data.get("source"), ("train_dir", "root", "hq_dir", "samples_dir"))
    value = next((data[k] for k in keys if data.get(k)), None)
    return Path(str(value)).expanduser() if value else None


def _degradation(data: dict, preset: str | None) -> dict:
    """The settings ``data.degradation`` means (every key: the card copies them), or the prepare settings of given pairs."""
    value = data.get("degradation")
    settings = settings_of(value, data.get("source") or "samples")
    preset = preset or (value if isinstance(value, str) else None)
    out = {"preset": preset, "lq": "made on the fly", "settings": settings}
    if settings.get("kind") == "none":  # LQ images are given (data=paired)
        out.update(lq="given pairs", settings=None)
        folder = _data_folder(data)
        summary = _prepare_summary(folder, data.get("hq_dir"))
        if summary is not None:
            out["lq"] = "prepared by srlab.prepare"
            given = summary.get("settings") or {}
            out["settings"] = {"kind": "bicubic", **{k: given[k] for k in _PREPARE_KEYS if k in given}}
    return out


def _prepare_summary(root: Path | None, hq_dir: str | None) -> dict | None:
    """``prepare_summary.json`` beside the pairs (written by ``srlab.prepare``), or None."""
    for folder in (root, Path(str(hq_dir)).expanduser().parent if hq_dir else None):
        file = folder / "prepare_summary.json" if folder else None
        if file is not None and file.is_file():
            try:
                return json.loads(file.read_text())
            except (OSError, ValueError):
                return None
    return None


def _data(data: dict, datamodule: Any) -> dict:
    folder = _data_folder(data)
    out: dict[str, Any] = {"source": data.get("source"), "folder": folder.name if folder else None}
    if data.get("val_dir"):
        out["val_folder"] = Path(str(data["val_dir"])).name
    for split in ("train", "val"):
        dataset = getattr(datamodule, f"{split}_set", None)
        items = getattr(dataset, "items", None)
        out[f"{split}_images"] = len(items) if items is not None else None
    if out["train_images"] is not None:
        out["images"] = out["train_images"] + (0 if data.get("val_dir") else out["val_images"] or 0)
    summary = _prepare_summary(folder, data.get("hq_dir")) if data.get("source") == "paired" else None
    if summary and "images_used" in summary:
        out["source_images"] = summary["images_used"]  # photos the pairs were cut from
    return out


def srlab_version() -> dict:
    """srlab's package version, and ``git describe`` of its checkout when it runs from one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("srlab")
    except PackageNotFoundError:
        v = None
    root = Path(__file__).resolve().parents[2]  # srlab/weights/run_card.py -> the checkout
    commit = None
    if (root / ".git").exists():  # an installed wheel has no checkout: the version is all there is
        try:
            out = subprocess.run(["git", "describe", "--tags", "--always", "--dirty"], cwd=root,
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                commit = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": v, "commit": commit}


def best_validation(checkpoint: dict) -> dict | None:
    """The best monitored value a checkpoint's checkpoint callbacks hold (a best checkpoint sees its own value).

    Read from the callbacks' saved states, so it is the same for a checkpoint being written and for
    one written before srlab wrote cards. None without a monitoring checkpoint callback.
    """
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_score") is not None:
            return {"monitor": state["monitor"], "best": round(float(state["best_model_score"]), 4)}
    return None


def card_from_run(ckpt: Path, checkpoint: dict, generator: Any = None) -> dict | None:
    """The card of a checkpoint saved before srlab wrote cards, rebuilt from its run folder; None if it has none.

    ``<run>/checkpoints/<file>.ckpt`` sits beside ``<run>/.hydra/config.yaml`` (the run's config) and
    ``hydra.yaml`` (its group choices). Image counts and the training srlab version are not known
    then, and the card says so (``written``). ``export`` and ``load_generator`` use it.

    Args:
        ckpt: the checkpoint file.
        checkpoint: its loaded content (the best validation value comes from its callback states).
        generator: the built generator (class and parameter count), or None.
    """
    hydra_dir = Path(ckpt).resolve().parent.parent / ".hydra"
    if not (hydra_dir / "config.yaml").is_file():
        return None
    try:
        cfg = OmegaConf.load(hydra_dir / "config.yaml")
        hydra = OmegaConf.load(hydra_dir / "hydra.yaml") if (hydra_dir / "hydra.yaml").is_file() else {}
        choices = _plain_choices(OmegaConf.select(hydra, "hydra.runtime.choices", default=None) if hydra else None)
        card = make_card(cfg, generator, choices=choices)
    except Exception:  # noqa: BLE001 - a config this srlab cannot resolve: no card rather than a wrong one
        return None
    # the srlab that trained it is not recorded anywhere: None rather than the reading one's commit
    return {**card, "validation": best_validation(checkpoint), "srlab": None, "written": REBUILT}
