"""The one door for stored generators: any file or shipped model's name -> weights, net config and card.

Every tool that opens generator weights goes through here (``upscale``, ``evaluate``, ``export``,
``compare``, ``model.generator_init``): a shipped model's name is resolved once, the file is read
safely once (:func:`srlab.weights.read_weights`), the generator's state dict is put in srlab's
names once (wrappers, prefixes, old layouts), and what the file does not say is decided once:

- the architecture: the file's own net config (srlab checkpoints and exports), else
  ``model=NAME``, else detected from the state dict (:mod:`srlab.weights.detect`);
- the input range of families published both ways ([0, 1] or [0, 255]): by a probe, unless told;
- the card of a checkpoint saved before srlab wrote cards: rebuilt from its run folder.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_object, instantiate
from torch import nn

from srlab.config import model_net_config
from srlab.errors import SRLabError
from srlab.weights import extract_generator_state_dict, read_weights
from srlab.weights.generator import load_canonical_weights
from srlab.weights.detect import detect_architecture
from srlab.weights.files import StoredNet
from srlab.zoo import names as shipped_names
from srlab.zoo import resolve_weights

INPUT_RANGES = (1.0, 255.0)


@dataclass
class StoredWeights:
    """A stored generator as read, before any net is built.

    Args:
        path: the file (a shipped model's name resolved).
        label: what messages call it: the name the user gave.
        raw: the loaded object (checkpoint dict, state dict); None for ONNX.
        state_dict: the generator's weights in srlab's names (the EMA copy where there is one).
        stored: what the file says itself: net config, input normalization, card.
    """

    path: Path
    label: str
    raw: Any
    state_dict: dict[str, torch.Tensor]
    stored: StoredNet

    def training_weights(self) -> dict[str, torch.Tensor] | None:
        """The non-EMA generator weights of an srlab checkpoint that also holds an EMA copy, else None."""
        state = self.raw.get("state_dict") if isinstance(self.raw, dict) else None
        if not isinstance(state, dict) or not any(k.startswith("generator_ema.") for k in state):
            return None
        return {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}


@dataclass
class StoredGenerator:
    """A stored generator, built and loaded (eval mode, CPU, fp32).

    Args:
        net: the network with the file's weights.
        net_config: the Hydra config it was built from.
        weights: the :class:`StoredWeights` it was read from.
        card: its model card (None for files that carry none).
        notes: what srlab decided that the file did not say (detected family, input range), for the card line.
    """

    net: nn.Module
    net_config: dict
    weights: StoredWeights
    card: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def normalized_input(self) -> bool:
        return self.weights.stored.normalized_input


def read_stored(source: str | Path | StoredWeights | None) -> StoredWeights:
    """Read a stored generator without building it: a file, a shipped model's name, or None (the default model).

    A :class:`StoredWeights` (already read) is returned as it is, so callers that read first resolve a name once.
    """
    if isinstance(source, StoredWeights):
        return source
    path = resolve_weights(source)
    if source is None or str(source) == "":
        label = f"{path.stem} (the default shipped model)"
    else:
        label = str(source) if str(source) in shipped_names() else str(path)
    if path.suffix.lower() == ".onnx":
        return StoredWeights(path, label, None, {}, StoredNet(None))
    raw, stored = read_weights(path)
    try:
        state_dict = extract_generator_state_dict(raw)
    except SRLabError as exc:
        raise SRLabError(f"weights={label}: {exc}") from None
    return StoredWeights(path, label, raw, state_dict, stored)


def build_net(net_config: dict, origin: str) -> nn.Module:
    """Instantiate a generator from its Hydra config, turning failures into one-line errors."""
    if not isinstance(net_config, dict) or "_target_" not in net_config:
        raise SRLabError(f"{origin}: the generator config must be a mapping with _target_, got {net_config!r:.80}")
    try:
        return instantiate(net_config)
    except Exception as exc:  # noqa: BLE001 - any failure to build is a config problem for the user
        raise SRLabError(f"{origin}: cannot build the generator {net_config.get('_target_')} ({exc})") from None


def open_stored(
    source: str | Path | StoredWeights | None, model: str | dict | None = None, input_range: float | None = None
) -> StoredGenerator:
    """Read, build and load a stored generator (see the module's docstring for what is decided here).

    Args:
        source: ``.ckpt`` of srlab.train, ``.safetensors``/``.pth`` of srlab.export, published
            weights of any family srlab or spandrel knows, a shipped model's name, or None for the
            default shipped model, or what :func:`read_stored` read (ONNX files:
            :func:`srlab.infer.generator.open_generator`).
        model: ``conf/model`` name (or a generator config dict) for files that carry no net config.
        input_range: 1 or 255 to skip the probe for families published both ways.
    """
    weights = read_stored(source)
    if weights.raw is None:
        raise SRLabError(f"weights={weights.label}: an ONNX file runs with --backend onnxruntime")
    net_config, origin, notes, probe = _net_config(weights, model)
    if input_range is not None:
        if float(input_range) not in INPUT_RANGES:
            raise SRLabError(f"input range {input_range}: use 1 ([0, 1] inputs) or 255 ([0, 255] inputs)")
        if not _takes_input_range(net_config) and float(input_range) != 1.0:
            raise SRLabError(f"weights={weights.label}: {net_config['_target_']} takes [0, 1] inputs only")
        net_config, probe = {**net_config, "input_range": float(input_range)}, False
        notes.append(f"input range [0, {input_range:g}] (as told)")
    if probe:  # builds and loads the net for each range and keeps the better one
        net_config, net, why = _probe_input_range(net_config, weights)
        notes.append(why)
    else:
        net = _load(build_net(net_config, origin), weights)
    card = weights.stored.card
    if card is None and weights.path.suffix == ".ckpt":  # saved before srlab wrote cards: rebuilt from its run folder
        from srlab.weights.run_card import card_from_run

        card = card_from_run(weights.path, weights.raw, net)
    return StoredGenerator(net.eval(), net_config, weights, card, notes)


def _net_config(weights: StoredWeights, model: str | dict | None) -> tuple[dict, str, list[str], bool]:
    """(net config, where it came from, notes, whether the input range still needs a probe)."""
    if weights.stored.config is not None:
        return dict(weights.stored.config), weights.label, [], False
    if isinstance(model, dict):
        return dict(model), f"{weights.label} with the model's generator config", [], False
    if model:
        return model_net_config(model), f"model={model}", [], False
    try:
        arch = detect_architecture(weights.state_dict)
    except SRLabError as exc:
        raise SRLabError(f"weights={weights.label}: {exc}; or name the architecture with model=NAME") from None
    config = dict(arch.net_config)
    probe = arch.input_range is None
    if arch.input_range not in (None, 1.0):
        config["input_range"] = arch.input_range
    return config, f"{weights.label} (detected {arch.name})", [f"detected {arch.name}"], probe


def _takes_input_range(net_config: dict) -> bool:
    """Whether the class of ``net_config`` has an ``input_range`` argument (srlab's efficient-SR families)."""
    try:
        return "input_range" in inspect.signature(get_object(net_config["_target_"])).parameters
    except Exception:  # noqa: BLE001 - an unknown target fails with its own message when built
        return False


def _load(net: nn.Module, weights: StoredWeights) -> nn.Module:
    try:  # the state dict is canonical already (read_stored): fitted and loaded, not unwrapped again
        load_canonical_weights(net, weights.state_dict, label=f"weights={weights.label}")
    except SRLabError as exc:
        raise SRLabError(f"{exc}{_detected_hint(weights.state_dict)}") from None
    return net


def _detected_hint(state_dict: dict) -> str:
    """What the weights look like, for a model/weights mismatch message ('' if unrecognised)."""
    try:
        arch = detect_architecture(state_dict)
    except SRLabError:
        return ""
    sizes = " ".join(f"{k}={v}" for k, v in arch.net_config.items() if k != "_target_")
    return f"; the file holds {arch.name} {sizes} (leave model unset to use it)"


def _probe_image(scale: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, hq): a photo crop (scikit-image's bundled astronaut, else a synthetic pattern) and its bicubic downscale."""
    hq_size = size * scale
    try:
        from skimage import data

        img = np.asarray(data.astronaut())[60 : 60 + hq_size, 180 : 180 + hq_size]  # face and helmet edges
        hq = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    except Exception:  # noqa: BLE001 - no scikit-image data: rings and a gradient still tell the ranges apart
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, hq_size), torch.linspace(-1, 1, hq_size), indexing="ij")
        rings = 0.5 + 0.5 * torch.cos(12 * (xx**2 + yy**2))
        hq = torch.stack([rings, (xx + 1) / 2, (yy + 1) / 2])[None]
    if hq.shape[-1] != hq_size or hq.shape[-2] != hq_size:
        hq = torch.nn.functional.interpolate(hq, size=(hq_size, hq_size), mode="bicubic", align_corners=False)
    lq = torch.nn.functional.interpolate(hq, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return lq.clamp(0, 1), hq.clamp(0, 1)


def _probe_input_range(net_config: dict, weights: StoredWeights) -> tuple[dict, nn.Module, str]:
    """Build the net for both input ranges and keep the one whose output of a downscaled photo is closer to the photo.

    A file fed the wrong range is off by several dB (the published-weights check records 5-11 dB);
    the PSNR of each candidate is in the returned note.
    """
    scores, nets = {}, {}
    for value in INPUT_RANGES:
        config = {**net_config, "input_range": value}
        # built and loaded outside inference mode: its tensors would be inference tensors for good
        net = _load(build_net(config, weights.label), weights).eval()
        scale = int(getattr(net, "scale", 4))
        lq, hq = _probe_image(scale)
        with torch.inference_mode():
            sr = net(lq).clamp(0, 1)
        mse = torch.mean((sr - hq[..., : sr.shape[-2], : sr.shape[-1]]) ** 2).item()
        psnr = 10 * np.log10(1 / max(mse, 1e-12)) if np.isfinite(mse) else float("-inf")  # NaN: overflowed
        scores[value], nets[value] = psnr, (config, net)
    best = max(scores, key=scores.get)
    other = next(v for v in INPUT_RANGES if v != best)
    why = (f"input range [0, {best:g}] by probe ({scores[best]:.1f} dB vs {scores[other]:.1f} dB for "
           f"[0, {other:g}]; set --input-range to override)")
    config, net = nets[best]
    return config, net, why
