"""PSNR/SSIM against values worked out by hand, MATLAB-style bicubic resize (LPIPS/DISTS: tests/metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.resize import imresize, resize_matrix, resize_uint8
from srlab.metrics import mean_metric, psnr, rgb_to_y, ssim, to_uint8_hwc


def test_psnr_constant_offset():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 10  # every pixel off by 10: MSE = 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.1308 dB


def test_psnr_two_value_image():
    # half of the pixels off by 4, half exact: MSE = (16 + 0) / 2 = 8
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[:2] = 4
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 8))


def test_psnr_crop_border_and_identical_is_inf():
    a = np.full((12, 12, 3), 50, np.uint8)
    b = a.copy()
    b[:2] = 0  # differences only inside the 2-px border
    assert psnr(a, b, crop_border=2) == float("inf")
    assert psnr(a, a) == float("inf")
    assert mean_metric([30.0, float("inf")]) == float("inf")  # the mean reports inf, no crash


def test_psnr_y_channel_of_gray_offset():
    # R = G = B shifted by d moves Y by (65.481 + 128.553 + 24.966) * d / 255 = 219 d / 255
    a = np.full((6, 6, 3), 80, np.uint8)
    b = a + 5
    dy = 219 * 5 / 255
    assert psnr(a, b, y_channel=True) == pytest.approx(10 * math.log10(255**2 / dy**2))
    assert rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(np.array([[[0, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16.0)


def test_ssim_constant_images_by_hand():
    # constant images: all variances 0, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    c1 = (0.01 * 255) ** 2
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 120, np.uint8)
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_ssim_identical_is_one_and_valid_filtering():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (21, 19, 3), dtype=np.uint8)
    assert ssim(a, a, crop_border=4, y_channel=True) == pytest.approx(1.0)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:10, :10], a[:10, :10])


def test_ssim_is_mean_over_channels():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    per_channel = [ssim(a[..., c : c + 1], b[..., c : c + 1]) for c in range(3)]
    assert ssim(a, b) == pytest.approx(np.mean(per_channel))
    assert 0 < ssim(a, b) < 1


def test_torch_input_is_quantized_like_basicsr():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    t = torch.from_numpy(a).permute(2, 0, 1).float() / 255 + 0.001  # off by less than half a level
    assert np.array_equal(to_uint8_hwc(t), a)
    assert np.array_equal(to_uint8_hwc(t[None]), a)
    assert psnr(t, a) == float("inf")


# ----------------------------------------------------------------- MATLAB-style bicubic


def test_resize_rows_sum_to_one_and_keep_constants():
    for n_in, n_out in [(16, 4), (5, 20), (37, 13)]:
        m = resize_matrix(n_in, n_out)
        assert m.shape == (n_out, n_in)
        assert np.allclose(m.sum(axis=1), 1.0)
    flat = np.full((12, 8, 3), 77, np.uint8)
    assert np.array_equal(imresize(flat, 0.25), np.full((3, 2, 3), 77, np.uint8))


def test_resize_upscale_weights_by_hand():
    # x2 upscaling: output pixel 5 (1-based) maps to input coordinate u = 5 / 2 + 0.25 = 2.75, so
    # inputs 1..4 (1-based) lie at distances 1.75, 0.75, -0.25, -1.25; Keys' cubic with a = -0.5
    # gives e.g. k(0.25) = 1.5 * 0.25^3 - 2.5 * 0.25^2 + 1 = 0.8671875
    m = resize_matrix(8, 16)
    w = [-0.0234375, 0.2265625, 0.8671875, -0.0703125]
    assert np.allclose(m[4, 0:4], w) and np.allclose(m[4, 4:], 0)
    # cubic convolution reproduces linear ramps away from the borders
    ramp = np.arange(8, dtype=np.float64)[None, :].repeat(4, 0)
    up = imresize(ramp, size=(4, 16))
    x = np.arange(1, 17) / 2 + 0.25 - 1  # 0-based input coordinate of every output pixel
    assert np.allclose(up[0, 4:12], x[4:12])


def test_resize_torch_matches_numpy_and_pillow_is_close():
    rng = np.random.default_rng(3)
    smooth = np.array(Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((64, 48), Image.BICUBIC))
    down = imresize(smooth.astype(np.float64) / 255, 0.25)
    t = imresize(torch.from_numpy(smooth).permute(2, 0, 1).double() / 255, 0.25)
    assert np.allclose(t.permute(1, 2, 0).numpy(), down)
    pil = resize_uint8(smooth, (12, 16), "pil")
    mat = resize_uint8(smooth, (12, 16), "matlab")
    assert np.abs(pil.astype(int) - mat).max() <= 3  # both antialiased Keys a=-0.5; rounding differs
    with pytest.raises(ValueError):
        resize_uint8(smooth, (12, 16), "cv2")
