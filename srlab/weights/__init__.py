"""Every weights file srlab reads, in one place: nothing else opens a checkpoint or a weights file.

- :mod:`srlab.weights.files`: safe loading (nothing can run code) and what srlab records in its
  checkpoints and exports: the generator config and the model card.
- :mod:`srlab.weights.generator`: generator weights in srlab, BasicSR, Real-ESRGAN, original
  ESRGAN and EDSR-PyTorch layouts (renamed in :mod:`srlab.weights.layouts`), loaded into a net with
  one-line errors.
- :mod:`srlab.weights.detect`: the architecture and its sizes read off a state dict.
- :mod:`srlab.weights.discriminator`: discriminator weights (Real-ESRGAN's U-Net netD, srlab checkpoints).
- :mod:`srlab.weights.vgg`: ImageNet VGG19 weights for the perceptual loss (cache, download, file).
"""

from srlab.weights.discriminator import load_discriminator_weights
from srlab.weights.files import (
    StoredNet,
    card_path,
    export_metadata,
    read_card,
    read_tensors,
    read_weights,
    record_card,
    record_net_config,
    safe_torch_load,
    stored_net_config,
)
from srlab.weights.generator import LoadResult, convert_old_esrgan, extract_generator_state_dict, load_generator_weights

__all__ = [
    "LoadResult",
    "StoredNet",
    "card_path",
    "convert_old_esrgan",
    "export_metadata",
    "extract_generator_state_dict",
    "load_discriminator_weights",
    "load_generator_weights",
    "read_card",
    "read_tensors",
    "read_weights",
    "record_card",
    "record_net_config",
    "safe_torch_load",
    "stored_net_config",
]
