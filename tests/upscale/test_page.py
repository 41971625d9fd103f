"""srlab.upscale --compare: OUT/index.html with a before/after slider per image, offline."""

from __future__ import annotations

import re

import cv2
import numpy as np
from PIL import Image

from srlab.data.images import read_image
from tests.infer.test_generator import rand_image
from tests.upscale.test_cli import run


def test_compare_page_links_bicubic_and_output_of_same_size(tmp_path, ckpt, capsys):
    img = rand_image(6, 5)
    Image.fromarray(img).save(tmp_path / "a+b.png")
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "deep.tif")  # kept as TIFF, which browsers do not show
    out = tmp_path / "out"
    assert run(ckpt, out, tmp_path / "a+b.png", tmp_path / "deep.tif", extra=["--compare", "--suffix", "_x4"]) == 0
    page = (out / "index.html").read_text()
    assert f"before/after page: {out / 'index.html'}" in capsys.readouterr().out
    assert "last.ckpt (RRDBNet x4)" in page and page.count('class="cmp"') == 2
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    pairs = re.findall(r'class="after" src="([^"]+)".*?class="before" src="([^"]+)"', page, re.S)
    assert pairs == [
        ("a%2Bb_x4.png", "compare/a%2Bb_x4_bicubic.png"),  # names quoted for the URL
        ("compare/deep_x4.png", "compare/deep_x4_bicubic.png"),  # a TIFF output gets a PNG copy to show
    ]
    after, before = read_image(out / "a+b_x4.png"), read_image(out / "compare" / "a+b_x4_bicubic.png")
    assert after.shape == before.shape == (24, 20, 3)
    expected = cv2.resize(img, (20, 24), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(before, expected)  # the "before" is bicubic of the input, not the model
    assert re.search(r"a\+b\.png: 5&times;6 &rarr; 20&times;24, \d+\.\d s", page)


def test_relative_output_folder(tmp_path, ckpt, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(rand_image(4, 4)).save("a.png")
    assert run(ckpt, "out", "a.png", extra=["--compare"]) == 0
    assert 'class="after" src="a.png"' in (tmp_path / "out" / "index.html").read_text()


def test_no_page_without_compare(tmp_path, ckpt):
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    assert run(ckpt, tmp_path / "out", tmp_path / "a.png") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
