"""srlab.upscale output formats: --ext, --quality, 16 bits, alpha, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cv2
from srlab.data.images import read_image
from tests.infer.test_generator import rand_image
from tests.upscale.test_cli import run


def test_ext_jpg_quality_and_webp(tmp_path, ckpt):
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")
    assert run(ckpt, tmp_path / "q90", tmp_path / "a.png", extra=["--ext", "jpg", "--quality", "90"]) == 0
    assert run(ckpt, tmp_path / "q10", tmp_path / "a.png", extra=["--ext", "jpg", "--quality", "10"]) == 0
    q90, q10 = tmp_path / "q90" / "a.jpg", tmp_path / "q10" / "a.jpg"
    assert Image.open(q90).format == "JPEG" and Image.open(q90).size == (20, 24)
    assert q10.stat().st_size < q90.stat().st_size  # --quality reaches the encoder
    assert run(ckpt, tmp_path / "w1", tmp_path / "a.png", extra=["--ext", "webp", "--suffix", "_x4"]) == 0
    webp = tmp_path / "w1" / "a_x4.webp"
    png = np.asarray(Image.open(tmp_path / "q90" / "a.jpg"))
    assert Image.open(webp).format == "WEBP" and np.asarray(Image.open(webp)).shape == png.shape


def test_auto_keeps_format_but_alpha_and_16bit_become_png(tmp_path, ckpt):
    Image.fromarray(rand_image(5, 5)).save(tmp_path / "photo.webp", quality=80)
    rgba = np.dstack([rand_image(5, 5), np.full((5, 5), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.webp", lossless=True)
    cv2.imwrite(str(tmp_path / "deep.tif"), rand_image(5, 5, np.uint16))
    assert run(ckpt, tmp_path / "out", tmp_path / "photo.webp", tmp_path / "clear.webp", tmp_path / "deep.tif") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clear.png", "deep.png", "photo.webp"]
    deep = read_image(tmp_path / "out" / "deep.png")
    assert deep.dtype == np.uint16 and np.any(deep % 257 != 0)  # 16 bits kept in PNG
    assert read_image(tmp_path / "out" / "clear.png").shape == (20, 20, 4)


def test_16bit_to_jpg_is_8bit(tmp_path, ckpt):
    cv2.imwrite(str(tmp_path / "deep.png"), rand_image(5, 5, np.uint16))
    assert run(ckpt, tmp_path / "out", tmp_path / "deep.png", extra=["--ext", "jpg"]) == 0
    assert read_image(tmp_path / "out" / "deep.jpg").dtype == np.uint8


def test_jpg_with_alpha_refused_in_one_line(tmp_path, ckpt, capsys):
    rgba = np.dstack([rand_image(5, 5), np.full((5, 5), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(rand_image(5, 5)).save(tmp_path / "plain.png")
    assert run(ckpt, tmp_path / "out", tmp_path / "clear.png", tmp_path / "plain.png", extra=["--ext", "jpg"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "clear.png" in line]
    assert len(err) == 1 and "alpha channel, which JPEG cannot store; use --ext png" in err[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["plain.jpg"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--ext", "gif"], "argument --ext: invalid choice: 'gif'"),
        (["--quality", "0"], "--quality 0: use 1..100"),
        (["--quality", "101"], "--quality 101: use 1..100"),
        (["--ext", "png", "--quality", "90"], "--quality applies to JPEG and WebP"),
    ],
)
def test_bad_options_one_line(tmp_path, ckpt, capsys, extra, says):
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exc:
        run(ckpt, tmp_path / "out", tmp_path / "a.png", extra=extra)
    assert exc.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and says in errors[0]
