"""Reading weights files safely, and the srlab metadata stored in them (the generator's net config).

Nothing read here can run code: torch files go through ``safe_torch_load`` (``weights_only``),
``.safetensors`` through safetensors. A checkpoint of ``srlab.train`` records the generator's Hydra
config under ``hyper_parameters["net_config"]`` (written by :func:`record_net_config`, read by
:func:`stored_net_config`); ``srlab.export`` puts it into its files' metadata and a ``<stem>.json``.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any, NamedTuple

import torch

from srlab.errors import SRLabError

# srlab metadata keys inside an exported .safetensors header
META_NET_CONFIG = "srlab_net_config"
META_NORMALIZED = "srlab_normalized_input"
# the same inside an exported .pth (BasicSR layout plus an "srlab" entry)
PTH_META = "srlab"
_HP_NET_CONFIG = "net_config"  # in a Lightning checkpoint's hyper_parameters
_HP_NORMALIZED = "normalized_input"


class StoredNet(NamedTuple):
    """What a weights file says about its generator: its Hydra config (or None) and its input scaling."""

    config: dict | None
    normalized_input: bool = False


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a torch file with ``weights_only=True``; refuse pickles that would execute code.

    Args:
        path: a ``.pth``/``.pt``/``.ckpt`` file.
        map_location: where tensors are placed.

    Raises:
        SRLabError: the file is missing, unreadable, or its pickle asks for code to run.
    """
    path = Path(path)
    if not path.is_file():
        raise SRLabError(f"{path}: no such checkpoint or weights file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = _reason(exc)
        raise SRLabError(
            f"{path}: refused to load, its pickle asks to run code or build objects that are not plain "
            f"tensors/containers ({first_line}). srlab only loads weights_only files; re-export it from "
            "a trusted environment (e.g. as .safetensors)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other failure means "not a usable checkpoint"; never a traceback
        raise SRLabError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None


def _reason(exc: Exception) -> str:
    """The informative line of torch's weights-only refusal (the 'Unsupported global' one), without ANSI codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if "Unsupported global" in line or "GLOBAL" in line:
            return line.split(" was not an allowed global")[0]
    return lines[0] if lines else type(exc).__name__


def read_tensors(path: str | Path) -> Any:
    """The content of a ``.safetensors`` file (a dict of tensors) or of a torch file (via ``safe_torch_load``)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return safe_torch_load(path)
    if not path.is_file():
        raise SRLabError(f"{path}: no such weights file")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise SRLabError(f"{path}: not a readable .safetensors file ({exc})") from None


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise SRLabError(f"{path}: not a readable .safetensors file ({exc})") from None


def record_net_config(hparams: Any, net_config: dict) -> None:
    """Store the generator's resolved Hydra config in a LightningModule's ``hparams`` (so in its checkpoints)."""
    hparams[_HP_NET_CONFIG] = net_config


def stored_net_config(ckpt: Any, where: str = "weights file") -> StoredNet:
    """The generator config and input scaling a loaded srlab file records (``StoredNet(None)`` when none).

    Reads a Lightning checkpoint of ``srlab.train`` (``hyper_parameters``) or an exported ``.pth``
    (its ``srlab`` entry); ``where`` names the file in errors.
    """
    if not isinstance(ckpt, dict):
        return StoredNet(None)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict) and isinstance(hp.get(_HP_NET_CONFIG), dict):
        return StoredNet(dict(hp[_HP_NET_CONFIG]), bool(hp.get(_HP_NORMALIZED, False)))
    meta = ckpt.get(PTH_META) if isinstance(ckpt.get(PTH_META), dict) else {}
    text = meta.get("net_config_json")
    return StoredNet(_json_config(text, where) if isinstance(text, str) else None,
                     bool(meta.get(_HP_NORMALIZED, False)))


def export_metadata(net_config: dict, normalized_input: bool) -> tuple[dict[str, str], dict]:
    """The metadata ``srlab.export`` writes: (safetensors header entries, entries to add to its .pth dict)."""
    header = {META_NET_CONFIG: json.dumps(net_config), META_NORMALIZED: str(bool(normalized_input)).lower()}
    return header, {PTH_META: {"net_config_json": json.dumps(net_config), _HP_NORMALIZED: bool(normalized_input)}}


def _json_config(text: str, where: str) -> dict:
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SRLabError(f"{where}: its net config is not valid json ({exc})") from None
    if not isinstance(cfg, dict):
        raise SRLabError(f"{where}: its net config is a {type(cfg).__name__}, not a mapping with _target_")
    return cfg


def read_weights(path: Path) -> tuple[Any, StoredNet]:
    """Load a weights file; return (object for ``load_generator_weights``, what it says about its generator).

    The net config comes from the file (checkpoint hyper-parameters or export metadata), else from
    the ``<stem>.json`` that ``srlab.export`` writes beside it, else it is None.
    """
    obj = read_tensors(path)
    if path.suffix == ".safetensors":
        meta = _safetensors_metadata(path)
        cfg = _json_config(meta[META_NET_CONFIG], str(path)) if META_NET_CONFIG in meta else None
        stored = StoredNet(cfg, meta.get(META_NORMALIZED, "false") == "true")
    elif not isinstance(obj, dict):
        raise SRLabError(f"{path}: holds a {type(obj).__name__}, not a dict of weights")
    else:
        stored = stored_net_config(obj, str(path))
    sidecar = path.with_suffix(".json")
    if stored.config is None and sidecar.is_file():
        try:
            stored = stored._replace(config=_json_config(sidecar.read_text(), str(sidecar)))
        except OSError as exc:
            raise SRLabError(f"{sidecar}: not readable ({exc})") from None
    return obj, stored
