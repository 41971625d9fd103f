"""A stored generator ready to run: one interface (``SRGenerator``) on a device, in a precision, on a backend.

The file is opened by the one door (:mod:`srlab.infer.stored`: where the architecture, input range
and card come from); here it is wrapped so that ``lq`` in [0, 1] maps to ``sr`` in [0, 1] whatever it
was trained on, moved to its device and precision, or handed to onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srlab.device import (
    INFER_DTYPES,
    arch_name,
    resolve_device,
    resolve_infer_precision,
    warn_if_emulated,
    warn_if_unsafe,
)
from srlab.errors import SRLabError, first_line
from srlab.infer.stored import StoredWeights, open_stored, read_stored

PRECISIONS = INFER_DTYPES  # fp32, bf16, fp16 (and "auto", resolved per device by srlab.device)


class SRGenerator(nn.Module):
    """A generator that maps ``lq`` in [0, 1] to ``sr`` in [0, 1] whatever it was trained on.

    Args:
        net: the network (``lq`` (B, 3, h, w) -> ``sr`` (B, 3, h*scale, w*scale)).
        scale: its upscaling factor.
        net_config: the Hydra config it was built from (kept for export and reports).
        normalized_input: it was trained on ImageNet-normalized batches (``data.normalize``).
        card: its model card (:mod:`srlab.weights.card`), None for weights that carry none.
    """

    def __init__(
        self, net: nn.Module, scale: int, net_config: dict, normalized_input: bool = False, card: dict | None = None
    ) -> None:
        super().__init__()
        self.net = net
        self.scale = int(scale)
        self.net_config = net_config
        self.normalized_input = bool(normalized_input)
        self.precision, self.precision_why = "fp32", "as built"  # set by to_device
        self.autocast_dtype: torch.dtype | None = None  # bf16/fp16: set by to_device
        self.card = card
        self.label, self.notes = "", []  # what the user called it; what srlab decided that the file did not say

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self._forward(lq)
        # weights are already in this dtype (no cast per call); autocast keeps the fp32 input, and what a
        # net adds to it (a bicubic base), in fp32: the output of a bicubic-residual net is not rounded to
        # bf16's 8 bits (a quickstart model on Set5: 53.6 dB from the fp32 output, 51.5 with all in bf16)
        with torch.autocast(lq.device.type, dtype=self.autocast_dtype):
            return self._forward(lq)

    def _forward(self, lq: torch.Tensor) -> torch.Tensor:
        if not self.normalized_input:
            return self.net(lq)
        from srlab.data.transforms import denormalize, normalize

        return denormalize(self.net(normalize(lq)))


def load_generator(
    weights: str | Path | StoredWeights | None,
    model: str | dict | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    input_range: float | None = None,
) -> SRGenerator:
    """Open ``weights`` through the one door (:func:`srlab.infer.stored.open_stored`), eval mode, on ``device``.

    Args:
        weights: ``.ckpt`` of srlab.train, ``.safetensors``/``.pth`` of srlab.export, published
            weights of any family srlab or spandrel knows, a shipped model's name
            (:mod:`srlab.zoo`), None for the default shipped model, or what ``read_stored`` read.
        model: ``conf/model`` name (or a generator Hydra config dict), used only when the file
            carries no net config of its own; without one the architecture is detected from the
            weights (``srlab.weights.detect``).
        device: torch device.
        precision: ``fp32``, ``bf16``, ``fp16``, or ``auto`` (bf16 where ``device`` computes it natively).
        input_range: 1 or 255 for families published both ways (default: decided by a probe).
    """
    stored = open_stored(weights, model=model, input_range=input_range)
    net = stored.net
    scale = getattr(net, "scale", None)
    gen = SRGenerator(net, scale if isinstance(scale, int) else _probe_scale(net), stored.net_config,
                      stored.normalized_input, stored.card)
    gen.label, gen.notes = stored.weights.label, stored.notes
    return to_device(gen.eval().requires_grad_(False), device, precision)


def open_generator(
    weights: str | Path | None,
    model: str | dict | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str | None = None,
    input_range: float | None = None,
) -> nn.Module:
    """The generator of ``weights`` on ``backend``: ``torch`` (:func:`load_generator`) or ``onnxruntime``.

    An ``.onnx`` file selects onnxruntime; any other weights on onnxruntime are exported to a
    temporary ONNX graph first (seconds). Both answer to ``scale``, ``card`` and ``forward``.
    """
    stored = read_stored(weights)  # a shipped model's name resolved here, once
    is_onnx = stored.raw is None
    backend = backend or ("onnxruntime" if is_onnx else "torch")
    if backend == "torch":
        if is_onnx:
            raise SRLabError(f"--weights {stored.label}: an ONNX file runs with --backend onnxruntime, not torch")
        return load_generator(stored, model=model, device=device, precision=precision, input_range=input_range)
    if precision not in ("fp32", "auto"):  # auto: onnxruntime's CPU provider computes in fp32
        raise SRLabError(
            "--precision applies to --backend torch; for half precision on onnxruntime export one with "
            "python -m srlab.export WEIGHTS -o DIR --onnx --fp16 and pass DIR/generator.onnx as --weights"
        )
    from srlab.infer.onnx import OnnxGenerator, onnx_generator, require

    require("--backend onnxruntime")
    if is_onnx:
        onnx = OnnxGenerator(stored.path, device)
        onnx.label, onnx.notes = stored.label, []
        return onnx
    gen = load_generator(stored, model=model, device="cpu", input_range=input_range)
    onnx = onnx_generator(gen, device)
    onnx.label, onnx.notes = gen.label, gen.notes
    return onnx


def _probe_scale(net: nn.Module) -> int:
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, 16, 16))
    return out.shape[-1] // 16


def to_device(gen: SRGenerator, device: str | torch.device, precision: str = "fp32") -> SRGenerator:
    """Move ``gen`` to ``device`` in ``precision`` (``auto`` resolved for it), checking with a tiny forward.

    The precision used is kept as ``gen.precision`` (``gen.precision_why`` says why) for reports;
    ``auto`` is resolved for the net's class (:func:`srlab.device.auto_precision_for`).
    bf16 and fp16 nets hold their weights in that dtype and channels_last (the layout their fast
    convolutions work in) and run under autocast from an fp32 input: every layer after the first
    reads half-precision activations, while the input and the output stay fp32.
    """
    dev = resolve_device(device) if isinstance(device, str) else device
    arch = arch_name(gen.net)
    precision, why = resolve_infer_precision(precision, dev, arch)
    dtype = PRECISIONS[precision]
    gen = gen.to(device=dev, dtype=dtype)
    gen.autocast_dtype = None if precision == "fp32" else dtype
    if precision != "fp32":
        gen = gen.to(memory_format=torch.channels_last)
        try:
            with torch.inference_mode():
                # 32 px: above the smallest input of every family (RLFN/EFDN/BSRN's attention pools need 15)
                gen(torch.zeros(1, 3, 32, 32, device=dev))
        except (RuntimeError, NotImplementedError) as exc:
            raise SRLabError(f"precision {precision} is not supported on {dev} ({first_line(exc, limit=None)}); "
                             "use fp32") from None
        warn_if_emulated(precision, dev, "precision")
        warn_if_unsafe(precision, arch, f"precision={precision}")
    gen.precision, gen.precision_why = precision, why
    return gen
