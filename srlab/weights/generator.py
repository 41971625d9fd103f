"""Generator weights in published layouts (BasicSR, Real-ESRGAN, original ESRGAN and EDSR) and srlab files, loaded into a net."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from srlab.errors import SRLabError
from srlab.weights.files import read_tensors
from srlab.weights.layouts import convert_edsr_original, convert_old_esrgan, is_edsr_original, is_old_esrgan

# Wrapper keys seen in the wild, in order of preference: EMA weights first (what BasicSR/Real-ESRGAN
# release and evaluate), then plain training weights.
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "generator", "net_g", "netG", "model", "net")
# Prefixes inside a Lightning checkpoint's state_dict; the EMA copy is preferred when present.
_SRLAB_PREFIXES = ("generator_ema.", "generator.")
_STRIP_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile wrappers


class LoadResult(NamedTuple):
    """Keys ignored by a non-strict load (both empty after a strict one)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_common_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for p in _STRIP_PREFIXES:
            if sd and all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def unwrap(obj: Any, keys: tuple[str, ...]) -> Any:
    """Descend through nested containers (the first of ``keys`` present) to a flat name -> tensor mapping."""
    for _ in range(4):
        if _is_tensor_dict(obj) or not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in keys if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if inner is None:
            break
        obj = inner
    return obj


def extract_generator_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """The generator's state dict, with srlab/BasicSR names, from any supported loaded object.

    Handles BasicSR/Real-ESRGAN ``{"params_ema"|"params": ...}`` (EMA preferred), ``module.``
    prefixes, the original ESRGAN and EDSR repositories' layouts (``srlab.weights.layouts``), srlab
    Lightning checkpoints (``state_dict`` with
    ``generator_ema.``/``generator.`` prefixes, EMA preferred) and plain state dicts.

    Raises:
        SRLabError: nothing in ``obj`` looks like generator weights (e.g. a discriminator only).
    """
    obj = unwrap(obj, _WRAPPER_KEYS)
    if not isinstance(obj, Mapping):
        raise SRLabError(f"holds a {type(obj).__name__}, not a state dict of generator weights")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise SRLabError(f"holds no tensors that look like generator weights (top-level keys: {list(obj)[:5]})")
    sd = _strip_common_prefixes(sd)
    for prefix in _SRLAB_PREFIXES:
        picked = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if picked:
            sd = _strip_common_prefixes(picked)
            break
    else:
        if all(k.startswith(("discriminator.", "net_d.", "netD.")) for k in sd):
            raise SRLabError("holds only discriminator weights, not a generator")
    sd.pop("n_averaged", None)  # torch.optim.swa_utils.AveragedModel bookkeeping
    if is_old_esrgan(sd):
        sd = convert_old_esrgan(sd)
    elif is_edsr_original(sd):
        sd = convert_edsr_original(sd)
    return sd


def _rrdb_hint(sd: Mapping[str, torch.Tensor]) -> str:
    """Sizes of an RRDBNet as read off a state dict, or '' when it is not one."""
    try:
        num_block = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body.") and ".rdb1." in k)
        return (
            f"; the file looks like RRDBNet num_feat={sd['conv_first.weight'].shape[0]} num_block={num_block} "
            f"num_grow_ch={sd['body.0.rdb1.conv1.weight'].shape[0]}"
        )
    except (ValueError, KeyError, IndexError):
        return ""


def load_generator_weights(
    net: nn.Module, source: str | Path | Mapping[str, Any], strict: bool = True, label: str | None = None
) -> LoadResult:
    """Load generator weights into ``net`` from a file or an already loaded object.

    Args:
        net: the generator to fill (e.g. ``RRDBNet``).
        source: ``.pth``/``.pt``/``.ckpt`` (read with ``safe_torch_load``: never runs pickled code),
            ``.safetensors``, or a state dict / checkpoint dict. Layouts: see
            ``extract_generator_state_dict``.
        strict: every key of ``net`` must be in the file and vice versa. Shapes must always match.
        label: names the weights in messages (default: the path, or "state dict").

    Returns:
        the missing and unexpected keys (empty when ``strict``).

    Raises:
        SRLabError: unreadable/unsafe file, no generator inside, or keys/shapes that do not fit
            ``net``; the one-line message names the first offending keys and shapes.
    """
    label = label or (str(source) if isinstance(source, (str, Path)) else "state dict")
    obj = read_tensors(source) if isinstance(source, (str, Path)) else source
    try:
        sd = extract_generator_state_dict(obj)
    except SRLabError as exc:
        raise SRLabError(f"{label}: {exc}") from None
    return load_canonical_weights(net, sd, strict, label)


def load_canonical_weights(
    net: nn.Module, sd: Mapping[str, torch.Tensor], strict: bool = True, label: str = "state dict"
) -> LoadResult:
    """Load a state dict already in srlab's names (``extract_generator_state_dict``'s output) into ``net``."""
    check_fit(net, sd, label, strict, "set model.generator options (num_feat, num_block, num_grow_ch, scale) to the "
              f"file's network{_rrdb_hint(sd)}", _rrdb_hint(sd))
    own = net.state_dict()
    net.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return LoadResult([k for k in own if k not in sd], [k for k in sd if k not in own])


def check_fit(net: nn.Module, sd: Mapping[str, torch.Tensor], label: str, strict: bool, advice: str, hint: str = "",
              other: str = "discriminator") -> None:
    """Raise one line when ``sd`` does not fit ``net``: no common key, a shape mismatch, or (``strict``) key sets differ.

    Args:
        net: the network to fill.
        sd: the file's state dict.
        label: names the file in the message.
        strict: the key sets must be equal.
        advice: what to change, appended to a mismatch message.
        hint: appended when nothing fits (e.g. the sizes read off the file).
        other: the network the file may be of instead, when nothing fits.
    """
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs net {tuple(v.shape)}"
        for k, v in own.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    name = type(net).__name__
    if len(missing) == len(own) and own:
        raise SRLabError(
            f"{label}: none of its {len(sd)} tensors fit {name} (file keys like {list(sd)[:3]}, net keys like "
            f"{list(own)[:3]}); is it weights of another network (e.g. a {other})?{hint}"
        )
    if shapes or (strict and (missing or unexpected)):
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {'; '.join(shapes[:3])}")
        if strict and missing:
            parts.append(f"{len(missing)} missing keys: {', '.join(missing[:3])}")
        if strict and unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {', '.join(unexpected[:3])}")
        raise SRLabError(f"{label}: weights do not fit {name} ({'; '.join(parts)}); {advice}")
