"""Inference: open a stored generator (the one door), run it tile by tile, or through onnxruntime.

- :mod:`srlab.infer.stored`: every stored generator (srlab checkpoint or export, a shipped model's
  name, a published weights file, an ONNX file) read into weights, net config and card, once.
- :mod:`srlab.infer.generator`: the built net behind one interface (``SRGenerator``), on a device in a precision.
- :mod:`srlab.infer.tiling`: ``upscale_array``, the tiled forward every tool shares.
- :mod:`srlab.infer.onnx`: ONNX export and the onnxruntime backend (the ``deploy`` extra).
- :mod:`srlab.infer.progress`: the tile progress bar of ``upscale`` and ``evaluate``.
"""

from srlab.infer.generator import PRECISIONS, SRGenerator, load_generator, open_generator, to_device
from srlab.infer.stored import build_net, open_stored, read_stored
from srlab.infer.tiling import tile_count, upscale_array

__all__ = [
    "PRECISIONS", "SRGenerator", "build_net", "load_generator", "open_generator", "open_stored", "read_stored",
    "tile_count", "to_device", "upscale_array",
]  # fmt: skip
