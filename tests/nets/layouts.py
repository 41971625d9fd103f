"""Tiny state dicts of the generator families a new net's detection must not claim."""

from __future__ import annotations

import torch

from srlab.nets import EDSR, MSRResNet, RRDBNet, SRResNet, SRVGGNetCompact, SwinIR


def _fake(*keys: str) -> dict[str, torch.Tensor]:
    """Key names alone (one-element tensors): what IMDN/RFDN/RLFN files are recognised by."""
    return {k: torch.zeros(1) for k in keys}


def foreign_state_dicts() -> dict[str, dict[str, torch.Tensor]]:
    """Family name -> a small state dict of that family (srlab's nets built tiny, others by their key names)."""
    swinir = {"img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [1], "num_heads": [2], "mlp_ratio": 2}
    return {
        "RRDBNet": RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict(),
        "SRVGGNetCompact": SRVGGNetCompact(num_feat=8, num_conv=2).state_dict(),
        "SwinIR": SwinIR(**swinir).state_dict(),
        "EDSR": EDSR(num_feat=8, num_block=1).state_dict(),
        "MSRResNet": MSRResNet(num_feat=8, num_block=1).state_dict(),
        "SRResNet": SRResNet(num_feat=8, num_block=1).state_dict(),
        "IMDN": _fake("fea_conv.weight", "IMDB1.c1.weight", "IMDB1.c5.weight", "c.0.weight", "LR_conv.weight",
                      "upsampler.0.weight"),  # fmt: skip
        "RFDN": _fake("fea_conv.weight", "B1.c1_d.weight", "B1.esa.conv1.weight", "c.0.weight", "LR_conv.weight",
                      "upsampler.0.weight"),  # fmt: skip
        # RLFN shares SPAN's module names (conv_1, block_1.c1_r, conv_2, upsampler.0) but has no eval_conv
        "RLFN": _fake("conv_1.weight", "conv_1.bias", "block_1.c1_r.weight", "block_1.c2_r.weight",
                      "block_1.c3_r.weight", "block_1.c5.weight", "block_1.esa.conv1.weight", "conv_2.weight",
                      "upsampler.0.weight"),  # fmt: skip
    }
