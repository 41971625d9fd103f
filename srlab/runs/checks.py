"""Checks of a composed training config that stop a run before any work, naming the key."""

from __future__ import annotations

import os
import warnings

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from srlab.data.checks import check_data
from srlab.data.val_sets import crops_validated, val_set_metric_names
from srlab.errors import ConfigError, SRLabError
from srlab.metrics import lower_is_better
from srlab.models.base import CROP_METRICS
from srlab.models.nonfinite import check_nonfinite_mode


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (or :class:`SRLabError`) for values that would fail or mislead later.

    Checks data.patch_size (multiple of data.scale, big enough for the discriminator),
    data.degradation (every key, and patches its kernels and resize range can make), data.val_fraction
    and data.val_sets, monitor, learning rates, model.on_nonfinite, trainer.devices against the
    machine, trainer.num_nodes and MASTER_PORT against the launcher, and builds the generator on the
    meta device (no memory) so that a data.scale the net does not support and a model.generator_init
    file that does not fit it fail here, in one line.

    Args:
        cfg: the composed ``train.yaml`` config.
    """
    _check_data(cfg)
    _check_monitor(cfg)
    _check_model_values(cfg)
    _check_devices(cfg.trainer)
    _check_launch(cfg.trainer)
    _check_generator(cfg)


def _check_data(cfg: DictConfig) -> None:
    """The data module's own rules (:func:`srlab.data.checks.check_data`), then those that span data and model."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    check_data(data)
    patch = int(data["patch_size"])
    disc = cfg.model.get("discriminator")
    if disc is not None and "_target_" in disc:
        try:  # smallest HQ patch side the discriminator is meant for, when its class says
            need = getattr(hydra.utils.get_class(disc._target_), "min_input_size", None)
        except Exception:  # noqa: BLE001 - an unknown class fails with its own message when built
            need = None
        name = disc._target_.rsplit(".", 1)[-1]
        if need and patch < need:
            raise ConfigError(f"data.patch_size={patch} is too small for {name}, which needs patches of at least "
                              f"{need} px; raise data.patch_size")
        try:
            multiple = getattr(hydra.utils.get_class(disc._target_), "input_multiple", 1)
        except Exception:  # noqa: BLE001 - as above
            multiple = 1
        if patch % multiple:
            raise ConfigError(f"data.patch_size={patch} must be a multiple of {multiple} for {name}")


def _check_monitor(cfg: DictConfig) -> None:
    """``monitor`` (best checkpoint, early stopping) must name a validation metric this run logs."""
    monitor = cfg.get("monitor")
    if not isinstance(monitor, str) or not monitor.startswith("val/"):
        return  # train/... metrics and custom callbacks are the user's call
    data = cfg.data
    entries = [e for e in (data.get("val_sets") or []) if isinstance(e, (dict, DictConfig))]
    logged = val_set_metric_names(entries)
    if crops_validated(data.get("val_fraction"), data.get("val_dir"), data.get("val_sets")):
        logged = [*CROP_METRICS, *logged]
    if monitor not in logged:
        raise ConfigError(f"monitor={monitor}: no such validation metric in this run; it logs {', '.join(logged)}")
    if lower_is_better(monitor):  # a distance: the best checkpoint is its lowest, early stopping waits for a fall
        maxed = [f"callbacks.{key}.mode=min" for key, node in (cfg.get("callbacks") or {}).items()
                 if isinstance(node, DictConfig) and node.get("monitor") == monitor and node.get("mode", "min") == "max"]
        if maxed:
            raise ConfigError(f"monitor={monitor} is lower-is-better: set {' '.join(maxed)}")


def _check_model_values(cfg: DictConfig) -> None:
    for key in ("optimizer", "optimizer_g", "optimizer_d"):
        node = cfg.model.get(key)
        if node is not None and "lr" in node and float(node.lr) <= 0:
            raise ConfigError(f"model.{key}.lr={node.lr} must be positive")
    if cfg.model.get("on_nonfinite") is not None:
        check_nonfinite_mode(cfg.model.on_nonfinite)


def _check_launch(trainer: DictConfig) -> None:
    """Several nodes need a launcher's environment; a MASTER_PORT that Lightning would bind must be free."""
    nodes, env = trainer.get("num_nodes", 1), os.environ
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ConfigError(f"trainer.num_nodes={nodes!r} must be an integer >= 1")
    torchrun = "TORCHELASTIC_RUN_ID" in env
    if nodes > 1 and not (torchrun or "SLURM_NTASKS" in env or {"RANK", "WORLD_SIZE", "MASTER_ADDR"} <= env.keys()):
        raise ConfigError(f"trainer.num_nodes={nodes} needs one process per node started by a launcher: "
                          f"torchrun --nnodes {nodes} --nproc-per-node 1 --node-rank R --master-addr HOST "
                          "--master-port P -m srlab.train ..., or srun under SLURM (no launcher environment found)")
    devices, world = trainer.get("devices", 1), env.get("WORLD_SIZE")
    if torchrun and world and isinstance(devices, int) and devices > 0 and int(world) != nodes * devices:
        raise ConfigError(f"trainer.num_nodes={nodes} x trainer.devices={devices} = {nodes * devices} processes, "
                          f"but the launcher started WORLD_SIZE={world}; make them agree")
    port = env.get("MASTER_PORT")
    several = nodes > 1 or devices in (-1, "auto") or (isinstance(devices, int) and devices > 1)
    # under torchrun its agent holds the port (the rendezvous store): only a port Lightning binds itself is checked
    if port is not None and not port.isdigit():
        raise ConfigError(f"MASTER_PORT={port!r} must be a port number")
    # Lightning's own ddp launcher re-runs srlab.train for local ranks 1.. with LOCAL_RANK set, while
    # rank 0 already holds MASTER_PORT: only the first process of the first node checks it
    first = str(env.get("NODE_RANK", env.get("RANK", "0"))) == "0" and str(env.get("LOCAL_RANK", "0")) == "0"
    if several and port and not torchrun and first:
        import socket

        with socket.socket() as sock:
            try:
                sock.bind((env.get("MASTER_ADDR", "127.0.0.1"), int(port)))
            except OSError:
                raise ConfigError(f"MASTER_PORT={port} is in use on this machine (another run?); set a free port "
                                  "or unset MASTER_PORT") from None


def _check_devices(trainer: DictConfig) -> None:
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    devices = trainer.get("devices", 1)
    devices = list(devices) if OmegaConf.is_list(devices) else devices
    gpus = torch.cuda.device_count()  # 0 without CUDA
    if accelerator in ("gpu", "cuda") and gpus == 0:
        raise ConfigError(f"trainer.accelerator={accelerator} but torch sees no CUDA GPU on this machine; "
                          "use trainer.accelerator=cpu (or auto)")
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and gpus > 0)
    if isinstance(devices, str):  # Lightning's "2", "0,1", "-1", "auto"
        text = devices.strip()
        if "," in text:
            devices = [int(d) for d in text.split(",") if d.strip().lstrip("-").isdigit()]
        elif text.lstrip("-").isdigit():
            devices = int(text)
    if isinstance(devices, list):  # GPU indices
        bad = [d for d in devices if not isinstance(d, int) or not 0 <= d < gpus]
        if on_gpu and bad:
            raise ConfigError(f"trainer.devices={devices}: no GPU {bad[0]} on this machine (it has {gpus})")
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices == -1:
        return  # "auto" and -1 mean every available device
    if devices < 1:
        raise ConfigError(f"trainer.devices={devices} must be >= 1 (or -1/auto for all)")
    have, what = (gpus, "CUDA GPU(s)") if on_gpu else (os.cpu_count() or 1, "CPU core(s)")
    if devices > have:
        raise ConfigError(f"trainer.devices={devices} but this machine has {have} {what}; "
                          f"use trainer.devices={have} or fewer")


def _check_generator(cfg: DictConfig) -> None:
    """Build the generator on the meta device and load model.generator_init into it (shapes only)."""
    node = cfg.model.get("generator")
    if node is None or "_target_" not in node:
        return
    target = node._target_.rsplit(".", 1)[-1]
    try:
        try:
            with torch.device("meta"):
                net = hydra.utils.instantiate(node)
        except InstantiationException as exc:
            if isinstance(exc.__cause__, SRLabError):
                raise
            net = hydra.utils.instantiate(node)  # some nets (spandrel's HAT, DAT, RCAN) set data at build: real memory
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ConfigError) and "scale" in str(cause):
            raise ConfigError(f"data.scale={cfg.data.scale} is not supported by {target} ({cause})") from None
        if isinstance(cause, SRLabError):  # the nets' own messages usually name their key already
            msg = str(cause)
            raise ConfigError(msg if msg.startswith("model.generator") else f"model.generator: {msg}") from None
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc).strip().splitlines()[-1]
        raise ConfigError(f"model.generator: cannot build {node._target_} ({detail})") from None
    init = cfg.model.get("generator_init")
    if init:
        from srlab.infer import read_stored
        from srlab.weights import load_generator_weights

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "copying into a meta parameter is a no-op": the shapes are what we check
            try:
                stored = read_stored(str(init))
                load_generator_weights(net, stored.state_dict, label=stored.label)
            except SRLabError as exc:
                raise SRLabError(f"model.generator_init: {exc}") from None
