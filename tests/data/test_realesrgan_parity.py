"""srlab's Real-ESRGAN degradation equals BasicSR's: numbers BasicSR 1.4.2 computed once
(``experiments/realesrgan/basicsr_reference.py`` -> ``tests/data/realesrgan_reference.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srlab.data.realesrgan import ops
from srlab.data.realesrgan.jpeg import jpeg
from srlab.data.realesrgan.kernels import KernelSpec
from srlab.data.realesrgan.params import Draw, StageDraw, collate_draws
from srlab.data.realesrgan.pipeline import degrade
from tests.data import realesrgan_reference as ref


def _u8(hex_string: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_string), np.uint8).reshape(shape).astype(np.int64)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().clamp(0, 255).to(torch.uint8).numpy().astype(np.int64)


@pytest.fixture(scope="module")
def gt() -> torch.Tensor:
    return torch.from_numpy(ref.test_image().transpose(2, 0, 1).copy()).float()[None] / 255  # (1, 3, 64, 64)


@pytest.mark.parametrize(("name", "kind", "params"), ref.KERNEL_PARAMS, ids=[k[0] for k in ref.KERNEL_PARAMS])
def test_kernels_equal_basicsr(name, kind, params):
    params = dict(params)
    pad_to = params.pop("pad_to", None)
    ours = KernelSpec(kind, **params).build(pad_to)
    theirs = np.array(getattr(ref, f"KERNEL_{name.upper()}"))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-6
    assert abs(ours.sum() - 1) < 1e-12


def test_usm_blur_is_opencvs_gaussian(gt):
    # a centred pulse through the separable blur gives the outer product of the taps
    pulse = torch.zeros(1, 1, 61, 61, dtype=torch.float64)
    pulse[..., 30, 30] = 1
    kernel = ops._gaussian_blur(pulse, 51)[0, 0, 5:56, 5:56].numpy()
    taps = np.array(ref.USM_TAPS_51)
    assert np.abs(kernel - np.outer(taps, taps)).max() < 1e-12


def test_usm_sharpening_equals_basicsr(gt):
    sharp = ops.usm_sharpen(gt)
    assert abs(float(sharp.double().sum()) - ref.USM_OF_TEST_IMAGE_SUM) < 1e-3  # 12288 values
    assert np.abs(_to_u8(sharp) - _u8(ref.USM_OF_TEST_IMAGE_HEX, (1, 3, 64, 64))).max() == 0


def test_jpeg_equals_diffjpeg(gt):
    crop = torch.cat([gt[..., :20, :36], gt[..., 30:50, 10:46]])  # not multiples of 16: padding is exercised
    ours = jpeg(crop, torch.tensor(ref.JPEG_QUALITIES))
    assert ours.shape == crop.shape
    assert np.abs(_to_u8(ours) - _u8(ref.JPEG_DIFFJPEG_255_HEX, (2, 3, 20, 36))).max() == 0


def _draw(p: dict) -> Draw:
    return Draw(KernelSpec(**p["kernel1"]), KernelSpec(**p["kernel2"]), KernelSpec(**p["sinc"]),
                StageDraw(**p["stage1"]), p["second_blur"], StageDraw(**p["stage2"]), p["final_resize_first"],
                p["final_mode"], p["seed"], (0, 0, 0))


@pytest.mark.parametrize("key", sorted(ref.PIPELINES))
def test_whole_degradation_equals_basicsrs_pipeline(gt, key):
    """Every random choice fixed (noise from the same seeded generator): the 8-bit LQ is identical.

    BasicSR's JPEG is DiffJPEG, computed here the same way, so no codec difference enters; against
    OpenCV's libjpeg DiffJPEG differs by 1.4-2.9 levels on average (experiments/realesrgan/README.md).
    """
    p = ref.PIPELINES[key]
    batch = collate_draws([_draw(p).to_item(21)])
    src = ops.usm_sharpen(gt) if p["usm"] else gt
    lq = degrade(src, batch, 4, torch.Generator().manual_seed(p["seed"]))
    assert lq.shape == (1, 3, 16, 16)
    theirs = _u8(getattr(ref, f"PIPELINE_{key.upper()}_LQ_HEX"), (16, 16, 3))
    assert np.abs(_to_u8(lq[0].permute(1, 2, 0)) - theirs).max() == 0
