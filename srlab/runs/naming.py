"""Run names: one name per training run, read from its Hydra config, wherever runs are compared.

A sweep's job is named by the overrides whose keys the sweep varies (``model=srgan
optimizer_g.lr=1e-4``); any other run by its model and the date/time of its folder
(``quickstart 2026-11-28_09-49-24``). The W&B run, the sweep summary, ``srlab.compare`` and the
``srlab.evaluate`` label of a checkpoint all get their name from :func:`run_name`, given the
Hydra config of the job (``HydraConfig.get()`` while training, ``<run>/.hydra/hydra.yaml`` later).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

HYDRA_YAML = Path(".hydra") / "hydra.yaml"
# written into the sweep folder when the sweep starts: the command line that launched it
MULTIRUN_YAML = "multirun.yaml"
MAX_NAME = 128  # W&B's limit for a display name
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def short_values(text: str) -> str:
    """Long floats in overrides (an Optuna trial's 6.677511008261826e-05) to 4 significant digits."""
    return re.sub(r"(?<=[=,])-?\d+\.\d{5,}(?:e-?\d+)?", lambda m: f"{float(m.group()):.4g}", text)


def shown_path(path: str | Path) -> str:
    """``path`` relative to the current folder (``..`` where it lies outside): what reports print.

    An absolute path would name the machine's folders in a report that is read elsewhere.
    """
    try:
        return os.path.relpath(Path(path).resolve(), Path.cwd().resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(path).name


def _parse(overrides: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides([str(o) for o in overrides])
    except Exception:  # an override Hydra's grammar rejects today (a renamed plugin): name without it
        return []


def _select(cfg: DictConfig, key: str) -> Any:
    try:  # never resolve more than the key: Hydra nodes hold ${now:...} and launcher-only values
        return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    except Exception:
        return None


def swept_keys(hydra_cfg: DictConfig, launch_overrides: list[str]) -> list[str]:
    """Keys a multirun varies: sweeps in ``hydra.sweeper.params`` and on the launching command line.

    Args:
        hydra_cfg: the job's ``hydra`` node.
        launch_overrides: the overrides of the multirun command (the sweep's ``multirun.yaml``).
    """
    params = _select(hydra_cfg, "sweeper.params") or {}
    lines = [f"{key}={value}" for key, value in dict(params).items()] + list(launch_overrides)
    keys: list[str] = []
    for override in _parse(lines):
        if override.is_sweep_override() and override.key_or_group not in keys:
            keys.append(override.key_or_group)
    return keys


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its last two parts, longer where two keys would read the same.

    ``model.optimizer_g.lr`` -> ``optimizer_g.lr``; ``model`` stays ``model``.
    """
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(min(2, len(parts)), len(parts) + 1):
            tail = ".".join(parts[-n:])
            if sum(k == tail or k.endswith("." + tail) for k in keys) == 1:
                break
        out[key] = tail
    return out


def _stamp(folder: Path) -> str:
    """``<date>_<time>`` for Hydra's default ``<date>/<time>`` folders, else the folder's name."""
    return f"{folder.parent.name}_{folder.name}" if _DATE.fullmatch(folder.parent.name) else folder.name


def swept_overrides(hydra_cfg: DictConfig, launch_overrides: list[str] | None = None) -> list[tuple[str, Any]]:
    """The job's overrides of the keys its multirun varies, as (short key, parsed Hydra override); [] outside one."""
    if not str(_select(hydra_cfg, "mode")).endswith("MULTIRUN"):
        return []
    keys = swept_keys(hydra_cfg, launch_overrides or [])
    names = short_keys(keys)
    job = [o for o in _parse(list(_select(hydra_cfg, "overrides.task") or [])) if o.key_or_group in names]
    return [(names[o.key_or_group], o) for o in sorted(job, key=lambda o: keys.index(o.key_or_group))]


def run_name(hydra_cfg: DictConfig, launch_overrides: list[str] | None = None) -> str:
    """The run's name: its swept overrides in a sweep, else its model and the date/time of its folder.

    Args:
        hydra_cfg: the job's ``hydra`` node (``HydraConfig.get()``, or ``.hydra/hydra.yaml`` read back).
        launch_overrides: the multirun command's overrides (None or [] for a single run).
    """
    swept = swept_overrides(hydra_cfg, launch_overrides)
    if swept:
        return short_values(" ".join(f"{key}={o.input_line.split('=', 1)[1]}" for key, o in swept))[:MAX_NAME]
    model = _select(hydra_cfg, "runtime.choices.model") or _select(hydra_cfg, "job.name") or "run"
    folder = Path(str(_select(hydra_cfg, "runtime.output_dir") or "run"))
    if str(_select(hydra_cfg, "mode")).endswith("MULTIRUN"):  # a multirun that varies nothing
        return f"{model} {_stamp(folder.parent)} #{_select(hydra_cfg, 'job.num')}"[:MAX_NAME]
    return f"{model} {_stamp(folder)}"[:MAX_NAME]


def launch_overrides(run_dir: str | Path) -> list[str]:
    """The overrides of the multirun command that made ``run_dir`` (from the sweep's ``multirun.yaml``)."""
    for folder in list(Path(run_dir).parents)[:3]:  # the sweep folder, above the job's subdir
        file = folder / MULTIRUN_YAML
        if file.is_file():
            data = yaml.safe_load(file.read_text()) or {}
            return [str(o) for o in (((data.get("hydra") or {}).get("overrides") or {}).get("task") or [])]
    return []


def hydra_config_of(run_dir: str | Path) -> DictConfig | None:
    """The ``hydra`` node a run was started with (``<run>/.hydra/hydra.yaml``), or None."""
    file = Path(run_dir) / HYDRA_YAML
    if not file.is_file():
        return None
    data = yaml.safe_load(file.read_text()) or {}
    return OmegaConf.create(data.get("hydra") or {})


def name_of_run_dir(run_dir: str | Path) -> str | None:
    """:func:`run_name` of a finished run folder; None when it has no Hydra record."""
    hydra_cfg = hydra_config_of(run_dir)
    return None if hydra_cfg is None else run_name(hydra_cfg, launch_overrides(run_dir))


def current_job() -> tuple[DictConfig, list[str]] | None:
    """The ``hydra`` node of the job running in this process and its multirun's command line; None outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    output_dir = _select(hydra_cfg, "runtime.output_dir")
    return hydra_cfg, launch_overrides(output_dir) if output_dir else []


def name_of_current_run() -> str | None:
    """:func:`run_name` of the Hydra job running in this process; None outside Hydra."""
    job = current_job()
    return None if job is None else run_name(*job)


def swept_values_of_current_run() -> dict[str, Any]:
    """Short key -> value of each override the current job's multirun varies (W&B's top-level config)."""
    job = current_job()
    return {} if job is None else {key: o.value() for key, o in swept_overrides(*job)}
