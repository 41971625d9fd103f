"""EDSR-PyTorch (thstkdgus35) files: names and shapes written below as that repository saves them,
detected as EDSR, loaded strictly through the renaming, and run to the same output as that repository's
forward (written here with its own keys)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from srlab.errors import SRLabError
from srlab.weights import load_generator_weights
from srlab.weights.detect import detect_architecture

DIV2K_MEAN = torch.tensor([0.4488, 0.4371, 0.4040])  # EDSR-PyTorch's model/common.py MeanShift default


def edsr_pytorch(nf: int, nb: int, scale: int, rgb_range: float = 255.0) -> dict[str, torch.Tensor]:
    """An EDSR-PyTorch state dict (edsr_baseline_x2-1bc95232.pt layout) with random convs and its mean shifts."""
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, out: int, inp: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = torch.randn(out, inp, 3, 3) * 0.05, torch.randn(out) * 0.05

    for name, sign in (("sub_mean", -1), ("add_mean", 1)):  # MeanShift: 1x1 conv, weight I/std, bias sign*range*mean/std
        sd[f"{name}.weight"], sd[f"{name}.bias"] = torch.eye(3).view(3, 3, 1, 1), sign * rgb_range * DIV2K_MEAN
    conv("head.0", nf, 3)
    for b in range(nb):  # ResBlock: Sequential(conv, ReLU, conv)
        conv(f"body.{b}.body.0", nf, nf), conv(f"body.{b}.body.2", nf, nf)
    conv(f"body.{nb}", nf, nf)
    steps = [3] if scale == 3 else [2] * int(math.log2(scale))
    for i, f in enumerate(steps):  # Upsampler: (conv, PixelShuffle) per step
        conv(f"tail.0.{2 * i}", f * f * nf, nf)
    conv("tail.1", 3, nf)
    return sd


def edsr_pytorch_forward(sd: dict[str, torch.Tensor], lq: torch.Tensor, res_scale: float = 1.0) -> torch.Tensor:
    """EDSR-PyTorch's EDSR.forward on its own keys, fed [0, 255] pixels as that repository is."""

    def conv(name: str, x: torch.Tensor) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    x = conv("head.0", conv("sub_mean", lq * 255))
    nb = max(int(k.split(".")[1]) for k in sd if k.startswith("body.") and ".body." in k) + 1
    res = x
    for b in range(nb):
        res = res + conv(f"body.{b}.body.2", F.relu(conv(f"body.{b}.body.0", res))) * res_scale
    res = conv(f"body.{nb}", res) + x
    i = 0
    while f"tail.0.{i}.weight" in sd:
        up = conv(f"tail.0.{i}", res)
        res, i = F.pixel_shuffle(up, math.isqrt(up.shape[1] // res.shape[1])), i + 2
    return conv("add_mean", conv("tail.1", res)) / 255


@pytest.mark.parametrize(("nf", "scale", "res_scale"), [(8, 2, 1.0), (8, 3, 1.0), (8, 4, 1.0), (256, 2, 0.1)])
def test_edsr_pytorch_file_is_detected_loads_strictly_and_matches_its_forward(nf: int, scale: int,
                                                                              res_scale: float) -> None:
    torch.manual_seed(0)
    sd = edsr_pytorch(nf, 2, scale)
    arch = detect_architecture(sd)
    assert arch.name == "EDSR"
    expected = {"num_feat": nf, "num_block": 2, "upscale": scale, "res_scale": res_scale}
    assert {k: arch.net_config[k] for k in expected} == expected
    net = instantiate(arch.net_config).eval()
    assert load_generator_weights(net, sd, strict=True).missing_keys == []
    lq = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(net(lq), edsr_pytorch_forward(sd, lq, res_scale), atol=1e-5, rtol=1e-4)


def test_edsr_pytorch_file_with_another_rgb_range_is_one_line() -> None:
    with pytest.raises(SRLabError, match="sub_mean .* is not the default mean shift") as info:
        detect_architecture(edsr_pytorch(8, 1, 2, rgb_range=1.0))
    assert "\n" not in str(info.value)


def test_other_models_of_that_repository_are_named_not_misloaded() -> None:
    sd = edsr_pytorch(8, 1, 2)
    sd["body.0.body.0.body.0.weight"] = torch.zeros(8, 8, 3, 3)  # RCAN's residual groups nest one level deeper
    with pytest.raises(SRLabError, match="key 'body.0.body.0.body.0.weight', not EDSR's"):
        detect_architecture(sd)
