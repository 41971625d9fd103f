"""Architectures srlab loads through spandrel (MIT; chaiNNer's and ComfyUI's model loader), asked after srlab's own.

spandrel recognises ~40 families from a state dict (SPAN, SAFMN, OmniSR, RealPLKSR, HAT, DAT,
ATD, RCAN, CRAFT, ...) and builds them; srlab keeps what spandrel reads off the file as a plain
Hydra config (``_target_`` = spandrel's class, its constructor arguments), so a detected net is
exported, trained from and reloaded like any srlab net. ``spandrel_extra_arches`` (some of its
families are for non-commercial use only) is asked too when the user installed it; srlab does not
install it.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import torch

# spandrel classes replaced by srlab's fix (same constructor and state-dict names): CRAFT pads one
# extra window on sizes already a multiple of it; RCAN scales its caller's input in place
_FIXED = {"CRAFT": "srlab.nets.craft.CRAFT", "RCAN": "srlab.nets.rcan.RCAN"}
# descriptors of these purposes map an image to an image of the same content (not inpainting, faces)
_PURPOSES = ("SR", "Restoration")


def _registry() -> Any | None:
    try:
        import spandrel
    except ImportError:
        return None
    try:  # non-commercial families: only when the user installed them
        with warnings.catch_warnings():  # its import scripts modules with the deprecated torch.jit
            warnings.simplefilter("ignore")
            import spandrel_extra_arches

            spandrel_extra_arches.install(ignore_duplicates=True)
    except ImportError:
        pass
    return spandrel.MAIN_REGISTRY


def known() -> str:
    """spandrel's architecture names (or a note that spandrel is not installed)."""
    registry = _registry()
    if registry is None:
        return "none (spandrel is not installed: pip install spandrel)"
    return ", ".join(support.architecture.name for support in registry.architectures())


def _target(model: torch.nn.Module, arch_id: str) -> str:
    """The import path of ``model``'s class: srlab's fix, else spandrel's public name for it."""
    if arch_id in _FIXED:
        return _FIXED[arch_id]
    cls = type(model)
    try:
        public = importlib.import_module(f"spandrel.architectures.{arch_id}")
        if getattr(public, cls.__name__, None) is cls:
            return f"{public.__name__}.{cls.__name__}"
    except ImportError:
        pass
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> Any:
    """Tuples as lists, so a config survives json and Hydra unchanged."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def net_config_of(model: torch.nn.Module, arch_id: str) -> dict[str, Any]:
    """The Hydra config that rebuilds a spandrel-built ``model``: its class and non-default constructor arguments."""
    hyper = dict(getattr(model, "hyperparameters", {}) or {})
    try:
        defaults = {k: p.default for k, p in inspect.signature(type(model).__init__).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    args = {k: _plain(v) for k, v in hyper.items() if k not in defaults or defaults[k] != v}
    return {"_target_": _target(model, arch_id), **args}


def detect(sd: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, Any], float] | None:
    """(family, net config, input range 1) for a state dict spandrel recognises as an image-to-image net, else None."""
    registry = _registry()
    if registry is None:
        return None
    from spandrel import ModelLoader, UnsupportedModelError

    try:
        with warnings.catch_warnings():  # building some families warns about torch internals (meshgrid)
            warnings.simplefilter("ignore")
            descriptor = ModelLoader(registry=registry).load_from_state_dict(dict(sd))
    except UnsupportedModelError:
        return None
    except Exception:  # noqa: BLE001 - a family's loader that chokes on another layout: not this family
        return None
    if getattr(descriptor, "purpose", None) not in _PURPOSES:
        return None
    arch = descriptor.architecture
    return arch.name, net_config_of(descriptor.model, arch.id), 1.0
