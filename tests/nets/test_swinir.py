"""SwinIR: official names, published parameter counts, every upsampler at every scale, shifted-window maths."""

from __future__ import annotations

import pytest
import torch

from srlab.errors import ConfigError
from srlab.nets.swin import WindowAttention, shifted_window_mask, window_partition
from srlab.nets.swinir import SwinIR

TINY = {"img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [2, 1], "num_heads": [2, 4], "mlp_ratio": 2}


def _count(**kwargs: object) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in SwinIR(**kwargs).parameters())


def test_published_parameter_counts() -> None:
    medium = {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "window_size": 8, "mlp_ratio": 2}
    assert _count(**medium, upscale=4, img_size=48, upsampler="pixelshuffle") == 11_900_199  # SwinIR-M x4: 11.9 M
    light = {"embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4, "window_size": 8, "mlp_ratio": 2}
    tables = 24 * 15 * 15 * 6  # relative-position bias tables, which the paper's 897K leaves out
    assert _count(**light, upscale=4, upsampler="pixelshuffledirect") - tables == 897_228


def test_official_state_dict_names_and_buffers() -> None:
    sd = SwinIR(**TINY, upscale=4, upsampler="nearest+conv").state_dict()
    assert {"conv_first.weight", "patch_embed.norm.weight", "norm.bias", "conv_after_body.weight",
            "layers.0.residual_group.blocks.1.attn.relative_position_bias_table",
            "layers.0.residual_group.blocks.1.attn.qkv.weight", "layers.0.residual_group.blocks.1.mlp.fc2.bias",
            "layers.1.conv.weight", "conv_before_upsample.0.weight", "conv_up1.weight", "conv_up2.weight",
            "conv_hr.weight", "conv_last.weight"} <= set(sd)  # fmt: skip
    # released files carry the derived buffers: shifted blocks hold the mask for img_size (nW, N, N)
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_index"].shape == (16, 16)
    assert sd["layers.0.residual_group.blocks.1.attn_mask"].shape == (4, 16, 16)
    assert "layers.0.residual_group.blocks.0.attn_mask" not in sd
    three = SwinIR(**TINY, upscale=2, resi_connection="3conv").state_dict()
    assert three["layers.0.conv.4.weight"].shape == (8, 2, 3, 3) and three["upsample.0.weight"].shape == (256, 64, 3, 3)


CASES = [("pixelshuffle", s) for s in (1, 2, 3, 4, 8)] + [("pixelshuffledirect", s) for s in (1, 2, 3, 4)]
CASES += [("nearest+conv", 2), ("nearest+conv", 4), ("none", 1)]


@pytest.mark.parametrize(("upsampler", "scale"), CASES)
def test_shape_and_backward_any_input_size(upsampler: str, scale: int) -> None:
    net = SwinIR(**TINY, upscale=scale, upsampler=upsampler)
    sr = net(torch.rand(2, 3, 6, 11))  # not multiples of the window: padded inside, cropped back
    assert sr.shape == (2, 3, 6 * scale, 11 * scale)
    sr.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"upsampler": "pixelshuffle", "upscale": 5}, "upscale=5"),
     ({"upsampler": "nearest+conv", "upscale": 3}, "2 or 4"),
     ({"upsampler": "bilinear"}, "upsampler='bilinear'"), ({"resi_connection": "2conv"}, "2conv"),
     ({"num_heads": [3, 4]}, "not divisible"), ({"num_heads": [2]}, "num_heads has 1")],
)  # fmt: skip
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SwinIR(**{**TINY, **kwargs})


def _slice_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """The mask built as the Swin paper describes it: label the 3 x 3 regions by slices."""
    img = torch.zeros(1, h, w, 1)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, (hs, wss) in enumerate((a, b) for a in bands for b in bands):
        img[:, hs, wss, :] = i
    ids = window_partition(img, ws).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


@pytest.mark.parametrize(("h", "w"), [(8, 8), (16, 12), (8, 24)])
def test_shifted_window_mask_matches_slice_construction(h: int, w: int) -> None:
    torch.testing.assert_close(shifted_window_mask(h, w, 4, 2), _slice_mask(h, w, 4, 2))


def test_window_attention_matches_explicit_softmax() -> None:
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, ws=4, num_heads=2).eval()
    x, mask = torch.rand(2 * 4, 16, 8), shifted_window_mask(8, 8, 4, 2)  # batch 2, 4 windows each
    q, k, v = attn.qkv(x).view(8, 16, 3, 2, 4).permute(2, 0, 3, 1, 4)
    bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)].view(16, 16, 2).permute(2, 0, 1)
    logits = (q * 4**-0.5) @ k.transpose(-2, -1) + bias + mask.repeat(2, 1, 1)[:, None]
    expected = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(8, 16, 8))
    with torch.no_grad():
        torch.testing.assert_close(attn(x, mask), expected)
