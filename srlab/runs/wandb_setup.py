"""Weights & Biases with zero set-up: online when an API key is found, offline (sync later) otherwise.

``logger=wandb`` builds its logger with :func:`wandb_logger`, adds
:class:`~srlab.runs.wandb_summary.BestInSummary` (the run's summary holds its best validation,
not its last) and :class:`FinishWandbRun` (a Hydra
callback that closes each job's run so a multirun gets one W&B run per job).
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from srlab.errors import SRLabError
from srlab.runs.naming import name_of_current_run, swept_values_of_current_run

log = logging.getLogger(__name__)
MODES = ("online", "offline", "disabled")
SWEPT = "swept"  # prefix of the top-level config entries that hold a sweep's varied values


def has_api_key() -> bool:
    """True when W&B can authenticate without asking: ``WANDB_API_KEY`` or a ``.netrc`` entry for its host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    candidates = [os.environ.get("NETRC"), Path.home() / ".netrc", Path.home() / "_netrc"]
    for path in [Path(p) for p in candidates if p]:
        try:
            if path.is_file() and netrc.netrc(path).authenticators(host):
                return True
        except (netrc.NetrcParseError, OSError):
            continue  # an unreadable netrc means no key, not a crash
    return False


def resolve_mode(mode: str | None = None) -> str:
    """Pick the W&B mode: explicit ``mode``, else ``WANDB_MODE``, else online with a key and offline without.

    Raises:
        SRLabError: online was asked for but there is no key and no terminal to type one into.
    """
    mode = (mode or os.environ.get("WANDB_MODE") or "").strip().lower() or None
    if mode in ("dryrun",):
        mode = "offline"
    if mode in ("disabled", "offline"):
        return mode
    if mode not in (None, "online", "run"):
        raise SRLabError(f"logger.wandb.mode={mode!r}: use one of {', '.join(MODES)} (or leave it null)")
    if has_api_key():
        return "online"
    if mode is None:
        return "offline"
    if not sys.stdin or not sys.stdin.isatty():  # W&B would wait for a key that nobody can type
        raise SRLabError("W&B online mode needs an API key: set WANDB_API_KEY or run `wandb login`, "
                         "or use logger.wandb.mode=offline")
    return "online"


def _hydra_value(key: str) -> Any:
    if not HydraConfig.initialized():
        return None
    try:
        return OmegaConf.select(HydraConfig.get(), key, default=None, throw_on_missing=False)
    except Exception:  # missing or unresolvable values (tests compose without a launcher)
        return None


def default_names(task_name: str) -> tuple[str, str, str]:
    """Run name, group and notes from Hydra; a sweep's jobs share one group.

    The name is :func:`srlab.runs.naming.run_name` (a sweep's job by the overrides its sweep varies,
    any other run by model and date/time), the one every report uses; all of the job's command-line
    overrides go to the notes.
    """
    overrides = " ".join(str(o) for o in (_hydra_value("overrides.task") or []))
    name = name_of_current_run() or task_name
    if task_name.endswith("_stage1"):  # srlab.train's stage 1 runs inside the same Hydra job
        name += " stage1"
    if str(_hydra_value("mode")) == "RunMode.MULTIRUN":
        sweep_dir = Path(str(_hydra_value("sweep.dir") or task_name))
        group = f"{task_name}-{sweep_dir.parent.name}_{sweep_dir.name}"
    else:
        group = task_name
    return name[:128], group[:128], overrides


def wandb_logger(
    save_dir: str,
    task_name: str = "train",
    project: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    mode: str | None = None,
    log_model: bool | str = False,
    **kwargs: Any,
) -> WandbLogger:
    """Build Lightning's WandbLogger that never prompts: offline without an API key, online with one.

    Args:
        save_dir: the run folder; W&B writes ``<save_dir>/wandb/``.
        task_name: used for default name and group.
        project: W&B project (default ``$WANDB_PROJECT`` or ``srlab``).
        name: run name; None gives the run's name in every srlab report (``model=srgan optimizer_g.lr=1e-4``
            in a sweep, ``<model> <date>_<time>`` otherwise); the command-line overrides become the run's notes.
        group: run group; None uses ``task_name`` (one group per sweep in a multirun).
        tags: run tags.
        mode: online, offline or disabled; None decides from the API key (and ``WANDB_MODE``).
        log_model: upload checkpoints as artifacts at the end (True; the best gets alias ``best``) or
            each time one is saved (``all``); offline runs keep them for ``wandb sync``.
        **kwargs: passed on to ``wandb.init`` (``entity``, ``notes``, ``job_type``...).
    """
    import wandb

    if wandb.run is not None:  # an earlier run in this process (tests, notebooks) must not swallow this one
        wandb.finish()
    if os.environ.get("WANDB_MODE", None) == "":  # wandb rejects an empty mode instead of ignoring it
        del os.environ["WANDB_MODE"]
    automatic = mode is None and not os.environ.get("WANDB_MODE")
    mode = resolve_mode(mode)
    default_name, default_group, overrides = default_names(task_name)
    kwargs.setdefault("notes", overrides or None)
    project = project or os.environ.get("WANDB_PROJECT") or "srlab"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if mode == "offline":
        reason = "no API key found (WANDB_API_KEY or ~/.netrc), " if automatic else ""
        rank_zero_info(
            f"W&B: {reason}logging offline to {save_dir}/wandb. "
            f"Upload later with: wandb sync {save_dir}/wandb/offline-run-*"
        )
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        name=name or default_name,
        group=group or default_group,
        tags=[str(t) for t in tags],
        mode=mode,
        log_model=log_model,
        **kwargs,
    )


def log_config(cfg: DictConfig, loggers: list) -> None:
    """Send the resolved run config (without Hydra's own node) to every W&B logger as the run's config.

    Args:
        cfg: the composed config given to ``srlab.train.run``.
        loggers: the trainer's loggers (others are skipped).
    """
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return
    # node by node, so Hydra's own node (with values only a launcher fills in) is never resolved
    config = {key: _resolved(cfg, key) for key in cfg if key != "hydra"}
    # what the sweep varies, top level: the dashboard groups and plots runs by these
    config.update({f"{SWEPT}/{key}": value for key, value in swept_values_of_current_run().items()})
    for logger in wandb_loggers:
        logger.log_hyperparams(config)  # rank zero only; nested dicts stay nested in the W&B UI


def _resolved(cfg: DictConfig, key: str) -> Any:
    node = cfg._get_node(key)
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return cfg[key]


def finish(failed: bool = False) -> None:
    """Close the active W&B run, if any (uploads an online run; flushes an offline one to disk)."""
    if "wandb" not in sys.modules:  # nothing was logged to W&B in this process
        return
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


class FinishWandbRun(Callback):
    """Hydra callback: end the job's W&B run so the next job of a multirun starts its own."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        finish(failed=job_return.status == JobStatus.FAILED)

