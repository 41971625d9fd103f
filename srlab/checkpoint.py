"""Safe loading of checkpoints and weight files: nothing loaded here can run code."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from srlab.errors import SRLabError


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
