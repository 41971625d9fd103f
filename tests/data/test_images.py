"""load_rgb / list_images / scan_images on every kind of file users bring."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from srlab.data import images
from srlab.data.images import ImageReadError, image_size, list_images, load_rgb, scan_images, set_max_image_pixels
from srlab.errors import SRLabError
from tests.data.hostile import BAD, BAD_AT_SCAN, GOOD, SIZE, SMALL, make_hostile, rgb_array


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_hostile(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def restore_limit():
    old = images.get_max_image_pixels()
    yield
    set_max_image_pixels(old)


def test_list_images_finds_every_image_sorted_case_insensitive(hostile):
    found = [p.relative_to(hostile).as_posix() for p in list_images(hostile)]
    assert found == sorted(found)
    assert set(found) == set(GOOD) | set(BAD)  # no notes.txt, no .hidden.png, dirloop not walked
    top = [p.name for p in list_images(hostile, recursive=False)]
    assert "nested.png" not in top and "UPPER.JPG" in top


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(SRLabError, match="does not exist"):
        list_images(tmp_path / "nope")


@pytest.mark.parametrize("name", GOOD)
def test_good_files_become_8bit_rgb(hostile, name):
    img = load_rgb(hostile / name)
    assert img.mode == "RGB"
    assert img.size == (SMALL if name == "small.png" else SIZE)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_raise_with_reason(hostile, name):
    with pytest.raises(ImageReadError) as info:
        load_rgb(hostile / name)
    assert BAD[name] in info.value.reason
    assert str(info.value).startswith(str(hostile / name))
    assert "\n" not in str(info.value)


def test_scan_finds_header_problems_and_reports_oriented_sizes(hostile):
    sizes, bad = scan_images(list_images(hostile))
    assert {p.name: r for p, r in bad}.keys() == BAD_AT_SCAN.keys()
    for p, reason in bad:
        assert BAD_AT_SCAN[p.name] in reason
    assert sizes[hostile / "rgb.png"] == SIZE


def test_16bit_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = np.asarray(load_rgb(tmp_path / "g16.png"))
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()


def test_alpha_dropped_and_palette_transparency_kept_as_colour(tmp_path):
    a = rgb_array(5)
    Image.fromarray(np.dstack([a, np.zeros(a.shape[:2], np.uint8)])).save(tmp_path / "clear.png")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "clear.png")), a)  # stored colour, not black


def test_exif_orientation_applied(tmp_path):
    a = rgb_array(6)  # (40, 48, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    assert load_rgb(tmp_path / "rot.jpg").size == (SIZE[1], SIZE[0])
    assert image_size(tmp_path / "rot.jpg") == (SIZE[1], SIZE[0])


def test_pixel_limit_per_call_and_process_wide(tmp_path, restore_limit):
    Image.fromarray(rgb_array(7)).save(tmp_path / "a.png")  # 48 x 40 = 1920 pixels
    with pytest.raises(ImageReadError, match=r"image has 1920 pixels, above the limit 1000 \(data.max_image_pixels"):
        load_rgb(tmp_path / "a.png", max_pixels=1000)
    set_max_image_pixels(1920)
    assert load_rgb(tmp_path / "a.png").size == SIZE  # exactly at the limit is fine
    set_max_image_pixels(1919)
    with pytest.raises(ImageReadError, match="above the limit 1919"):
        image_size(tmp_path / "a.png")
    with pytest.raises(SRLabError, match="positive integer"):
        set_max_image_pixels(0)


def test_huge_header_refused_without_allocating(hostile, restore_limit):
    set_max_image_pixels(images.DEFAULT_MAX_IMAGE_PIXELS)
    with pytest.raises(ImageReadError, match="image has 400000000 pixels, above the limit 178956970"):
        load_rgb(hostile / "bomb.png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_permission_denied(tmp_path):
    Image.fromarray(rgb_array(8)).save(tmp_path / "locked.png")
    os.chmod(tmp_path / "locked.png", 0)
    with pytest.raises(ImageReadError, match="permission denied"):
        load_rgb(tmp_path / "locked.png")
