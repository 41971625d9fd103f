"""Frozen VGG19 feature extractor for perceptual losses; weights are explicit, offline fails fast."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
from torch import nn

from srlab.weights import safe_torch_load
from srlab.errors import SRLabError

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's vgg19 config "E": conv widths per block; every block ends with a 2x2 max-pool
_VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features`` in index order (conv1_1, relu1_1, ..., pool5)."""
    names = []
    for b, widths in enumerate(_VGG19_BLOCKS, start=1):
        for c in range(1, len(widths) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


VGG19_LAYER_NAMES: list[str] = _layer_names()


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


def _build_features(num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` modules of torchvision's vgg19 ``features`` (same indices)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for widths in _VGG19_BLOCKS:
        for w in widths:
            layers += [nn.Conv2d(in_ch, w, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = w
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[:num_layers])


def _imagenet_state_dict() -> dict:
    """ImageNet VGG19 weights from the torch.hub cache, or downloaded there if the host answers."""
    cache = vgg19_cache_path()
    if cache.is_file():
        return safe_torch_load(cache)
    if _host_reachable():
        try:
            return torch.hub.load_state_dict_from_url(VGG19_URL, progress=False, map_location="cpu", weights_only=True)
        except Exception as exc:  # network errors come in many types; all mean "not available"
            reason = f"download failed ({type(exc).__name__})"
    else:
        reason = "download.pytorch.org is unreachable"
    raise SRLabError(
        f"ImageNet VGG19 weights for the perceptual loss are not available offline ({reason}): put {VGG19_URL} "
        f"at {cache}, or give a local file with model.perceptual_loss.vgg_weights=/path/to/vgg19.pth, or run "
        "with model.perceptual_loss.vgg_weights=random (randomly initialised features, not a real perceptual loss; "
        "in a sweep over models write ++model.perceptual_loss.vgg_weights=random)"
    )


def _features_subset(state: dict, source: str) -> dict:
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


def _freeze_as_buffers(module: nn.Module) -> None:
    """Replace every parameter of ``module`` by a non-persistent, gradient-free buffer of the same name."""
    for m in module.modules():
        for name, p in list(m.named_parameters(recurse=False)):
            delattr(m, name)
            m.register_buffer(name, p.detach().requires_grad_(False), persistent=False)


class VGGFeatureExtractor(nn.Module):
    """VGG19 features at one named layer, frozen and in eval mode; inputs are RGB in [0, 1].

    Layer names follow torchvision's ``vgg19().features``: ``convX_Y`` is the conv output before
    its activation (ESRGAN's choice, e.g. ``conv5_4``), ``reluX_Y`` the same after ReLU (SRGAN's
    ``relu5_4``), ``poolX`` the max-pool ending block X. The net is truncated after that layer.

    The VGG weights are frozen by turning them into non-persistent buffers: ``parameters()`` is
    empty (nothing for an optimizer to pick up, ``requires_grad`` is False), ``.to()`` still moves
    them, and they stay out of ``state_dict()``, so training checkpoints do not carry 80 MB of
    VGG; they always come from ``weights``.

    Args:
        layer: layer name, e.g. ``"conv5_4"``.
        use_input_norm: normalize [0, 1] inputs with the ImageNet mean/std the weights expect.
        weights: ``"imagenet"`` (torchvision's IMAGENET1K_V1 file from the torch.hub cache; downloaded
            only when missing and download.pytorch.org answers within 3 s), ``"random"`` (seeded
            random init, for tests and offline smoke runs) or a path to a torchvision vgg19 state dict
            (full or features-only, ``.pth`` or ``.safetensors``).
        seed: seed of the ``"random"`` init.

    Attributes:
        weights_source: ``"imagenet:<file>"``, ``"random(seed=N)"`` or ``"file:<path>"``.

    Raises:
        SRLabError: unknown layer, or weights unavailable/unreadable (message says what to do).
    """

    def __init__(
        self, layer: str = "conv5_4", use_input_norm: bool = True, weights: str = "imagenet", seed: int = 0
    ) -> None:
        super().__init__()
        if layer not in VGG19_LAYER_NAMES:
            raise SRLabError(
                f"perceptual loss layer '{layer}' is not a VGG19 layer; use convX_Y / reluX_Y / poolX, "
                f"e.g. conv5_4 (ESRGAN) or relu5_4 (SRGAN)"
            )
        self.layer = layer
        self.use_input_norm = use_input_norm
        num_layers = VGG19_LAYER_NAMES.index(layer) + 1
        # seeded and forked, so "random" is reproducible and does not disturb the caller's RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = _build_features(num_layers)
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):  # torchvision's VGG init
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        weights = str(weights)
        if weights == "random":
            self.weights_source = f"random(seed={seed})"
        else:
            if weights == "imagenet":
                state, source = _imagenet_state_dict(), "imagenet"
                self.weights_source = f"imagenet:{vgg19_cache_path()}"
            else:
                state, source = self._read_file(weights), weights
                self.weights_source = f"file:{weights}"
            self._load_features(_features_subset(state, source), source)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        _freeze_as_buffers(self.features)
        self.eval()

    @staticmethod
    def _read_file(path: str) -> dict:
        if not os.path.isfile(path):
            raise SRLabError(
                f"model.perceptual_loss.vgg_weights={path}: no such file; use imagenet, random or a vgg19 .pth path"
            )
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        return safe_torch_load(path)

    def _load_features(self, state: dict, source: str) -> None:
        needed = self.features.state_dict()
        missing = [k for k in needed if k not in state]
        if missing:
            raise SRLabError(
                f"{source}: VGG19 weights lack {missing[:3]} needed for layer {self.layer}; "
                "give a torchvision vgg19 state dict (features.N.weight keys)"
            )
        bad = [f"{k}: file {tuple(state[k].shape)} vs net {tuple(v.shape)}" for k, v in needed.items()
               if tuple(state[k].shape) != tuple(v.shape)]  # fmt: skip
        if bad:
            raise SRLabError(f"{source}: not VGG19 weights ({'; '.join(bad[:3])})")
        self.features.load_state_dict({k: state[k] for k in needed})

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Stay in eval mode: the extractor is a fixed measuring instrument."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x`` (B, 3, H, W) in [0, 1] at ``self.layer``: (B, C_layer, H', W')."""
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        return self.features(x)
