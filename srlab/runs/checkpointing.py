"""Checkpoints a run can always continue from: atomic, finite, batch-interval ``last.ckpt``, RNG state, resume.

What a resumed run gets back (``ckpt_path=PATH`` or ``resume=auto``): module weights and buffers
(generator, its EMA copy, discriminator, ``batches_seen``), every optimizer and LR scheduler,
the loops' epoch/batch/step counters, the training loader's position in its epoch
(:mod:`srlab.data.sampling`), the state of every callback (early stopping, the best checkpoint's
score) and, through :class:`RNGState`, the torch/CUDA/numpy/Python random generators.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from srlab.errors import ConfigError, SRLabError
from srlab.weights import safe_torch_load, stored_net_config

log = logging.getLogger(__name__)
LAST = "last.ckpt"


class AtomicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose files are replaced atomically and never hold non-finite weights.

    Lightning's own save goes through fsspec, which writes to a temporary file in the system temp
    folder and moves it into place: an atomic rename only when that folder is on the same
    filesystem as the checkpoints, a plain copy into the final name otherwise (a kill during the
    copy leaves a truncated file). Here the checkpoint is first written complete (and fsynced) to a
    hidden file beside its final name, then renamed over it with ``os.replace``, so a reader sees
    either the previous file or the new one. A model with NaN/Inf parameters is not written at all:
    the previous good checkpoint stays.

    Args:
        **kwargs: everything ``lightning.pytorch.callbacks.ModelCheckpoint`` takes.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            super().load_state_dict(state_dict)
            return
        # Resumed into a new run folder (Hydra's default): Lightning would forget the best score and
        # save the next epoch as "best" whatever its value; keep competing with the earlier run's
        # best instead. Its files stay where they are (files outside dirpath are never deleted).
        self.best_model_score = state_dict["best_model_score"]
        self.best_model_path = state_dict["best_model_path"]
        self.best_k_models = dict(state_dict.get("best_k_models", {}))
        self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
        if "kth_value" in state_dict:
            self.kth_value = state_dict["kth_value"]

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        bad = nonfinite_parameters(trainer.lightning_module)
        if bad:
            log.error("not writing %s: the model has non-finite weights (%s); the previous checkpoint is kept",
                      filepath, ", ".join(bad[:3]))
            return
        atomic_save_checkpoint(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


class LastCheckpoint(AtomicCheckpoint):
    """Keeps ``<dirpath>/last.ckpt`` current: at every training-epoch end and every N training batches.

    The epoch-end save comes after that epoch's validation, so early stopping, the best score and
    the validation-dependent buffers are in it. ``every_n_batches`` counts training *batches*
    (Lightning's ``every_n_train_steps`` counts optimizer steps: two per batch for a GAN); the
    count runs over the whole run and survives a resume. The last batch of an epoch is left to
    the epoch-end save. The file is always named ``last.ckpt`` (no ``last-v1.ckpt``), so a run
    that continues in its own folder replaces it.

    Args:
        dirpath: folder of ``last.ckpt``.
        every_n_batches: also save every this many training batches; ``None``/0 = epoch ends only.
    """

    def __init__(self, dirpath: str | None = None, every_n_batches: int | None = None) -> None:
        if every_n_batches is not None and (isinstance(every_n_batches, bool) or not isinstance(every_n_batches, int)
                                            or every_n_batches < 0):
            raise ConfigError(f"callbacks.model_checkpoint_last.every_n_batches={every_n_batches!r} must be an "
                              "integer >= 0 (0 or null: epoch ends only)")
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, enable_version_counter=False)
        self.every_n_batches = int(every_n_batches or 0)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:  # another folder's last.ckpt is not ours
            super().load_state_dict(state_dict)

    def _save_last(self, trainer: L.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress
        if not self.every_n_batches or progress.total.processed % self.every_n_batches:
            return
        if progress.is_last_batch or progress.current.processed >= trainer.num_training_batches:
            return  # the epoch-end save, after validation, follows
        self._save_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # validation inside an epoch is followed by the epoch-end save

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)  # e.g. max_steps reached mid-epoch


class RNGState(L.Callback):
    """Saves the torch, CUDA, numpy and Python RNG states in checkpoints and restores them on resume.

    Lightning does not checkpoint random states, so a resumed run would draw other patches and
    augmentations than the uninterrupted one. States are stored as tensors and lists of ints, so
    checkpoints still load with ``weights_only=True``. Under DDP every rank restores rank 0's state.
    """

    def state_dict(self) -> dict[str, Any]:
        return rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_state(state_dict)


def rng_state() -> dict[str, Any]:
    """The global random states as plain tensors and lists (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only when as many GPUs are visible)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def nonfinite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of floating-point parameters holding NaN or Inf."""
    return [name for name, p in module.named_parameters()
            if p.is_floating_point() and not bool(torch.isfinite(p.detach()).all())]


def atomic_save_checkpoint(trainer: L.Trainer, filepath: str | Path, weights_only: bool = False) -> None:
    """``trainer.save_checkpoint`` to a hidden file beside ``filepath``, fsync, then ``os.replace`` onto it."""
    filepath = Path(filepath)
    tmp = filepath.with_name(f".{filepath.name}.partial")
    trainer.save_checkpoint(tmp, weights_only)  # all ranks call it; rank 0 writes, then a barrier
    if trainer.is_global_zero:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, filepath)
        try:  # make the rename itself durable
            fd = os.open(filepath.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass
    trainer.strategy.barrier("atomic_save_checkpoint")


# ----------------------------------------------------------------- resume
def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """The checkpoint this run continues from: ``ckpt_path``, else what ``resume`` finds, else None.

    ``resume=auto`` picks the newest (by modification time) ``checkpoints/last.ckpt`` under
    ``./outputs`` (where runs go by default, relative to the launch folder) whose run folder's
    ``.hydra/config.yaml`` has the same ``task_name`` and the same model (``model._target_`` and the
    resolved ``model.generator``); ``resume=DIR`` searches DIR instead. No match: a fresh start,
    logged. The chosen file is checked (safely loaded) before training starts.

    Raises:
        SRLabError: the checkpoint is missing, unsafe, not a training checkpoint, or of another generator.
    """
    ckpt_path, resume = cfg.get("ckpt_path"), cfg.get("resume")
    if ckpt_path:
        path = Path(str(ckpt_path)).expanduser()
        check_training_checkpoint(path, cfg, key="ckpt_path")
        return str(path)
    if resume in (None, False, ""):
        return None
    resume = "auto" if resume is True else resume
    root = (Path("outputs") if resume == "auto" else Path(str(resume)).expanduser()).absolute()
    if resume != "auto" and not root.is_dir():
        raise ConfigError(f"resume={resume}: use auto (search ./outputs) or a folder of earlier runs; "
                          "to continue from a file pass ckpt_path=PATH")
    found = find_resume_checkpoint(root, cfg)
    if found is None:
        log.info("resume=%s: no earlier run of task %r with this model under %s; starting fresh",
                 resume, cfg.get("task_name"), root)
        return None
    check_training_checkpoint(found, cfg, key="resume")
    log.info("resume=%s: continuing from %s", resume, found)
    return str(found)


def _model_identity(cfg: DictConfig) -> tuple[Any, Any, Any]:
    return (cfg.get("task_name"), cfg.model.get("_target_"),
            OmegaConf.to_container(cfg.model.generator, resolve=True) if cfg.model.get("generator") else None)


def find_resume_checkpoint(root: Path, cfg: DictConfig) -> Path | None:
    """Newest ``<run>/checkpoints/last.ckpt`` under ``root`` whose run has the same task and model as ``cfg``."""
    if not root.is_dir():
        return None
    want = _model_identity(cfg)
    candidates = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d != ".hydra"]
        if Path(folder).name != "checkpoints" or LAST not in files:
            continue
        run_config = Path(folder).parent / ".hydra" / "config.yaml"
        try:
            same = run_config.is_file() and _model_identity(OmegaConf.load(run_config)) == want
        except Exception as exc:  # noqa: BLE001 - an unreadable old config just does not match
            log.debug("resume: skipping %s (%s)", run_config, exc)
            same = False
        if same:
            last = Path(folder) / LAST
            candidates.append((last.stat().st_mtime, str(last)))
    return Path(max(candidates)[1]) if candidates else None


def check_training_checkpoint(path: Path, cfg: DictConfig, key: str = "ckpt_path") -> None:
    """Fail before training when ``path`` cannot be resumed from with ``cfg``'s model, naming ``key``."""
    try:
        obj = safe_torch_load(path)  # never runs pickled code
    except SRLabError as exc:  # missing, unreadable or code-running file
        raise SRLabError(f"{key}: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict) or "loops" not in obj:
        raise SRLabError(f"{key}={path}: not a training checkpoint of srlab.train (no loop/optimizer state); "
                         f"to start from its weights use model.generator_init={path}")
    has_d = any(k.startswith("discriminator.") for k in obj["state_dict"])
    if has_d != (cfg.model.get("discriminator") is not None):
        kind = "a GAN's (it has a discriminator)" if has_d else "a model without a discriminator's"
        raise ConfigError(f"{key}={path}: {kind} checkpoint, but the configured model "
                          f"{'has none' if has_d else 'has one'}; resume with the model it was trained with")
    _check_same_data(obj.get("datamodule_hyper_parameters"), cfg, path, key)
    saved = stored_net_config(obj, str(path)).config
    current = OmegaConf.to_container(cfg.model.generator, resolve=True) if cfg.model.get("generator") else None
    if isinstance(saved, dict) and isinstance(current, dict) and saved != current:
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}" for k in diff[:3])
        raise ConfigError(f"{key}={path}: its generator differs from model.generator ({shown}); "
                          "resume with the model settings it was trained with")


# what a resumed run's batches are made of: the checkpoint's position in the epoch means nothing with other values
RESUME_DATA_KEYS = ("source", "train_dir", "root", "hq_dir", "lq_dir", "scale", "patch_size",
                    "batch_size", "samples_per_epoch")


def _check_same_data(saved: Any, cfg: DictConfig, path: Path, key: str) -> None:
    """Fail when the checkpoint was trained on other data settings (a checkpoint of another data set or split)."""
    if not isinstance(saved, dict):  # no record (a checkpoint of another data module): nothing to compare
        return
    current = OmegaConf.to_container(cfg.data, resolve=True)
    diff = [k for k in RESUME_DATA_KEYS if k in saved and k in current and str(saved[k]) != str(current[k])]
    if diff:
        shown = ", ".join(f"data.{k}: checkpoint {saved[k]!r} vs config {current[k]!r}" for k in diff[:3])
        raise ConfigError(f"{key}={path}: trained with other data ({shown}); resume with the data settings it was "
                          f"trained with, or start from its weights with model.generator_init={path}")
