"""Stand-in ImageNet backbones for the perceptual metrics: seeded random conv weights in a temporary torch.hub.

torchvision loads the whole model (strict), so the classifier is there too, as zero-stride tensors
that take a few bytes on disk; the conv layers are random at He scale (features neither explode nor
vanish), stored in fp16 to keep the files small (torchvision copies them into fp32 parameters).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from srlab.metrics.perceptual import backbone


def write_backbone(hub_dir: Path, name: str, seed: int = 0, zero: bool = False) -> Path:
    """Write metric ``name``'s backbone file where torchvision reads it: ``hub_dir/checkpoints/<file>``."""
    spec = backbone(name)
    with torch.device("meta"):  # shapes only: building VGG16 for real initialises 138M parameters
        shapes = {k: v.shape for k, v in getattr(torchvision.models, spec.arch)().state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.startswith("features.") and not zero:
            fan_in = shape[1:].numel() if len(shape) > 1 else 1
            scale = (2.0 / fan_in) ** 0.5 if len(shape) > 1 else 0.01
            state[key] = (torch.randn(shape, generator=gen) * scale).half()
        else:
            state[key] = torch.zeros((), dtype=torch.float16).expand(shape)
    path = hub_dir / "checkpoints" / spec.file
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
