"""Build a generator from any srlab or published weights file, and run it tile by tile.

Where the architecture comes from, in order: the ``net_config`` a Lightning ``.ckpt`` of
``srlab.train`` stores in ``hyper_parameters``; the config ``srlab.export`` writes into a
``.safetensors`` header and beside the weights as ``<stem>.json``; the ``generator`` node of
``conf/model/<model>.yaml`` when a model is named; else it is read off the state dict
(``srlab.weights.detect``: RRDBNet, SRVGGNetCompact, SwinIR, EDSR and srlab's nets, published layouts).
Every file is read with ``safe_torch_load`` (``weights_only``) or safetensors: nothing runs code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from srlab.config import model_net_config
from srlab.errors import SRLabError
from srlab.precision import INFER_DTYPES, arch_name, resolve_infer_precision, warn_if_emulated, warn_if_unsafe
from srlab.weights import load_generator_weights, read_weights
from srlab.weights.detect import detect_architecture
from srlab.zoo import resolve_weights

PRECISIONS = INFER_DTYPES  # fp32, bf16, fp16 (and "auto", resolved per device by srlab.precision)


class SRGenerator(nn.Module):
    """A generator that maps ``lq`` in [0, 1] to ``sr`` in [0, 1] whatever it was trained on.

    Args:
        net: the network (``lq`` (B, 3, h, w) -> ``sr`` (B, 3, h*scale, w*scale)).
        scale: its upscaling factor.
        net_config: the Hydra config it was built from (kept for export and reports).
        normalized_input: it was trained on ImageNet-normalized batches (``data.normalize``).
        card: its model card (:mod:`srlab.card`), None for weights that carry none.
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


def build_net(net_config: dict, origin: str) -> nn.Module:
    """Instantiate a generator from its Hydra config, turning failures into one-line errors."""
    if not isinstance(net_config, dict) or "_target_" not in net_config:
        raise SRLabError(f"{origin}: the generator config must be a mapping with _target_, got {net_config!r:.80}")
    try:
        return instantiate(net_config)
    except Exception as exc:  # noqa: BLE001 - any failure to build is a config problem for the user
        raise SRLabError(f"{origin}: cannot build the generator {net_config.get('_target_')} ({exc})") from None


def load_generator(
    weights: str | Path | None,
    model: str | dict | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> SRGenerator:
    """Build the generator that ``weights`` belongs to and load them (eval mode, on ``device``).

    Args:
        weights: ``.ckpt`` of srlab.train, ``.safetensors``/``.pth`` of srlab.export, published
            BasicSR/Real-ESRGAN/ESRGAN/SwinIR ``.pth`` weights, a shipped model's name
            (:mod:`srlab.zoo`), or None for the default shipped model.
        model: ``conf/model`` name (or a generator Hydra config dict), used only when the file
            carries no net config of its own; without one the architecture is detected from the
            weights (``srlab.weights.detect``).
        device: torch device.
        precision: ``fp32``, ``bf16``, ``fp16``, or ``auto`` (bf16 where ``device`` computes it natively).
    """
    path = resolve_weights(weights)
    obj, (net_config, normalized, card) = read_weights(path)
    if net_config is not None:
        origin = str(path)
    elif isinstance(model, dict):
        origin, net_config = f"{path} with the model's generator config", model
    elif model:
        origin, net_config = f"model={model}", model_net_config(model)
    else:
        try:
            arch = detect_architecture(obj)
        except SRLabError as exc:
            raise SRLabError(f"weights={path}: {exc}; or name the architecture with model=NAME") from None
        origin, net_config = f"{path} (detected {arch.name})", arch.net_config
    net = build_net(net_config, origin)
    try:
        load_generator_weights(net, obj, strict=True)
    except SRLabError as exc:
        detail = str(exc).removeprefix("state dict: ")
        raise SRLabError(f"weights={path}: {detail}{_detected_hint(obj)}") from None
    if card is None and path.suffix == ".ckpt":  # saved before srlab wrote cards: rebuilt from its run folder
        from srlab.runs.card import card_from_run

        card = card_from_run(path, obj, net)
    scale = getattr(net, "scale", None)
    gen = SRGenerator(net, scale if isinstance(scale, int) else _probe_scale(net), net_config, normalized, card)
    return to_device(gen.eval().requires_grad_(False), device, precision)


def _detected_hint(obj: object) -> str:
    """What the weights look like, for a model/weights mismatch message ('' if unrecognised)."""
    try:
        arch = detect_architecture(obj)
    except SRLabError:
        return ""
    sizes = " ".join(f"{k}={v}" for k, v in arch.net_config.items() if k != "_target_")
    return f"; the file holds {arch.name} {sizes} (leave model unset to use it)"


def _probe_scale(net: nn.Module) -> int:
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, 16, 16))
    return out.shape[-1] // 16


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SRLabError(f"--device {name}: not a torch device (use auto, cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SRLabError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SRLabError(f"--device {name}: MPS is not available on this machine (use auto or cpu)")
    return dev


def to_device(gen: SRGenerator, device: str | torch.device, precision: str = "fp32") -> SRGenerator:
    """Move ``gen`` to ``device`` in ``precision`` (``auto`` resolved for it), checking with a tiny forward.

    The precision used is kept as ``gen.precision`` (``gen.precision_why`` says why) for reports;
    ``auto`` is resolved for the net's class (:func:`srlab.precision.auto_precision_for`).
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
                gen(torch.zeros(1, 3, 8, 8, device=dev))
        except (RuntimeError, NotImplementedError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SRLabError(f"precision {precision} is not supported on {dev} ({first}); use fp32") from None
        warn_if_emulated(precision, dev, "precision")
        warn_if_unsafe(precision, arch, f"precision={precision}")
    gen.precision, gen.precision_why = precision, why
    return gen


@torch.inference_mode()
def upscale_array(
    gen: SRGenerator, img: np.ndarray, tile: int = 0, tile_pad: int = 10, on_tile: Callable[[], None] | None = None
) -> np.ndarray:
    """Upscale an RGB uint8 or uint16 (H, W, 3) image, returning the same dtype at ``scale`` x size.

    Only one padded tile at a time is on the device; each output tile is quantized there and
    copied into a CPU array of the output dtype, so accelerator memory grows with ``tile``, not
    with the image. With ``tile_pad`` at least the net's receptive radius (in input pixels) the
    result equals the untiled one: every tile sees the same neighbourhood, and borders of the
    image get the same zero padding.

    Args:
        gen: the generator (its parameters' device and dtype are used), or an
            ``srlab.deploy.OnnxGenerator``.
        img: (H, W, 3) uint8 (values /255) or uint16 (values /65535).
        tile: tile size in input pixels; 0 runs the whole image at once.
        tile_pad: context added around each tile (clamped at image borders) and cropped after.
        on_tile: called after each tile (a progress bar's step); :func:`tile_count` tiles in all.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected (H, W, 3) uint8/uint16, got {img.shape} {img.dtype}")
    # a generator without parameters (srlab.deploy.OnnxGenerator) takes float32 CPU tensors
    param = next(gen.parameters(), torch.empty(0))
    peak = 255.0 if img.dtype == np.uint8 else 65535.0
    qdtype = torch.uint8 if img.dtype == np.uint8 else torch.int32  # torch has no uint16 copy to numpy
    s, (h, w) = gen.scale, img.shape[:2]
    lq = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))  # (3, H, W) CPU, input dtype
    out = np.empty((h * s, w * s, 3), dtype=img.dtype)
    tile = tile if tile and tile > 0 else max(h, w)
    for ty in range(math.ceil(h / tile)):
        for tx in range(math.ceil(w / tile)):
            y0, x0 = ty * tile, tx * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            x = lq[:, py0:py1, px0:px1].to(param.device, torch.float32).div_(peak)[None]  # (1, 3, h', w')
            if x.device.type == "cpu" or param.dtype != torch.float32:
                # a channels_last input makes oneDNN run every conv in NHWC, without layout reorders:
                # RRDBNet x4 tiles 1.1-1.25x faster, ~25% less memory (`python -m srlab.bench --sections infer`);
                # bf16/fp16 nets are channels_last on every device (to_device)
                x = x.contiguous(memory_format=torch.channels_last)
            half = getattr(gen, "autocast_dtype", None)  # an OnnxGenerator has none
            sr = gen(x if half else x.to(param.dtype))[0].float()  # (3, h'*s, w'*s)
            sr = sr[:, (y0 - py0) * s : (y1 - py0) * s, (x0 - px0) * s : (x1 - px0) * s]
            q = sr.clamp_(0, 1).mul_(peak).round_().to(qdtype).permute(1, 2, 0).cpu().numpy()
            out[y0 * s : y1 * s, x0 * s : x1 * s] = q
            if on_tile is not None:
                on_tile()
    return out


def tile_count(h: int, w: int, tile: int) -> int:
    """How many tiles :func:`upscale_array` runs for an (h, w) image (1 when ``tile`` is 0)."""
    if not tile or tile <= 0:
        return 1
    return math.ceil(h / tile) * math.ceil(w / tile)
