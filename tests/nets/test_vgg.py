"""VGGFeatureExtractor: layer naming, freezing, weight sources and the fast offline failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

import srlab.nets.vgg as vgg
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
    conv = VGGFeatureExtractor("conv2_2", weights="random")
    relu = VGGFeatureExtractor("relu2_2", weights="random")
    assert isinstance(conv.features[-1], nn.Conv2d) and len(conv.features) == 8
    assert isinstance(relu.features[-1], nn.ReLU) and len(relu.features) == 9
    f_conv, f_relu = conv(x), relu(x)
    assert f_conv.shape == (1, 128, 8, 8)
    assert (f_conv < 0).any()  # before activation: negative values survive
    assert torch.equal(f_relu, f_conv.clamp(min=0))


def test_frozen_eval_and_out_of_state_dict() -> None:
    ext = VGGFeatureExtractor("relu1_2", weights="random")
    ext.train()
    assert not ext.training
    assert list(ext.parameters()) == [] and len(ext.state_dict()) == 0
    assert all(not b.requires_grad for b in ext.buffers())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    ext(x).sum().backward()  # gradients still reach the input (the generator's output)
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert ext.weights_source == "random(seed=0)"


def test_random_is_seeded_and_keeps_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = VGGFeatureExtractor("conv1_2", weights="random")
    assert torch.equal(torch.rand(1), before)
    b = VGGFeatureExtractor("conv1_2", weights="random")
    assert torch.equal(a.features[0].weight, b.features[0].weight)


def test_unknown_layer() -> None:
    with pytest.raises(SRLabError, match="relu5_4"):
        VGGFeatureExtractor("conv6_1", weights="random")


def _torchvision_layout(num_layers: int) -> dict[str, torch.Tensor]:
    feats = vgg._build_features(num_layers)
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    sd["classifier.6.bias"] = torch.zeros(1000)  # a full file also has the classifier: ignored
    return sd


def test_offline_without_cache_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(vgg, "_host_reachable", lambda *a, **k: False)
    start = time.monotonic()
    with pytest.raises(SRLabError) as info:
        VGGFeatureExtractor("conv5_4", weights="imagenet")
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert "vgg_weights=random" in msg and "vgg_weights=/path/to/vgg19.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    assert "\n" not in msg


def test_reachability_check_is_bounded() -> None:
    start = time.monotonic()
    assert vgg._host_reachable("127.0.0.1", 9, timeout=1.0) is False  # discard port: nothing listens
    assert time.monotonic() - start < 3


def test_imagenet_uses_hub_cache_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cache.parent.mkdir()
    sd = _torchvision_layout(3)
    torch.save(sd, cache)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(vgg, "_host_reachable", lambda *a, **k: pytest.fail("network must not be touched"))
    ext = VGGFeatureExtractor("relu1_2", weights="imagenet")
    assert torch.equal(ext.features[2].weight, sd["features.2.weight"])
    assert ext.weights_source == f"imagenet:{cache}"


@pytest.mark.parametrize("layout", ["torchvision", "features_only"])
def test_local_file_loads(tmp_path: Path, layout: str) -> None:
    sd = _torchvision_layout(6)
    if layout == "features_only":
        sd = {k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")}
    path = tmp_path / "vgg.pth"
    torch.save(sd, path)
    ext = VGGFeatureExtractor("conv2_1", weights=str(path))
    key = "features.5.weight" if layout == "torchvision" else "5.weight"
    assert torch.equal(ext.features[5].weight, sd[key])
    assert ext.weights_source == f"file:{path}"


def test_local_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SRLabError, match="no such file"):
        VGGFeatureExtractor("conv1_1", weights=str(tmp_path / "missing.pth"))
    path = tmp_path / "short.pth"
    torch.save(_torchvision_layout(1), path)
    with pytest.raises(SRLabError, match="lack"):
        VGGFeatureExtractor("conv2_1", weights=str(path))


def test_failed_download_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionResetError("peer went away")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(vgg, "_host_reachable", lambda *a, **k: True)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    with pytest.raises(SRLabError, match=r"download failed \(ConnectionResetError\).*vgg_weights=random"):
        VGGFeatureExtractor("conv1_1", weights="imagenet")
