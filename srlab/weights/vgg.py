"""ImageNet VGG19 weights for the perceptual loss: the torch.hub cache, a download, or a local file.

The only network access in srlab, and only for ``vgg_weights=imagenet`` when the cache lacks the
file: a 3 s probe of download.pytorch.org first, so that offline runs fail at once with what to do.
"""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from srlab.errors import SRLabError
from srlab.weights.files import read_tensors

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"


def vgg19_cache_path() -> Path:
    """Where torchvision/torch.hub keep the ImageNet VGG19 file (``<hub dir>/checkpoints/vgg19-dcbb9e9d.pth``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def _host_reachable(host: str = "download.pytorch.org", port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _imagenet_state_dict() -> dict:
    """ImageNet VGG19 weights from the torch.hub cache, or downloaded there if the host answers."""
    cache = vgg19_cache_path()
    if cache.is_file():
        return read_tensors(cache)
    if _host_reachable():
        try:
            return torch.hub.load_state_dict_from_url(VGG19_URL, progress=False, map_location="cpu", weights_only=True)
        except Exception as exc:  # network errors come in many types; all mean "not available"
            reason = f"download failed ({type(exc).__name__})"
    else:
        reason = "download.pytorch.org is unreachable"
    raise SRLabError(
        f"ImageNet VGG19 weights for the perceptual loss are not available offline ({reason}): put {VGG19_URL} "
        f"at {cache}, or give a local file with vgg_weights=/path/to/vgg19.pth, or run with vgg_weights=random "
        "(randomly initialised features, not a real perceptual loss)"
    )


def _features_subset(state: object, source: str) -> dict:
    """Keys of the features part (``features.N.*`` or bare ``N.*``), renamed to ``N.*``."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SRLabError(f"{source}: not a VGG19 state dict (got {type(state).__name__})")
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("features."):
            out[k.removeprefix("features.")] = v
        elif k.split(".", 1)[0].isdigit():
            out[k] = v
    return out


def vgg19_features(weights: str) -> tuple[dict | None, str]:
    """The ``features`` state dict (``N.weight`` keys) that ``weights`` names, and where it came from.

    Args:
        weights: ``"imagenet"`` (torchvision's IMAGENET1K_V1 file from the torch.hub cache; downloaded
            only when missing and download.pytorch.org answers within 3 s), ``"random"`` (None: the
            extractor keeps its seeded random init) or a path to a torchvision vgg19 state dict (full
            or features-only, ``.pth`` or ``.safetensors``).

    Returns:
        ``(state dict or None, source)`` with source ``"imagenet:<file>"``, ``"random"`` or ``"file:<path>"``.

    Raises:
        SRLabError: weights unavailable or unreadable; the message says what to do.
    """
    weights = str(weights)
    if weights == "random":
        return None, "random"
    if weights == "imagenet":
        return _features_subset(_imagenet_state_dict(), "imagenet"), f"imagenet:{vgg19_cache_path()}"
    if not Path(weights).is_file():
        raise SRLabError(f"vgg_weights={weights}: no such file; use imagenet, random or a vgg19 .pth path")
    return _features_subset(read_tensors(weights), weights), f"file:{weights}"
