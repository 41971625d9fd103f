"""What each architecture declares beside itself: how its state dict is recognised and what it supports.

A net file defines one ``NetSpec`` per architecture (``IMDN_SPEC = NetSpec(...)``); the detection
registry (``SPECS`` in ``srlab.weights.detect``) asks each spec in turn, so adding an architecture never
edits a central table of key patterns.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from srlab.errors import ConfigError

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class NetSpec:
    """One architecture as the registry sees it.

    Args:
        name: the family's usual name (``"IMDN"``), shown in card lines and error messages.
        detect: state dict -> the Hydra config (with ``_target_``) of a net that loads it strictly,
            or None when the keys are not this layout's. It may raise KeyError/IndexError/ValueError
            when anchor keys match but the rest does not; the registry reads that as "not this net".
        scales: the scales the net can be built for (tests build and step each).
        input_range: the value range the layout's published files take (1 for [0, 1], 255 for
            [0, 255]); None when files of this layout exist with both and the loader decides by a probe.
        layouts: short description of the layouts recognised, for "srlab recognises ..." messages.
    """

    name: str
    detect: Callable[[StateDict], dict[str, Any] | None]
    scales: tuple[int, ...]
    input_range: float | None = 1.0
    layouts: str = ""


def indices(sd: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group, full match) over the keys."""
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in sd if (m := rx.fullmatch(k))})


def shape(sd: StateDict, key: str) -> tuple[int, ...]:
    """The shape of ``sd[key]`` as a tuple (KeyError when absent: "not this layout")."""
    return tuple(sd[key].shape)


def shuffle_scale(channels_out: int, channels_in: int) -> int:
    """The PixelShuffle factor r of a conv that maps to ``channels_in * r**2`` channels (ValueError if none)."""
    ratio, rest = divmod(channels_out, channels_in)
    r = math.isqrt(ratio) if rest == 0 else 0
    if r < 1 or r * r != ratio:
        raise ValueError(f"{channels_out} channels are not {channels_in} x a square")
    return r


def shuffle_stack_scale(sd: StateDict, prefix: str, num_feat: int) -> int:
    """Scale of a (conv, PixelShuffle) stack at ``prefix``.N: 3 for one conv to 9F, else 2 per conv."""
    convs = indices(sd, rf"{re.escape(prefix)}\.(\d+)\.weight")
    if len(convs) == 1 and shape(sd, f"{prefix}.{convs[0]}.weight")[0] == 9 * num_feat:
        return 3
    return 2 ** len(convs)


def layout_differences(cfg: Mapping[str, Any], sd: StateDict) -> list[str]:
    """The keys, sorted, that ``sd`` and the net ``cfg`` builds do not share with the same shape ([] when it fits).

    The net is built from ``cfg["_target_"]`` on the meta device (no memory, no init), so detection stays cheap
    and a file that only shares a layout's anchor keys is turned away by its detect, not by a failing strict
    load later. Arguments the net refuses (ConfigError) raise ValueError: no net of the family has that layout.
    """
    module, _, name = cfg["_target_"].rpartition(".")
    net_cls = getattr(importlib.import_module(module), name)
    kwargs = {k: v for k, v in cfg.items() if k != "_target_"}
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in net_cls(**kwargs).state_dict().items()}
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    got = {k: tuple(v.shape) for k, v in sd.items()}
    return sorted(k for k in got.keys() | expected.keys() if got.get(k) != expected.get(k))


def require_layout(cfg: dict[str, Any], sd: StateDict) -> dict[str, Any]:
    """``cfg`` if the net it builds has exactly ``sd``'s keys and shapes, else ValueError naming where they differ."""
    diff = layout_differences(cfg, sd)
    if diff:
        raise ValueError(f"{cfg['_target_'].rpartition('.')[2]} layout differs at {diff[:3]}")
    return cfg
