"""Recognise a generator's architecture and hyperparameters from its state dict alone.

Pure functions, no file I/O: ``detect_architecture(obj)`` takes anything
``srlab.weights.extract_generator_state_dict`` understands (plain state dicts, BasicSR /
Real-ESRGAN ``params_ema`` files, the original ESRGAN and EDSR layouts, srlab checkpoints and exports) and
returns the net's name and a Hydra config that builds it, e.g.
``Architecture("SRVGGNetCompact", {"_target_": "srlab.nets.srvgg.SRVGGNetCompact", "num_feat": 64, ...})``.

What a state dict cannot tell, and what is assumed instead: RRDBNet's and SRResNet's
``bicubic_residual`` (off; srlab checkpoints and exports carry their config, so this only matters
for bare state dicts), EDSR's ``res_scale`` (0.1 for the 256-wide EDSR, 1 else, as BasicSR's
configs), SRVGGNetCompact's activation when no PReLU slopes are saved (``relu``; ``leakyrelu``
has no parameters either), and input normalization (off).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from srlab.errors import SRLabError
from srlab.weights.generator import extract_generator_state_dict

StateDict = Mapping[str, torch.Tensor]


class Architecture(NamedTuple):
    """A recognised generator: its class name and the Hydra config (with ``_target_``) that builds it."""

    name: str
    net_config: dict[str, Any]


def _indices(sd: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over the keys."""
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in sd if (m := rx.fullmatch(k))})


def _shape(sd: StateDict, key: str) -> tuple[int, ...]:
    return tuple(sd[key].shape)


def _shuffle_scale(sd: StateDict, prefix: str, num_feat: int) -> int:
    """Scale of a (conv, PixelShuffle) stack at ``prefix``.N: 3 for one conv to 9F, else 2 per conv."""
    convs = _indices(sd, rf"{re.escape(prefix)}\.(\d+)\.weight")
    if len(convs) == 1 and _shape(sd, f"{prefix}.{convs[0]}.weight")[0] == 9 * num_feat:
        return 3
    return 2 ** len(convs)


def _rrdbnet(sd: StateDict) -> dict | None:
    if "body.0.rdb1.conv1.weight" not in sd or "conv_body.weight" not in sd:
        return None
    num_feat, in_ch = _shape(sd, "conv_first.weight")[:2]
    out_ch = _shape(sd, "conv_last.weight")[0]
    # Real-ESRGAN's x2/x1 nets pixel-unshuffle the input by 2/4 first: conv_first sees 4x/16x channels
    unshuffle = math.isqrt(in_ch // out_ch) if in_ch % out_ch == 0 else 1
    scale = {4: 1, 2: 2}.get(unshuffle, 8 if "conv_up3.weight" in sd else 4)
    return {
        "_target_": "srlab.nets.rrdbnet.RRDBNet",
        "num_in_ch": in_ch // unshuffle**2, "num_out_ch": out_ch, "scale": scale, "num_feat": num_feat,
        "num_block": len(_indices(sd, r"body\.(\d+)\.rdb1\.conv1\.weight")),
        "num_grow_ch": _shape(sd, "body.0.rdb1.conv1.weight")[0],
    }  # fmt: skip


def _swinir(sd: StateDict) -> dict | None:
    if "layers.0.residual_group.blocks.0.attn.qkv.weight" not in sd:
        return None
    embed_dim, in_chans = _shape(sd, "conv_first.weight")[:2]
    layers = _indices(sd, r"layers\.(\d+)\.residual_group\.blocks\.0\.attn\.qkv\.weight")
    block = "layers.{}.residual_group.blocks.{}."
    depths = [len(_indices(sd, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight")) for i in layers]
    heads = [_shape(sd, block.format(i, 0) + "attn.relative_position_bias_table")[1] for i in layers]
    window = (math.isqrt(_shape(sd, block.format(0, 0) + "attn.relative_position_bias_table")[0]) + 1) // 2
    # the saved shifted-window mask is (nW, N, N) for an img_size x img_size training patch; no mask
    # in a file with 2+ blocks per group means the official code ran unshifted (img_size <= window)
    mask = next((v for k, v in sd.items() if k.endswith(".attn_mask")), None)
    img_size = math.isqrt(mask.shape[0]) * window if mask is not None else (window if max(depths) > 1 else 64)
    if "conv_up1.weight" in sd:
        upsampler, scale = "nearest+conv", 4 if "conv_up2.weight" in sd else 2
    elif "conv_before_upsample.0.weight" in sd:
        num_feat = _shape(sd, "conv_before_upsample.0.weight")[0]
        upsampler, scale = "pixelshuffle", _shuffle_scale(sd, "upsample", num_feat)
    elif "upsample.0.weight" in sd:
        upsampler, scale = "pixelshuffledirect", math.isqrt(_shape(sd, "upsample.0.weight")[0] // in_chans)
    else:
        upsampler, scale = "none", 1
    return {
        "_target_": "srlab.nets.swinir.SwinIR",
        "in_chans": in_chans, "img_size": img_size, "embed_dim": embed_dim, "depths": depths, "num_heads": heads,
        "window_size": window, "mlp_ratio": _shape(sd, block.format(0, 0) + "mlp.fc1.weight")[0] / embed_dim,
        "upscale": scale, "upsampler": upsampler,
        "resi_connection": "1conv" if "conv_after_body.weight" in sd else "3conv",
    }  # fmt: skip


def _edsr(sd: StateDict) -> dict | None:
    if "body.0.conv1.weight" not in sd or "conv_after_body.weight" not in sd:
        return None
    num_feat, in_ch = _shape(sd, "conv_first.weight")[:2]
    num_block = len(_indices(sd, r"body\.(\d+)\.conv1\.weight"))
    return {
        "_target_": "srlab.nets.edsr.EDSR",
        "num_in_ch": in_ch, "num_out_ch": _shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": num_block, "upscale": _shuffle_scale(sd, "upsample", num_feat),
        # not saved; BasicSR trains the large EDSR (256 x 32) with 0.1, the baseline with 1
        "res_scale": 0.1 if num_feat >= 256 else 1.0,
    }  # fmt: skip


def _srvgg(sd: StateDict) -> dict | None:
    if "body.0.weight" not in sd or any(not re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in sd):
        return None
    convs = [i for i in _indices(sd, r"body\.(\d+)\.weight") if sd[f"body.{i}.weight"].ndim == 4]
    num_feat, in_ch = _shape(sd, "body.0.weight")[:2]
    last = _shape(sd, f"body.{convs[-1]}.weight")[0]
    has_prelu = "body.1.weight" in sd and sd["body.1.weight"].ndim == 1
    return {
        "_target_": "srlab.nets.srvgg.SRVGGNetCompact",
        "num_in_ch": in_ch, "num_out_ch": in_ch, "num_feat": num_feat, "num_conv": len(convs) - 2,
        "upscale": math.isqrt(last // in_ch), "act_type": "prelu" if has_prelu else "relu",
    }  # fmt: skip


def _srresnet(sd: StateDict) -> dict | None:
    if "conv_first.0.weight" not in sd or "body.0.bn1.weight" not in sd:
        return None
    num_feat, in_ch = _shape(sd, "conv_first.0.weight")[:2]
    steps = _indices(sd, r"upsample\.(\d+)\.conv\.weight")
    return {
        "_target_": "srlab.nets.srresnet.SRResNet",
        "num_in_ch": in_ch, "num_out_ch": _shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": len(_indices(sd, r"body\.(\d+)\.conv1\.weight")),
        "scale": math.prod(math.isqrt(_shape(sd, f"upsample.{i}.conv.weight")[0] // num_feat) for i in steps),
    }  # fmt: skip


def _msrresnet(sd: StateDict) -> dict | None:
    if "upconv1.weight" not in sd or "body.0.conv1.weight" not in sd:
        return None
    num_feat, in_ch = _shape(sd, "conv_first.weight")[:2]
    return {
        "_target_": "srlab.nets.srresnet.MSRResNet",
        "num_in_ch": in_ch, "num_out_ch": _shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "num_block": len(_indices(sd, r"body\.(\d+)\.conv1\.weight")),
        # x4 is two x2 steps (upconv2); x2/x3 one conv to 4F/9F
        "upscale": 4 if "upconv2.weight" in sd else math.isqrt(_shape(sd, "upconv1.weight")[0] // num_feat),
    }  # fmt: skip


def _vanilla(sd: StateDict) -> dict | None:
    if "conv_first.0.weight" not in sd or "body.0.weight" not in sd or "upsample.0.weight" not in sd:
        return None
    num_feat, in_ch = _shape(sd, "conv_first.0.weight")[:2]
    return {
        "_target_": "srlab.nets.vanilla.VanillaGenerator",
        "num_in_ch": in_ch, "num_out_ch": _shape(sd, "conv_last.weight")[0], "num_feat": num_feat,
        "scale": 2 ** len(_indices(sd, r"upsample\.(\d+)\.bias")),
    }  # fmt: skip


def _autoencoder(sd: StateDict) -> dict | None:
    if "encoder.0.weight" not in sd or "dec_high.2.weight" not in sd:
        return None
    return {
        "_target_": "srlab.nets.autoencoder.Autoencoder",
        "num_in_ch": _shape(sd, "encoder.0.weight")[1], "num_out_ch": _shape(sd, "dec_high.2.weight")[0],
        "num_feat": _shape(sd, "encoder.3.weight")[0], "scale": 4,
    }  # fmt: skip


# Checked in order; each matcher looks for keys only its layout has.
_MATCHERS: dict[str, Callable[[StateDict], dict | None]] = {
    "RRDBNet": _rrdbnet,
    "SwinIR": _swinir,
    "EDSR": _edsr,
    "SRVGGNetCompact": _srvgg,
    "SRResNet": _srresnet,
    "MSRResNet": _msrresnet,
    "VanillaGenerator": _vanilla,
    "Autoencoder": _autoencoder,
}
KNOWN = (
    "RRDBNet (BasicSR/Real-ESRGAN and original ESRGAN layouts), SRVGGNetCompact (Real-ESRGAN), "
    "SwinIR (official), EDSR (BasicSR and EDSR-PyTorch layouts), MSRResNet (BasicSR), SRResNet, VanillaGenerator "
    "and Autoencoder (srlab)"
)


def detect_architecture(obj: Any) -> Architecture:
    """The generator architecture and hyperparameters of a state dict or any weights object.

    Args:
        obj: a generator state dict, or a loaded weights object (see
            ``srlab.weights.extract_generator_state_dict``).

    Returns:
        the class name and a config whose ``hydra.utils.instantiate`` builds a net that loads
        ``obj`` strictly.

    Raises:
        SRLabError: one line naming the first keys seen and the architectures known.
    """
    sd = extract_generator_state_dict(obj)
    for name, match in _MATCHERS.items():
        try:
            cfg = match(sd)
        except (KeyError, IndexError, ValueError, ZeroDivisionError):
            cfg = None  # the layout's anchor keys are there but the rest is not: not this net
        if cfg is not None:
            return Architecture(name, cfg)
    first = ", ".join(list(sd)[:4])
    raise SRLabError(f"unknown generator layout (first keys: {first}); srlab recognises {KNOWN}")
