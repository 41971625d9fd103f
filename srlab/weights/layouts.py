"""Other repositories' generator layouts renamed onto srlab's (BasicSR's) names, tensors unchanged.

- the original ESRGAN repository (``RRDB_ESRGAN_x4.pth``: one flat ``model.N`` Sequential) -> RRDBNet;
- the original EDSR repository (thstkdgus35/EDSR-PyTorch, ``edsr_x4-4f62e9ef.pt``:
  ``sub_mean``/``head``/``body``/``tail``/``add_mean``) -> EDSR.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from srlab.errors import SRLabError
from srlab.nets.edsr import DIV2K_RGB_MEAN

_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_BODY = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
# EDSR-PyTorch: ResBlock = Sequential(conv, ReLU, conv); Upsampler = (conv, PixelShuffle) per step
_EDSR_RENAMES = (
    (re.compile(r"^head\.0\.(weight|bias)$"), r"conv_first.\1"),
    (re.compile(r"^body\.(\d+)\.body\.0\.(weight|bias)$"), r"body.\1.conv1.\2"),
    (re.compile(r"^body\.(\d+)\.body\.2\.(weight|bias)$"), r"body.\1.conv2.\2"),
    (re.compile(r"^tail\.0\.(\d+)\.(weight|bias)$"), r"upsample.\1.\2"),
    (re.compile(r"^tail\.1\.(weight|bias)$"), r"conv_last.\1"),
)
_EDSR_TRUNK = re.compile(r"^body\.(\d+)\.(weight|bias)$")  # the conv after the last block


def is_old_esrgan(sd: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``sd`` has the original ESRGAN repository's flat ``model.N`` layout (RRDB blocks under ``model.1.sub``).

    Other nets of that era use ``model.1.sub.N`` too (IMDN's and BSRGAN's sequential layouts): only
    RRDB blocks (``RDB1``) make it ESRGAN's.
    """
    return "model.0.weight" in sd and any(k.startswith("model.1.sub.") and ".RDB1." in k for k in sd)


def convert_old_esrgan(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original ESRGAN repo's layout (``RRDB_ESRGAN_x4.pth``) to BasicSR/srlab names.

    ``model.0`` -> ``conv_first``; ``model.1.sub.I.RDBj.convk.0`` -> ``body.I.rdbj.convk``;
    ``model.1.sub.N`` (the conv after the last block, any N) -> ``conv_body``; the remaining
    top-level convs in index order -> ``conv_up1``, ``conv_up2`` (``conv_up3``...), ``conv_hr``,
    ``conv_last``.
    """
    out: dict[str, torch.Tensor] = {}
    top: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        if m := _OLD_RDB.match(k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
        elif m := _OLD_BODY.match(k):
            out[f"conv_body.{m[2]}"] = v
        elif m := _OLD_TOP.match(k):
            top.setdefault(int(m[1]), {})[m[2]] = v
        else:
            raise SRLabError(f"unexpected key '{k}' in an original-ESRGAN-layout file")
    indices = sorted(top)
    if not indices or indices[0] != 0 or len(indices) < 3:
        raise SRLabError("original-ESRGAN-layout file lacks model.0 (conv_first) or its output convs")
    names = ["conv_first"] + [f"conv_up{i}" for i in range(1, len(indices) - 2)] + ["conv_hr", "conv_last"]
    for name, idx in zip(names, indices):
        for kind, v in top[idx].items():
            out[f"{name}.{kind}"] = v
    return out


def is_edsr_original(sd: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``sd`` has EDSR-PyTorch's layout (``sub_mean`` mean-shift conv, a ``head``, plain residual blocks).

    RCAN shares the mean shift and head but nests its blocks in groups (``body.0.body.0.body.0``): not EDSR.
    """
    return "sub_mean.weight" in sd and "head.0.weight" in sd and "body.0.body.0.weight" in sd


def _check_mean_shift(sd: Mapping[str, torch.Tensor]) -> None:
    """Raise unless ``sub_mean``/``add_mean`` are EDSR-PyTorch's defaults, which srlab's EDSR computes itself.

    EDSR-PyTorch's ``MeanShift`` is a frozen 1x1 conv: weight ``I / std``, bias ``-+rgb_range * mean / std``
    with the DIV2K mean, std 1 and (the default, and every released file) rgb_range 255. srlab's
    EDSR does ``(lq - mean) * 255`` on [0, 1] input, the same map, so the two convs are dropped.
    """
    eye = torch.eye(3).view(3, 3, 1, 1)
    mean = torch.tensor(DIV2K_RGB_MEAN) * 255
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        w, b = sd.get(f"{name}.weight"), sd.get(f"{name}.bias")
        if w is None or b is None or w.shape != eye.shape or not torch.allclose(w.float(), eye, atol=1e-4) \
                or not torch.allclose(b.float(), sign * mean, atol=1e-2):  # fmt: skip
            got = "missing" if b is None else [round(x, 3) for x in b.float().flatten().tolist()]
            raise SRLabError(
                f"EDSR-PyTorch-layout file: {name} (bias {got}) is not the default mean shift (rgb_range 255, "
                f"DIV2K mean, std 1: bias {[round(sign * x, 3) for x in mean.tolist()]}); srlab's EDSR loads only "
                "files trained with the defaults"
            )


def convert_edsr_original(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename EDSR-PyTorch's layout (thstkdgus35/EDSR-PyTorch, ``edsr_baseline_x2``, ``edsr_x4``) to srlab's EDSR.

    ``head.0`` -> ``conv_first``; ``body.I.body.0/2`` -> ``body.I.conv1/conv2``; ``body.N`` (the conv
    after the last block) -> ``conv_after_body``; ``tail.0.K`` -> ``upsample.K``; ``tail.1`` ->
    ``conv_last``. ``sub_mean``/``add_mean`` must be the default mean shift (checked, then dropped).

    Raises:
        SRLabError: another mean shift, or a key EDSR does not have (RCAN, MDSR... share the repository's
            ``sub_mean``/``head``/``body``/``tail`` names but not its blocks).
    """
    _check_mean_shift(sd)
    out: dict[str, torch.Tensor] = {}
    trunk = [int(m[1]) for k in sd if (m := _EDSR_TRUNK.match(k))]
    for k, v in sd.items():
        if k.startswith(("sub_mean.", "add_mean.")):
            continue
        if (m := _EDSR_TRUNK.match(k)) and int(m[1]) == max(trunk):
            out[f"conv_after_body.{m[2]}"] = v
            continue
        new = next((rx.sub(repl, k) for rx, repl in _EDSR_RENAMES if rx.match(k)), None)
        if new is None:
            raise SRLabError(
                f"EDSR-PyTorch-layout file has key '{k}', not EDSR's (its repository's RCAN, MDSR... are not supported)"
            )
        out[new] = v
    return out
