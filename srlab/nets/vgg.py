"""Frozen VGG19 feature extractor for perceptual losses; its weights come in as a state dict (``srlab.weights.vgg``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from srlab.errors import SRLabError

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


def vgg19_layer_index(layer: str) -> int:
    """Index of ``layer`` in ``vgg19().features``; raises naming the valid forms when it is not a VGG19 layer."""
    if layer not in VGG19_LAYER_NAMES:
        raise SRLabError(
            f"perceptual loss layer '{layer}' is not a VGG19 layer; use convX_Y / reluX_Y / poolX, "
            f"e.g. conv5_4 (ESRGAN) or relu5_4 (SRGAN)"
        )
    return VGG19_LAYER_NAMES.index(layer)


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


def _freeze_as_buffers(module: nn.Module) -> None:
    """Replace every parameter of ``module`` by a non-persistent, gradient-free buffer of the same name."""
    for m in module.modules():
        for name, p in list(m.named_parameters(recurse=False)):
            delattr(m, name)
            m.register_buffer(name, p.detach().requires_grad_(False), persistent=False)


class VGGFeatureExtractor(nn.Module):
    """VGG19 features at one or several named layers, frozen and in eval mode; inputs are RGB in [0, 1].

    Layer names follow torchvision's ``vgg19().features``: ``convX_Y`` is the conv output before
    its activation (ESRGAN's choice, e.g. ``conv5_4``), ``reluX_Y`` the same after ReLU (SRGAN's
    ``relu5_4``), ``poolX`` the max-pool ending block X. The net is truncated after that layer.

    The VGG weights are frozen by turning them into non-persistent buffers: ``parameters()`` is
    empty (nothing for an optimizer to pick up, ``requires_grad`` is False), ``.to()`` still moves
    them, and they stay out of ``state_dict()``, so training checkpoints do not carry 80 MB of
    VGG; they always come from ``state_dict``.

    Args:
        layer: layer name, e.g. ``"conv5_4"``; or a list of names, and ``forward`` returns a dict
            name -> features (Real-ESRGAN's conv1_2 ... conv5_4).
        use_input_norm: normalize [0, 1] inputs with the ImageNet mean/std the weights expect.
        state_dict: torchvision vgg19 ``features`` weights with ``N.weight``/``N.bias`` keys (see
            ``srlab.weights.vgg.vgg19_features``); None keeps the seeded random init (tests, offline smoke runs).
        seed: seed of the random init.
        source: names the weights in error messages.

    Raises:
        SRLabError: unknown layer, or weights that lack the layers up to ``layer`` or do not fit them.
    """

    def __init__(
        self,
        layer: str | Sequence[str] = "conv5_4",
        use_input_norm: bool = True,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        seed: int = 0,
        source: str = "state_dict",
    ) -> None:
        super().__init__()
        names = [layer] if isinstance(layer, str) else list(layer)
        indices = {vgg19_layer_index(n): n for n in names}
        self.layer = layer if isinstance(layer, str) else ",".join(names)
        self.use_input_norm = use_input_norm
        self.multi = None if isinstance(layer, str) else indices
        num_layers = max(indices) + 1
        # seeded and forked, so the random init is reproducible and does not disturb the caller's RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = _build_features(num_layers)
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):  # torchvision's VGG init
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        if state_dict is not None:
            self._load_features(state_dict, source)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        _freeze_as_buffers(self.features)
        if self.multi:  # features are kept from the middle of the net: ReLUs must not overwrite them
            for m in self.features.modules():
                if isinstance(m, nn.ReLU):
                    m.inplace = False
        self.eval()

    def _load_features(self, state: Mapping[str, torch.Tensor], source: str) -> None:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Features of ``x`` (B, 3, H, W) in [0, 1] at ``self.layer``: (B, C_layer, H', W'), or a dict
        of them by name when several layers were asked for."""
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        if self.multi is None:
            return self.features(x)
        out = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self.multi:
                out[self.multi[i]] = x
        return out
