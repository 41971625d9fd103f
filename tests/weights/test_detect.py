"""detect_architecture: state dicts written in each published layout (names and shapes below, not
taken from srlab's nets) are recognised with their hyperparameters and load strictly into the net built."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from srlab.weights.detect import detect_architecture
from srlab.errors import SRLabError
from srlab.nets import Autoencoder, SRResNet, VanillaGenerator
from srlab.weights import load_generator_weights

Spec = dict[str, tuple[int, ...]]


def conv(name: str, out: int, inp: int, k: int = 3) -> Spec:
    return {f"{name}.weight": (out, inp, k, k), f"{name}.bias": (out,)}


def vec(name: str, n: int, bias: bool = True) -> Spec:
    return {f"{name}.weight": (n,), **({f"{name}.bias": (n,)} if bias else {})}


def tensors(spec: Spec) -> dict[str, torch.Tensor]:
    # index buffers must hold valid indices; everything else random
    return {k: torch.zeros(s, dtype=torch.long) if k.endswith("_index") else torch.randn(s) for k, s in spec.items()}


def rrdbnet_basicsr(nf: int, nb: int, gc: int, in_ch: int = 3, up: int = 2) -> Spec:
    """BasicSR / Real-ESRGAN RRDBNet (RealESRGAN_x4plus.pth: {'params_ema': ...})."""
    spec = conv("conv_first", nf, in_ch)
    for b in range(nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                spec |= conv(f"body.{b}.rdb{r}.conv{c}", nf if c == 5 else gc, nf + (c - 1) * gc)
    spec |= conv("conv_body", nf, nf)
    for u in range(1, up + 1):
        spec |= conv(f"conv_up{u}", nf, nf)
    return spec | conv("conv_hr", nf, nf) | conv("conv_last", 3, nf)


def rrdbnet_original(nf: int, nb: int, gc: int) -> Spec:
    """xinntao/ESRGAN RRDB_ESRGAN_x4.pth: a flat Sequential, model.1.sub.N is the trunk conv."""
    spec = conv("model.0", nf, 3)
    for b in range(nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                spec |= conv(f"model.1.sub.{b}.RDB{r}.conv{c}.0", nf if c == 5 else gc, nf + (c - 1) * gc)
    spec |= conv(f"model.1.sub.{nb}", nf, nf)
    return spec | conv("model.3", nf, nf) | conv("model.6", nf, nf) | conv("model.8", nf, nf) | conv("model.10", 3, nf)


def srvgg(nf: int, nc: int, scale: int, prelu: bool = True) -> Spec:
    """Real-ESRGAN SRVGGNetCompact (realesr-general-x4v3.pth: {'params': ...}): body.N, activations in between."""
    spec = conv("body.0", nf, 3) | (vec("body.1", nf, bias=False) if prelu else {})
    for i in range(nc):
        spec |= conv(f"body.{2 * i + 2}", nf, nf) | (vec(f"body.{2 * i + 3}", nf, bias=False) if prelu else {})
    return spec | conv(f"body.{2 * nc + 2}", 3 * scale * scale, nf)


def edsr(nf: int, nb: int, scale: int) -> Spec:
    """BasicSR EDSR (EDSR_Mx4_f64b16_DIV2K_official.pth: {'params': ...})."""
    spec = conv("conv_first", nf, 3)
    for b in range(nb):
        spec |= conv(f"body.{b}.conv1", nf, nf) | conv(f"body.{b}.conv2", nf, nf)
    spec |= conv("conv_after_body", nf, nf)
    steps = [3] if scale == 3 else [2] * int(math.log2(scale))
    for i, f in enumerate(steps):
        spec |= conv(f"upsample.{2 * i}", f * f * nf, nf)
    return spec | conv("conv_last", 3, nf)


def msrresnet(nf: int, nb: int, scale: int) -> Spec:
    """BasicSR MSRResNet (MSRResNet_x4.pth: {'params': ...}): no BN, upconv1 (+ upconv2 for x4)."""
    spec = conv("conv_first", nf, 3)
    for b in range(nb):
        spec |= conv(f"body.{b}.conv1", nf, nf) | conv(f"body.{b}.conv2", nf, nf)
    spec |= conv("upconv1", 4 * nf if scale == 4 else scale * scale * nf, nf)
    spec |= conv("upconv2", 4 * nf, nf) if scale == 4 else {}
    return spec | conv("conv_hr", nf, nf) | conv("conv_last", 3, nf)


def swinir(embed: int, depths: list[int], heads: list[int], ws: int, img: int, upsampler: str, scale: int,
           mlp: int = 2, resi: str = "1conv") -> Spec:  # fmt: skip
    """JingyunLiang/SwinIR network_swinir.py state dicts, with the saved relative_position_index and attn_mask."""
    n, nw = ws * ws, (img // ws) ** 2
    spec = conv("conv_first", embed, 3) | vec("patch_embed.norm", embed) | vec("norm", embed)
    for i, (depth, h) in enumerate(zip(depths, heads)):
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}."
            spec |= vec(p + "norm1", embed) | vec(p + "norm2", embed)
            spec |= {p + "attn.relative_position_bias_table": ((2 * ws - 1) ** 2, h), p + "attn.relative_position_index": (n, n)}
            spec |= {p + "attn.qkv.weight": (3 * embed, embed), p + "attn.qkv.bias": (3 * embed,)}
            spec |= {p + "attn.proj.weight": (embed, embed), p + "attn.proj.bias": (embed,)}
            spec |= {p + "mlp.fc1.weight": (mlp * embed, embed), p + "mlp.fc1.bias": (mlp * embed,)}
            spec |= {p + "mlp.fc2.weight": (embed, mlp * embed), p + "mlp.fc2.bias": (embed,)}
            if j % 2:
                spec[p + "attn_mask"] = (nw, n, n)
        for name in [f"layers.{i}.conv", "conv_after_body"]:
            q = embed // 4
            three = conv(f"{name}.0", q, embed) | conv(f"{name}.2", q, q, 1) | conv(f"{name}.4", embed, q)
            spec |= conv(name, embed, embed) if resi == "1conv" else three
    if upsampler == "pixelshuffle":
        steps = [3] if scale == 3 else [2] * int(math.log2(scale))
        spec |= conv("conv_before_upsample.0", 64, embed) | conv("conv_last", 3, 64)
        for i, f in enumerate(steps):
            spec |= conv(f"upsample.{2 * i}", f * f * 64, 64)
    elif upsampler == "pixelshuffledirect":
        spec |= conv("upsample.0", 3 * scale * scale, embed)
    elif upsampler == "nearest+conv":
        spec |= conv("conv_before_upsample.0", 64, embed) | conv("conv_up1", 64, 64) | conv("conv_hr", 64, 64)
        spec |= (conv("conv_up2", 64, 64) if scale == 4 else {}) | conv("conv_last", 3, 64)
    else:
        spec |= conv("conv_last", 3, embed)
    return spec


SW = {"embed": 8, "depths": [2, 3], "heads": [2, 4], "ws": 4, "img": 16}
CASES = {
    "RealESRGAN_x4plus": ({"params_ema": rrdbnet_basicsr(8, 2, 4)}, "RRDBNet",
                          {"num_feat": 8, "num_block": 2, "num_grow_ch": 4, "scale": 4}),
    "RealESRGAN_x2plus": ({"params_ema": rrdbnet_basicsr(8, 1, 4, in_ch=12)}, "RRDBNet",
                          {"num_in_ch": 3, "num_feat": 8, "num_block": 1, "scale": 2}),
    "RRDBNet_x1_unshuffle4": (rrdbnet_basicsr(8, 1, 4, in_ch=48), "RRDBNet", {"scale": 1}),
    "RRDBNet_x8": (rrdbnet_basicsr(8, 1, 4, up=3), "RRDBNet", {"scale": 8}),
    "RRDB_ESRGAN_x4_original": (rrdbnet_original(8, 3, 4), "RRDBNet", {"num_feat": 8, "num_block": 3, "scale": 4}),
    "realesr-general-x4v3": ({"params": srvgg(8, 4, 4)}, "SRVGGNetCompact",
                             {"num_feat": 8, "num_conv": 4, "upscale": 4, "act_type": "prelu"}),
    "srvgg_x2_relu": (srvgg(8, 2, 2, prelu=False), "SRVGGNetCompact", {"num_conv": 2, "upscale": 2, "act_type": "relu"}),
    "EDSR_Mx4": ({"params": edsr(8, 3, 4)}, "EDSR", {"num_feat": 8, "num_block": 3, "upscale": 4, "res_scale": 1.0}),
    "MSRResNet_x4": ({"params": msrresnet(8, 3, 4)}, "MSRResNet", {"num_feat": 8, "num_block": 3, "upscale": 4}),
    "MSRResNet_x3": (msrresnet(8, 2, 3), "MSRResNet", {"num_block": 2, "upscale": 3}),
    "MSRResNet_x2": (msrresnet(8, 1, 2), "MSRResNet", {"upscale": 2}),
    "EDSR_Lx3": ({"params": edsr(256, 1, 3)}, "EDSR", {"num_feat": 256, "upscale": 3, "res_scale": 0.1}),
    "SwinIR-M_classical_x3": ({"params": swinir(**SW, upsampler="pixelshuffle", scale=3)}, "SwinIR",
                              {"embed_dim": 8, "depths": [2, 3], "num_heads": [2, 4], "window_size": 4, "img_size": 16,
                               "upsampler": "pixelshuffle", "upscale": 3, "mlp_ratio": 2.0, "resi_connection": "1conv"}),
    "SwinIR-S_lightweight_x4": ({"params": swinir(**SW, upsampler="pixelshuffledirect", scale=4)}, "SwinIR",
                                {"upsampler": "pixelshuffledirect", "upscale": 4}),
    "SwinIR-L_realSR_x4_3conv": ({"params_ema": swinir(**SW, upsampler="nearest+conv", scale=4, resi="3conv")},
                                 "SwinIR", {"upsampler": "nearest+conv", "upscale": 4, "resi_connection": "3conv"}),
    "SwinIR_realSR_x2": (swinir(**SW, upsampler="nearest+conv", scale=2), "SwinIR", {"upscale": 2}),
    "SwinIR_denoise": (swinir(**{**SW, "img": 8}, upsampler="none", scale=1), "SwinIR",
                       {"upsampler": "none", "upscale": 1, "img_size": 8}),
}  # fmt: skip


@pytest.mark.parametrize("layout", list(CASES))
def test_published_layout_is_detected_and_loads_strictly(layout: str) -> None:
    obj, name, expected = CASES[layout]
    wrapped = not all(isinstance(v, tuple) for v in obj.values())  # {"params": spec} as released
    obj = {k: tensors(v) for k, v in obj.items()} if wrapped else tensors(obj)
    arch = detect_architecture(obj)
    assert arch.name == name
    assert {k: arch.net_config[k] for k in expected} == expected
    net = instantiate(arch.net_config)
    assert load_generator_weights(net, obj, strict=True).missing_keys == []
    scale = getattr(net, "scale")
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * scale, 8 * scale)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [(SRResNet, {"num_feat": 8, "num_block": 3, "scale": 3}), (VanillaGenerator, {"num_feat": 8, "scale": 8}),
     (Autoencoder, {"num_feat": 8})],
)  # fmt: skip
def test_srlab_layouts_round_trip_through_a_checkpoint(factory, kwargs: dict) -> None:  # noqa: ANN001
    sd = factory(**kwargs).state_dict()
    ckpt = {"state_dict": {f"generator.{k}": v for k, v in sd.items()}, "epoch": 1}  # as srlab.train saves
    arch = detect_architecture(ckpt)
    assert arch.name == factory.__name__
    assert {k: arch.net_config[k] for k in kwargs} == kwargs
    load_generator_weights(instantiate(arch.net_config), ckpt, strict=True)


def test_unknown_layout_names_first_keys_and_known_architectures() -> None:
    sd = {"encoder.stem.weight": torch.zeros(4, 3, 3, 3), "decoder.head.weight": torch.zeros(3, 4, 3, 3)}
    with pytest.raises(SRLabError) as info:
        detect_architecture(sd)
    msg = str(info.value)
    assert "\n" not in msg and "encoder.stem.weight, decoder.head.weight" in msg
    for name in ("RRDBNet", "SwinIR", "SRVGGNetCompact", "EDSR", "MSRResNet"):
        assert name in msg


def test_truncated_layout_is_unknown_not_a_crash() -> None:
    sd = tensors(edsr(8, 1, 2))
    del sd["conv_first.weight"]  # the anchor keys of EDSR remain but the net cannot be read off
    with pytest.raises(SRLabError, match="unknown generator layout"):
        detect_architecture(sd)
