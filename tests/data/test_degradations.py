"""The degradation is the origin report's Pillow code, pixel for pixel, and keeps HQ/LQ aligned."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from srlab.data.degradations import bicubic, degrade, make_pair, modcrop
from srlab.errors import ConfigError
from tests.data.hostile import rgb_array


def _noise(h: int, w: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_equals_report_reference(scale):
    hq = _noise(12 * scale, 10 * scale)
    w, h = hq.size
    reference = hq.resize((w // scale, h // scale), Image.BICUBIC).filter(ImageFilter.GaussianBlur(radius=1.5))
    assert np.array_equal(np.asarray(degrade(hq, scale=scale)), np.asarray(reference))


def test_blur_then_resize_and_plain_bicubic():
    hq = _noise(48, 40)
    ref = hq.filter(ImageFilter.GaussianBlur(radius=2.0)).resize((10, 12), Image.BICUBIC)
    assert np.array_equal(np.asarray(degrade(hq, 4, 2.0, "blur_then_resize")), np.asarray(ref))
    plain = hq.resize((10, 12), Image.BICUBIC)
    assert np.array_equal(np.asarray(bicubic(hq, 4)), np.asarray(plain))
    assert np.array_equal(np.asarray(degrade(hq, 4, 0)), np.asarray(plain))


def test_modcrop_keeps_top_left_and_degrade_uses_it():
    hq = _noise(50, 43)  # w=43, h=50
    cropped = modcrop(hq, 4)
    assert cropped.size == (40, 48)
    assert np.array_equal(np.asarray(cropped), np.asarray(hq)[:48, :40])
    assert np.array_equal(modcrop(np.asarray(hq), 4), np.asarray(hq)[:48, :40])
    gt, lq = make_pair(hq, 4)
    assert gt.size == (40, 48) and lq.size == (10, 12)
    assert np.array_equal(np.asarray(lq), np.asarray(degrade(cropped, 4)))


def test_bad_settings_name_the_key():
    hq = _noise(16, 16)
    with pytest.raises(ConfigError, match="data.degradation.order"):
        degrade(hq, order="sideways")
    with pytest.raises(ConfigError, match="blur_radius"):
        degrade(hq, blur_radius=-1)
    with pytest.raises(ConfigError, match="data.scale"):
        degrade(hq, scale=0)
    with pytest.raises(ConfigError, match="data.degradation.resize"):
        degrade(hq, resize="cv2")


@pytest.mark.parametrize("blur", [0.0, 1.5])
def test_flips_commute_with_degradation_exactly_and_rot90_within_one_level(blur):
    a = np.asarray(_noise(48, 64, seed=1))
    lq = np.asarray(degrade(Image.fromarray(a), 4, blur))
    for flip in (lambda x: x[:, ::-1], lambda x: x[::-1]):
        out = np.asarray(degrade(Image.fromarray(np.ascontiguousarray(flip(a))), 4, blur))
        assert np.array_equal(out, flip(lq))
    # Pillow resizes (and box-blurs) rows then columns with 8-bit rounding in between, so a turn may
    # move a value by one level per rounded pass: 1 for the resize, 1 more for the blur.
    out = np.asarray(degrade(Image.fromarray(np.ascontiguousarray(np.rot90(a))), 4, blur))
    assert np.abs(out.astype(int) - np.rot90(lq)).max() <= (2 if blur else 1)


@pytest.mark.parametrize("blur, margin", [(0.0, 2), (1.5, 8)])
def test_crop_then_degrade_matches_degrade_then_crop_away_from_the_border(blur, margin):
    """Crops at offsets that are multiples of scale agree with the whole-image LQ except a thin border
    (the bicubic support, 2 LQ px, plus the blur's box passes)."""
    a = rgb_array(9, (128, 128))
    lq = np.asarray(degrade(Image.fromarray(a), 4, blur))
    y, x, p = 16, 32, 96
    crop_lq = np.asarray(degrade(Image.fromarray(a[y : y + p, x : x + p]), 4, blur))
    ref = lq[y // 4 : (y + p) // 4, x // 4 : (x + p) // 4]
    m = margin
    assert np.array_equal(crop_lq[m:-m, m:-m], ref[m:-m, m:-m])
