"""Reading weights files safely, and the srlab metadata stored in them (net config, model card).

Nothing read here can run code: torch files go through ``safe_torch_load`` (``weights_only``),
``.safetensors`` through safetensors. A checkpoint of ``srlab.train`` records the generator's Hydra
config under ``hyper_parameters["net_config"]`` (written by :func:`record_net_config`, read by
:func:`stored_net_config`) and its model card (:mod:`srlab.weights.card`) under ``hyper_parameters["card"]``
(:func:`record_card`); ``srlab.export`` puts both into its files' metadata, and beside them the
config as ``<stem>.json`` and the card as ``<stem>.card.json`` (:func:`read_card` reads any of them).
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any, NamedTuple

import torch

from srlab.errors import SRLabError

log = logging.getLogger(__name__)

# srlab metadata keys inside an exported .safetensors header
META_NET_CONFIG = "srlab_net_config"
META_NORMALIZED = "srlab_normalized_input"
META_CARD = "srlab_card"  # the model card as json
# the same inside an exported .pth (BasicSR layout plus an "srlab" entry)
PTH_META = "srlab"
_HP_NET_CONFIG = "net_config"  # in a Lightning checkpoint's hyper_parameters
_HP_NORMALIZED = "normalized_input"
_HP_CARD = "card"
_PTH_CARD = "card_json"  # in the .pth's "srlab" entry


class StoredNet(NamedTuple):
    """What a weights file says about its generator: its Hydra config (or None), input scaling and model card."""

    config: dict | None
    normalized_input: bool = False
    card: dict | None = None


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


def record_card(hparams: Any, card: dict) -> None:
    """Store a model card in a LightningModule's ``hparams`` or a checkpoint's ``hyper_parameters``."""
    hparams[_HP_CARD] = card


def stored_net_config(ckpt: Any, where: str = "weights file") -> StoredNet:
    """The generator config and input scaling a loaded srlab file records (``StoredNet(None)`` when none).

    Reads a Lightning checkpoint of ``srlab.train`` (``hyper_parameters``) or an exported ``.pth``
    (its ``srlab`` entry); ``where`` names the file in errors.
    """
    if not isinstance(ckpt, dict):
        return StoredNet(None)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict) and isinstance(hp.get(_HP_NET_CONFIG), dict):
        card = hp.get(_HP_CARD) if isinstance(hp.get(_HP_CARD), dict) else None
        return StoredNet(dict(hp[_HP_NET_CONFIG]), bool(hp.get(_HP_NORMALIZED, False)), card)
    meta = ckpt.get(PTH_META) if isinstance(ckpt.get(PTH_META), dict) else {}
    text = meta.get("net_config_json")
    return StoredNet(_json_config(text, where) if isinstance(text, str) else None,
                     bool(meta.get(_HP_NORMALIZED, False)), card_from_json(meta.get(_PTH_CARD), where))


def export_metadata(net_config: dict, normalized_input: bool, card: dict | None = None) -> tuple[dict[str, str], dict]:
    """The metadata ``srlab.export`` writes: (safetensors header entries, entries to add to its .pth dict)."""
    header = {META_NET_CONFIG: json.dumps(net_config), META_NORMALIZED: str(bool(normalized_input)).lower()}
    pth = {"net_config_json": json.dumps(net_config), _HP_NORMALIZED: bool(normalized_input)}
    if card is not None:
        header[META_CARD] = pth[_PTH_CARD] = json.dumps(card)
    return header, {PTH_META: pth}


def card_path(path: Path) -> Path:
    """``<stem>.card.json``: the model card beside a weights file (written by ``srlab.export``, or by hand)."""
    return path.with_name(f"{path.stem}.card.json")


def read_card(path: str | Path) -> dict | None:
    """The model card of a weights file, or None (e.g. published BasicSR weights without a card json).

    A ``.safetensors`` is read without loading its tensors; see :func:`read_weights` for the order.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise SRLabError(f"{path}: no such weights file")
        card = card_from_json(_safetensors_metadata(path).get(META_CARD), str(path))
        return card if card is not None else _card_beside(path)
    return read_weights(path)[1].card


def card_from_json(text: Any, where: str) -> dict | None:
    # a damaged card must not stop anyone from using the weights: it reads as "no card"
    if not isinstance(text, str):
        return None
    try:
        card = json.loads(text)
    except ValueError:
        log.warning("%s: its model card is not valid json; ignored", where)
        return None
    return card if isinstance(card, dict) else None


def _card_beside(path: Path) -> dict | None:
    file = card_path(path)
    try:
        return card_from_json(file.read_text(), str(file)) if file.is_file() else None
    except OSError:
        return None


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
    the ``<stem>.json`` that ``srlab.export`` writes beside it, else it is None; the model card
    likewise, else from ``<stem>.card.json``.
    """
    obj = read_tensors(path)
    if path.suffix == ".safetensors":
        meta = _safetensors_metadata(path)
        cfg = _json_config(meta[META_NET_CONFIG], str(path)) if META_NET_CONFIG in meta else None
        card = card_from_json(meta.get(META_CARD), str(path))
        stored = StoredNet(cfg, meta.get(META_NORMALIZED, "false") == "true", card)
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
    return obj, stored if stored.card is not None else stored._replace(card=_card_beside(path))
