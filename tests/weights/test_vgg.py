"""VGG19 weights for the perceptual loss: hub cache, local files, and the fast offline failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import srlab.weights.vgg as vgg
from srlab.errors import SRLabError
from srlab.losses import PerceptualLoss
from srlab.nets.vgg import _build_features


def _torchvision_layout(num_layers: int) -> dict[str, torch.Tensor]:
    feats = _build_features(num_layers)
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    sd["classifier.6.bias"] = torch.zeros(1000)  # a full file also has the classifier: ignored
    return sd


def test_offline_without_cache_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(vgg, "_host_reachable", lambda *a, **k: False)
    start = time.monotonic()
    with pytest.raises(SRLabError) as info:
        PerceptualLoss("conv5_4", vgg_weights="imagenet")
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
    loss = PerceptualLoss("relu1_2", vgg_weights="imagenet")
    assert torch.equal(loss.vgg.features[2].weight, sd["features.2.weight"])
    assert loss.weights_source == f"imagenet:{cache}"


@pytest.mark.parametrize("layout", ["torchvision", "features_only"])
def test_local_file_loads(tmp_path: Path, layout: str) -> None:
    sd = _torchvision_layout(6)
    if layout == "features_only":
        sd = {k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")}
    path = tmp_path / "vgg.pth"
    torch.save(sd, path)
    loss = PerceptualLoss("conv2_1", vgg_weights=str(path))
    key = "features.5.weight" if layout == "torchvision" else "5.weight"
    assert torch.equal(loss.vgg.features[5].weight, sd[key])
    assert loss.weights_source == f"file:{path}"


def test_local_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SRLabError, match="no such file"):
        PerceptualLoss("conv1_1", vgg_weights=str(tmp_path / "missing.pth"))
    path = tmp_path / "short.pth"
    torch.save(_torchvision_layout(1), path)
    with pytest.raises(SRLabError, match="lack"):
        PerceptualLoss("conv2_1", vgg_weights=str(path))


def test_failed_download_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionResetError("peer went away")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(vgg, "_host_reachable", lambda *a, **k: True)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    with pytest.raises(SRLabError, match=r"download failed \(ConnectionResetError\).*vgg_weights=random"):
        PerceptualLoss("conv1_1", vgg_weights="imagenet")
