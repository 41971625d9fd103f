"""VGGFeatureExtractor: layer naming, freezing, seeded random init, loading a given state dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import srlab.nets.vgg as vgg_module
from srlab.errors import SRLabError
from srlab.nets.vgg import VGG19_LAYER_NAMES, VGGFeatureExtractor


def test_layer_names_match_torchvision_indices() -> None:
    # torchvision vgg19().features: conv5_4 is index 34, its ReLU 35, the last pool 36
    assert len(VGG19_LAYER_NAMES) == 37
    expected = {"conv1_1": 0, "relu1_1": 1, "pool1": 4, "conv2_1": 5, "relu2_2": 8, "pool2": 9,
                "conv3_4": 16, "pool3": 18, "conv4_1": 19, "relu4_4": 26, "conv5_4": 34, "relu5_4": 35, "pool5": 36}  # fmt: skip
    for name, index in expected.items():
        assert VGG19_LAYER_NAMES.index(name) == index


def test_conv_is_before_activation_relu_after() -> None:
    x = torch.rand(1, 3, 16, 16)
    conv = VGGFeatureExtractor("conv2_2")
    relu = VGGFeatureExtractor("relu2_2")
    assert isinstance(conv.features[-1], nn.Conv2d) and len(conv.features) == 8
    assert isinstance(relu.features[-1], nn.ReLU) and len(relu.features) == 9
    f_conv, f_relu = conv(x), relu(x)
    assert f_conv.shape == (1, 128, 8, 8)
    assert (f_conv < 0).any()  # before activation: negative values survive
    assert torch.equal(f_relu, f_conv.clamp(min=0))


def test_frozen_eval_and_out_of_state_dict() -> None:
    ext = VGGFeatureExtractor("relu1_2")
    ext.train()
    assert not ext.training
    assert list(ext.parameters()) == [] and len(ext.state_dict()) == 0
    assert all(not b.requires_grad for b in ext.buffers())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    ext(x).sum().backward()  # gradients still reach the input (the generator's output)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_random_is_seeded_and_keeps_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = VGGFeatureExtractor("conv1_2")
    assert torch.equal(torch.rand(1), before)
    b = VGGFeatureExtractor("conv1_2")
    assert torch.equal(a.features[0].weight, b.features[0].weight)


def test_unknown_layer() -> None:
    with pytest.raises(SRLabError, match="relu5_4"):
        VGGFeatureExtractor("conv6_1")


def test_given_state_dict_is_loaded_and_checked() -> None:
    sd = {k: torch.full_like(v, 0.5) for k, v in vgg_module._build_features(6).state_dict().items()}
    ext = VGGFeatureExtractor("conv2_1", state_dict=sd)
    assert torch.equal(ext.features[5].weight, sd["5.weight"])
    with pytest.raises(SRLabError, match=r"my.pth: VGG19 weights lack \['5.weight'"):
        VGGFeatureExtractor("conv2_1", state_dict={k: v for k, v in sd.items() if k != "5.weight"}, source="my.pth")
    with pytest.raises(SRLabError, match=r"not VGG19 weights \(0.weight: file \(1, 3, 3, 3\)"):
        VGGFeatureExtractor("conv2_1", state_dict={**sd, "0.weight": torch.zeros(1, 3, 3, 3)})


def test_nets_do_no_file_or_network_io() -> None:
    import ast

    nets = Path(vgg_module.__file__).parent
    banned = {"socket", "urllib", "requests", "safetensors", "pickle", "os"}
    for path in nets.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & banned, path.name
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & {"load", "load_state_dict_from_url", "read_bytes", "read_text", "open"}, path.name
