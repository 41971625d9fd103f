"""State dicts of every generator family srlab detects, for checking that a net's ``detect`` leaves the others alone.

srlab's nets are built tiny; the published efficient-SR layouts (IMDN, RFDN, RLFN, EFDN, SPAN, SAFMN)
are also written out as the first block's real key names and shapes (taken from the published files),
on the meta device (``detect`` reads only names and shapes), and once more as names alone with
one-element tensors: a detect must turn those away by their keys, before it reads a shape.
"""

from __future__ import annotations

import torch

from srlab.nets.bsrn import BSRN
from srlab.nets.carn import CARNM
from srlab.nets.edsr import EDSR
from srlab.nets.efdn import EFDN
from srlab.nets.imdn import IMDN
from srlab.nets.pan import PAN
from srlab.nets.rfdn import RFDN
from srlab.nets.rlfn import RLFN
from srlab.nets.rrdbnet import RRDBNet
from srlab.nets.safmn import SAFMN
from srlab.nets.span import SPAN
from srlab.nets.srresnet import MSRResNet, SRResNet
from srlab.nets.srvgg import SRVGGNetCompact
from srlab.nets.swinir import SwinIR

_C3, _C1 = (3, 3), (1, 1)  # kernel sizes

# key -> shape; each list keeps the keys a detector could anchor on (first conv, block 1, fusion, tail)
_PUBLISHED = {
    "IMDN": {
        "fea_conv.weight": (64, 3, *_C3), "IMDB1.c1.weight": (64, 64, *_C3), "IMDB1.c4.weight": (16, 48, *_C3),
        "IMDB1.c5.weight": (64, 64, *_C1), "IMDB1.cca.conv_du.0.weight": (4, 64, *_C1),
        "c.0.weight": (64, 384, *_C1), "LR_conv.weight": (64, 64, *_C3), "upsampler.0.weight": (48, 64, *_C3),
    },
    "RFDN": {
        "fea_conv.weight": (50, 3, *_C3), "B1.c1_d.weight": (25, 50, *_C1), "B1.c1_r.weight": (50, 50, *_C3),
        "B1.c4.weight": (25, 50, *_C3), "B1.c5.weight": (50, 100, *_C1), "B1.esa.conv1.weight": (12, 50, *_C1),
        "B1.esa.conv_max.weight": (12, 12, *_C3), "B1.esa.conv4.weight": (50, 12, *_C1),
        "c.0.weight": (50, 200, *_C1), "LR_conv.weight": (50, 50, *_C3), "upsampler.0.weight": (48, 50, *_C3),
    },
    # RLFN shares SPAN's module names (conv_1, block_1.c1_r, conv_2, upsampler.0) but has no eval_conv
    "RLFN": {
        "conv_1.weight": (52, 3, *_C3), "block_1.c1_r.weight": (52, 52, *_C3), "block_1.c5.weight": (52, 52, *_C1),
        "block_1.esa.conv1.weight": (16, 52, *_C1), "block_1.esa.conv4.weight": (52, 16, *_C1),
        "conv_2.weight": (52, 52, *_C3), "upsampler.0.weight": (48, 52, *_C3),
    },
    "EFDN": {
        "head.weight": (48, 3, *_C3), "cells.0.conv1.conv1x1.weight": (48, 48, *_C1),
        "cells.0.conv2.rep_conv.weight": (48, 48, *_C3), "cells.0.fuse.weight": (48, 96, *_C1),
        "cells.0.att.conv1.weight": (12, 48, *_C1), "cells.0.branch.0.weight": (24, 48, *_C1),
    },
    "SPAN": {
        "conv_1.eval_conv.weight": (28, 3, *_C3), "block_1.c1_r.eval_conv.weight": (28, 28, *_C3),
        "conv_cat.weight": (28, 112, *_C1), "conv_2.eval_conv.weight": (28, 28, *_C3),
        "upsampler.0.weight": (48, 28, *_C3),
    },
    "SAFMN": {
        "norm.gamma": (1, 36, 1, 1), "to_feat.weight": (36, 3, *_C3), "feats.0.safm.mfr.0.weight": (9, 1, *_C3),
        "feats.0.safm.aggr.weight": (36, 36, *_C1), "feats.0.ccm.ccm.0.weight": (72, 36, *_C3),
        "to_img.0.weight": (48, 36, *_C3),
    },
}  # fmt: skip


def _with_biases(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    sd = {}
    for k, s in keys.items():
        sd[k] = torch.empty(s, device="meta")
        if k.endswith(".weight") and len(s) == 4:
            sd[k.removesuffix("weight") + "bias"] = torch.empty(s[0], device="meta")
    return sd


def _tiny_nets() -> dict[str, torch.nn.Module]:
    return {
        "SRVGGNetCompact": SRVGGNetCompact(num_feat=8, num_conv=2),
        "RRDBNet": RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
        "EDSR": EDSR(num_feat=8, num_block=1),
        "MSRResNet": MSRResNet(num_feat=8, num_block=1),
        "SRResNet": SRResNet(num_feat=8, num_block=1),
        "SwinIR": SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, img_size=8, upscale=2),
        "IMDN tiny": IMDN(nf=16, num_modules=1),
        "RFDN tiny": RFDN(nf=8, num_modules=1),
        "RLFN tiny": RLFN(feature_channels=8, num_blocks=1, esa_channels=4),
        "EFDN tiny": EFDN(n_feats=8, upscale=2),
        "EFDN tiny training form": EFDN(n_feats=8, deploy=False),
        "SPAN tiny": SPAN(feature_channels=4),
        "SPAN tiny deploy": SPAN(feature_channels=4, deploy=True),
        "SAFMN tiny": SAFMN(dim=8, n_blocks=1),
        "SAFMN tiny ntire23": SAFMN(dim=8, n_blocks=1, variant="ntire23"),
        "BSRN": BSRN(num_feat=8, num_block=2),
        "CARN-M": CARNM(num_feat=8, group=2),
        "CARN-M single-scale": CARNM(num_feat=8, group=2, upscale=3, multi_scale=False),
        "PAN": PAN(nf=8, unf=6, nb=1),
        "PAN x2": PAN(nf=8, unf=6, nb=1, upscale=2),
    }


def foreign_to(family: str) -> dict[str, dict[str, torch.Tensor]]:
    """Name -> state dict of every family's tiny net and published layout, less those of ``family``.

    ``family`` is matched as a name prefix (``"CARN-M"`` drops both CARN-M nets), so SPAN's own
    entries go with ``"SPAN"`` while PAN's stay.
    """
    out = {name: net.state_dict() for name, net in _tiny_nets().items()}
    for name, keys in _PUBLISHED.items():
        out[name] = _with_biases(keys)
        out[f"{name} names only"] = {k: torch.zeros(1) for k in out[name]}
    return {name: sd for name, sd in out.items() if name != family and not name.startswith(f"{family} ")}
