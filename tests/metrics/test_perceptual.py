"""LPIPS and DISTS: srlab's numbers are torchmetrics' on the same backbone files, by hand on made cases, told offline."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch

from srlab.errors import SRLabError
from srlab.metrics import measure, perceptual
from srlab.metrics.perceptual import BACKBONES, PerceptualMetric, build_network, ensure_weights, lower_is_better
from tests.metrics.backbones import write_backbone


def _pair(seed: int = 0, size: tuple[int, int] = (48, 40)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def _reference(name: str, a: np.ndarray, b: np.ndarray) -> float:
    """torchmetrics' public metric classes, built as their docs say (torchvision reads torch.hub's cache)."""
    from torchmetrics.image.dists import DeepImageStructureAndTextureSimilarity
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    if name == "dists":
        metric = DeepImageStructureAndTextureSimilarity()
    else:
        metric = LearnedPerceptualImagePatchSimilarity(net_type="alex" if name == "lpips" else "vgg", normalize=True)
    return float(metric(_tensor(a), _tensor(b)))


def test_backbone_files_are_the_ones_torchvision_loads_for_torchmetrics():
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    assert BACKBONES["lpips"].url == AlexNet_Weights.DEFAULT.url
    assert BACKBONES["lpips_vgg"].url == BACKBONES["dists"].url == VGG16_Weights.DEFAULT.url


@pytest.mark.parametrize("name", ["lpips", pytest.param("lpips_vgg", marks=pytest.mark.slow),
                                  pytest.param("dists", marks=pytest.mark.slow)])
def test_equals_torchmetrics_on_the_same_weights(name, perceptual_hub, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(perceptual_hub.parent))  # the reference reads torch's own hub folder
    a, b = _pair()
    expected = _reference(name, a, b)
    assert expected > 0
    assert PerceptualMetric(name)(a, b) == pytest.approx(expected, rel=1e-6)  # torch's hub folder
    monkeypatch.setenv("TORCH_HOME", str(perceptual_hub.parent / "elsewhere"))
    named = PerceptualMetric(name, hub_dir=perceptual_hub)  # the folder a config names
    assert named(a, b) == pytest.approx(expected, rel=1e-6)
    assert named(a, a) == pytest.approx(0.0, abs=1e-6)  # a distance: 0 for identical images
    assert torch.hub.get_dir() == str(perceptual_hub.parent / "elsewhere" / "hub")  # put back after loading


def test_crop_border_and_uint8_quantization_are_applied(perceptual_hub):
    a, b = _pair(1, (64, 64))
    metric = PerceptualMetric("lpips", hub_dir=perceptual_hub)
    assert metric(a, b, crop_border=4) == pytest.approx(metric(a[4:-4, 4:-4], b[4:-4, 4:-4]), rel=1e-6)
    assert metric(_tensor(a)[0] + 0.001, b) == pytest.approx(metric(a, b), rel=1e-6)  # off by < half a level
    row = measure(a, b, 4, {"lpips": metric})
    assert list(row) == ["psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "lpips"]


def test_lpips_by_hand_white_against_black(tmp_path):
    # AlexNet whose first conv has one channel summing its window, every other weight 0: on white that
    # channel is positive everywhere, on black negative (ReLU: 0), so after LPIPS' unit-normalisation
    # the squared difference is 1 in that channel at every position of layer 1 and 0 in every other
    # layer; the spatial mean then leaves exactly the first weight of layer 1's linear head
    path = write_backbone(tmp_path, "lpips", zero=True)
    state = torch.load(path)
    first = torch.zeros(state["features.0.weight"].shape)
    first[0] = 1.0
    state["features.0.weight"] = first
    torch.save(state, path)
    metric = PerceptualMetric("lpips", hub_dir=tmp_path)
    white, black = np.full((32, 32, 3), 255, np.uint8), np.zeros((32, 32, 3), np.uint8)
    lin = metric_lin_weight()
    assert metric(white, black) == pytest.approx(lin, rel=1e-6)


def metric_lin_weight() -> float:
    """torchmetrics' shipped linear weight of AlexNet's first layer, first channel."""
    from pathlib import Path

    import torchmetrics.functional.image.lpips as tm_lpips

    lins = torch.load(Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth", map_location="cpu")
    return float(lins["lin0.model.1.weight"].flatten()[0])


@pytest.mark.slow
def test_dists_by_hand_on_flat_images(tmp_path):
    # VGG16 with every weight 0: each stage's features are 0 for both images, so their structure and
    # texture terms are 1; only the image itself (stage 0, 3 channels) differs. Black (0) and white (1)
    # are exact in fp32: variances and covariance 0 (texture term c/c = 1), structure term
    # (2 * 0 * 1 + c) / (0 + 1 + c), so DISTS = sum over the 3 channels of alpha * (1 - c / (1 + c)) / (sum alpha + sum beta)
    from torchmetrics.functional.image.dists import _PATH_WEIGHT_DISTS

    write_backbone(tmp_path, "dists", zero=True)
    learned = torch.load(_PATH_WEIGHT_DISTS)
    alpha, beta = learned["alpha"].flatten().double(), learned["beta"].flatten().double()
    c = 1e-6
    expected = float(alpha[:3].sum() * (1 - c / (1 + c)) / (alpha.sum() + beta.sum()))
    black, white = np.zeros((20, 20, 3), np.uint8), np.full((20, 20, 3), 255, np.uint8)
    assert PerceptualMetric("dists", hub_dir=tmp_path)(black, white) == pytest.approx(expected, rel=1e-5)
    assert expected > 0.01


@pytest.mark.timeout(10)
def test_offline_names_the_file_and_where_in_under_5_seconds(no_hub):
    start = time.perf_counter()
    reason = ensure_weights("dists")
    with pytest.raises(SRLabError, match="alexnet-owt-7be5be79.pth: place it in"):
        PerceptualMetric("lpips")(*_pair())
    assert time.perf_counter() - start < 5
    assert reason == (f"dists needs vgg16-397923af.pth: place it in {no_hub / 'checkpoints'}/ "
                      f"(from {BACKBONES['dists'].url}); download.pytorch.org is unreachable (no network in tests)")
    assert "\n" not in reason
    assert not (no_hub / "checkpoints").exists()  # nothing was fetched or made


@pytest.mark.timeout(10)
def test_a_host_that_never_answers_is_given_up_on(no_hub, monkeypatch):
    # a listening socket nobody accepts from: the connection is made, no answer ever comes
    monkeypatch.undo()  # the real probe
    monkeypatch.setenv("TORCH_HOME", str(no_hub.parent))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/alexnet-owt-7be5be79.pth"
        monkeypatch.setitem(BACKBONES, "lpips", perceptual.Backbone("alexnet", url))
        start = time.perf_counter()
        reason = ensure_weights("lpips")
        assert time.perf_counter() - start < 5
    assert "; 127.0.0.1 is unreachable (" in reason and "\n" not in reason
    assert not (no_hub / "checkpoints" / "alexnet-owt-7be5be79.pth").exists()


def test_build_never_starts_a_download(no_hub, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(SRLabError, match="place it in"):
        build_network("lpips_vgg")


def test_small_images_and_unknown_names_are_told(perceptual_hub):
    with pytest.raises(SRLabError, match="at least 31 px a side after the 4 px border crop, got 30x30"):
        PerceptualMetric("lpips", hub_dir=perceptual_hub)(*_pair(size=(38, 38)), crop_border=4)
    with pytest.raises(SRLabError, match="unknown metric 'nique'"):
        PerceptualMetric("nique")


def test_lower_is_better_knows_the_logged_names():
    assert lower_is_better("val/Set5/lpips") and lower_is_better("val/Set5/dists_bicubic")
    assert lower_is_better("lpips_vgg")
    assert not lower_is_better("val/Set5/psnr_y") and not lower_is_better("val/psnr")


def test_a_failed_download_is_one_line_and_leaves_no_file(no_hub, monkeypatch):
    def broken(url, dst, hash_prefix=None):
        assert hash_prefix == "7be5be79"  # torchvision's check: the hash in the file name
        raise RuntimeError('invalid hash value (expected "7be5be79", got "00000000")')

    monkeypatch.setattr(perceptual, "_unreachable", lambda url: "")
    monkeypatch.setattr(torch.hub, "download_url_to_file", broken)
    reason = ensure_weights("lpips")
    assert reason.endswith('; the download failed (invalid hash value (expected "7be5be79", got "00000000"))')
    assert not (no_hub / "checkpoints" / "alexnet-owt-7be5be79.pth").exists()
