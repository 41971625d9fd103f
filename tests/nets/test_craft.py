"""CRAFT: spandrel's names and constructor, reflect padding only up to the next window multiple."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from spandrel import ModelLoader
from spandrel.architectures.CRAFT import CRAFT as SpandrelCRAFT

from srlab.nets.craft import CRAFT, reflect_pad

TEAM34 = {"upscale": 4, "window_size": 16, "embed_dim": 48, "depths": [2, 2, 2, 2], "num_heads": [6, 6, 6, 6],
          "mlp_ratio": 2.0, "img_range": 1.0}  # fmt: skip
# the narrowest CRAFT whose position-bias MLPs are not zero-sized (their width is embed_dim // 32)
TINY = {"embed_dim": 32, "depths": [1], "num_heads": [2]}
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")  # inside spandrel's constructor


def test_ntire24_team34_parameter_count_and_names() -> None:
    with torch.device("meta"):
        net = CRAFT(**TEAM34)
    assert sum(p.numel() for p in net.parameters()) == 753_344
    sd = net.state_dict()
    assert sd["conv_first.weight"].shape == (48, 3, 3, 3)
    assert sd["layers.0.residual_group.hf_blocks.0.attn.temperature"].shape == (6, 1, 1)
    assert sd["upsample.0.weight"].shape == (48, 48, 3, 3)
    assert sd["relative_position_index_h"].shape == (64, 64)  # split 4 x 16 windows


def test_spandrel_detection_rebuilds_this_class() -> None:
    torch.manual_seed(0)
    sd = CRAFT(**TINY, upscale=2).state_dict()
    found = ModelLoader().load_from_state_dict(sd).model
    assert type(found) is SpandrelCRAFT
    net = CRAFT(**found.hyperparameters)  # what the registry does: same kwargs, this class
    net.load_state_dict(sd, strict=True)
    assert net.scale == 2 and net.hyperparameters == found.hyperparameters


def test_a_window_multiple_is_not_padded() -> None:
    net = CRAFT(**TINY, upscale=2).eval()
    seen: list[tuple[int, ...]] = []
    net.conv_first.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[-2:])))
    lq = torch.rand(1, 3, 16, 32)
    with torch.no_grad():
        sr = net(lq)
        torch.testing.assert_close(sr, net.forward_body(lq))
        theirs = SpandrelCRAFT.forward(net, lq)  # spandrel's forward on the same weights
    assert seen == [(16, 32), (16, 32), (32, 48)]  # ours twice unpadded; spandrel adds one 16-px window
    assert sr.shape == theirs.shape == (1, 3, 32, 64) and not torch.allclose(sr, theirs)


def test_other_sizes_reflect_pad_to_the_next_multiple_and_crop() -> None:
    net = CRAFT(**TINY, upscale=3).eval()
    lq = torch.rand(1, 3, 20, 13)
    with torch.no_grad():
        sr = net(lq)
        expected = net.forward_body(F.pad(lq, (0, 3, 0, 12), mode="reflect"))[..., :60, :39]
    torch.testing.assert_close(sr, expected)


@pytest.mark.parametrize(("h", "pad"), [(9, 7), (5, 11), (2, 14), (1, 15)])
def test_reflect_pad_equals_torch_where_torch_can_and_folds_beyond(h: int, pad: int) -> None:
    x = torch.rand(1, 2, h, 16)
    out = reflect_pad(x, pad, 0)
    assert out.shape == (1, 2, 16, 16) and torch.equal(out[:, :, :h], x)
    if pad < h:
        torch.testing.assert_close(out, F.pad(x, (0, 0, 0, pad), mode="reflect"))
    elif h > 1:
        assert torch.equal(out[:, :, h], x[:, :, h - 2]) and torch.equal(out[:, :, 2 * h - 2], x[:, :, 0])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_and_backward(scale: int) -> None:
    net = CRAFT(**TINY, upscale=scale)
    sr = net(torch.rand(1, 3, 10, 17))
    assert sr.shape == (1, 3, 10 * scale, 17 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
