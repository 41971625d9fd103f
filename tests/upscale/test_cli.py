"""The upscale CLI in-process: image kinds, naming and path safety, bad files, unsafe weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cv2
from srlab.data.images import read_image
from srlab.upscale import main, safe_name
from tests.infer.test_generator import rand_image, save_evil


def run(ckpt, out, *inputs, extra=()):
    return main([*map(str, inputs), "-o", str(out), "--weights", str(ckpt), "-q", *extra])


def test_rgb_png_and_jpeg(tmp_path, ckpt):
    Image.fromarray(rand_image(10, 7)).save(tmp_path / "a.png")
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "b.jpg")
    assert run(ckpt, tmp_path / "out", tmp_path / "a.png", tmp_path / "b.jpg", extra=["--suffix", "_x4"]) == 0
    a = Image.open(tmp_path / "out" / "a_x4.png")
    assert a.size == (28, 40) and a.mode == "RGB"
    b = Image.open(tmp_path / "out" / "b_x4.jpg")  # --ext auto: the input's format
    assert b.format == "JPEG" and b.size == (20, 24)


# tiled equals untiled within 1/255 in fp32; in bf16 a tile's convolutions may accumulate in another order than the
# whole image's (oneDNN picks kernels by shape): 2/255 measured on RRDBNet x4 on an AMX Xeon (#24), 0 here
@pytest.mark.parametrize(("precision", "limit"), [("fp32", 1), ("bf16", 2)])
def test_tiled_cli_matches_untiled(tmp_path, ckpt, precision, limit):
    Image.fromarray(rand_image(21, 17)).save(tmp_path / "a.png")
    pinned = ["--precision", precision]
    assert run(ckpt, tmp_path / "full", tmp_path / "a.png", extra=["--tile", "0", *pinned]) == 0
    assert run(ckpt, tmp_path / "tiled", tmp_path / "a.png", extra=["--tile", "6", "--tile-pad", "20", *pinned]) == 0
    full = np.asarray(Image.open(tmp_path / "full" / "a.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "a.png")).astype(int)
    assert np.abs(full - tiled).max() <= limit


def test_default_precision_is_auto_which_follows_the_probe(native_bf16, tmp_path, ckpt, capsys):
    Image.fromarray(rand_image(10, 7)).save(tmp_path / "a.png")
    assert run(ckpt, tmp_path / "auto", tmp_path / "a.png") == 0
    expected = "bf16" if native_bf16 else "fp32"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f", {expected} (" in last and ("amx_bf16" if native_bf16 else "without native bf16") in last
    assert run(ckpt, tmp_path / "pinned", tmp_path / "a.png", extra=["--precision", expected]) == 0
    assert np.array_equal(read_image(tmp_path / "auto" / "a.png"), read_image(tmp_path / "pinned" / "a.png"))


def test_published_swinir_weights_need_no_model(tmp_path):
    from srlab.nets.swinir import SwinIR

    net = SwinIR(img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2], upscale=3)
    torch.save({"params": net.state_dict()}, tmp_path / "swinir_x3.pth")  # the official release wrapper
    Image.fromarray(rand_image(10, 7)).save(tmp_path / "a.png")
    assert run(tmp_path / "swinir_x3.pth", tmp_path / "out", tmp_path / "a.png") == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (21, 30)


def test_alpha_gray_palette(tmp_path, ckpt):
    rgba = np.dstack([rand_image(8, 6), np.linspace(0, 255, 48).reshape(8, 6).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rand_image(8, 6)[..., 0], "L").save(tmp_path / "gray.png")
    pal = Image.fromarray(rand_image(8, 6)).quantize(16)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    assert run(ckpt, tmp_path / "out", tmp_path / "rgba.png", tmp_path / "gray.png", tmp_path / "pal.png") == 0
    out = Image.open(tmp_path / "out" / "rgba.png")
    assert out.mode == "RGBA" and out.size == (24, 32)
    expected_alpha = cv2.resize(rgba[..., 3], (24, 32), interpolation=cv2.INTER_CUBIC)  # bicubic alpha
    assert np.array_equal(np.asarray(out)[..., 3], expected_alpha)
    assert Image.open(tmp_path / "out" / "gray.png").mode == "L"
    assert Image.open(tmp_path / "out" / "pal.png").mode == "RGBA"


def test_16bit_png_stays_16bit(tmp_path, ckpt):
    img16 = rand_image(7, 9, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), img16[..., ::-1])
    assert run(ckpt, tmp_path / "out", tmp_path / "deep.png") == 0
    out = read_image(tmp_path / "out" / "deep.png")
    assert out.dtype == np.uint16 and out.shape == (28, 36, 3)
    assert np.any(out % 257 != 0)  # real 16-bit values, not 8-bit ones stretched
    cv2.imwrite(str(tmp_path / "g16.png"), img16[..., 0])
    assert run(ckpt, tmp_path / "out", tmp_path / "g16.png") == 0
    g = read_image(tmp_path / "out" / "g16.png")
    assert g.dtype == np.uint16 and g.shape == (28, 36, 1)


def test_exif_orientation_applied(tmp_path, ckpt):
    img = Image.fromarray(rand_image(6, 10))  # 10 wide, 6 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert run(ckpt, tmp_path / "out", tmp_path / "rot.jpg") == 0
    out = Image.open(tmp_path / "out" / "rot.jpg")
    assert out.size == (24, 40) and 0x0112 not in out.getexif()  # turned once, with no stale tag to turn it again


def test_corrupt_file_reported_others_written(tmp_path, ckpt, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rand_image(5, 5)).save(src / "good.png")
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code = run(ckpt, tmp_path / "out", src, tmp_path / "nothing_here.png", extra=["--outscale", "2"])
    assert code == 1
    assert Image.open(tmp_path / "out" / "good.png").size == (10, 10)  # --outscale resizes after the net
    err = capsys.readouterr().err
    assert "bad.png" in err and "nothing_here.png" in err


def test_names_cannot_escape_and_inputs_never_overwritten(tmp_path, ckpt):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rand_image(4, 4)).save(src / "..weird name;rm -rf.png")
    Image.fromarray(rand_image(4, 4)).save(src / "x.png")
    before = (src / "x.png").read_bytes()
    # output folder == input folder, empty suffix, and a suffix trying to climb out
    assert run(ckpt, src, src / "x.png") == 0
    assert (src / "x.png").read_bytes() == before and (src / "x_2.png").is_file()
    out = tmp_path / "out"
    weird = src / "..weird name;rm -rf.png"  # dot-files are skipped in folders and globs, so name it
    assert run(ckpt, out, str(src / "*.png"), weird, extra=["--suffix", "/../../escaped"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and all(n.endswith("_escaped.png") and "/" not in n for n in names)
    assert names[0].startswith("weird_name_rm_-rf")  # x.png, x_2.png (the first run's output), the weird one
    assert not list(tmp_path.glob("escaped*")) and not list(tmp_path.parent.glob("*escaped*"))
    assert all(p.parent == out for p in out.iterdir())
    for evil in ("../../etc/passwd", "..", "/abs/x", "a\\b", "\x00nul", ".hidden"):
        name = safe_name(evil)
        assert "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith(".")
    assert safe_name("..") == "image"


def test_symlink_in_output_is_replaced_not_followed(tmp_path, ckpt):
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(victim)
    assert run(ckpt, out, tmp_path / "a.png") == 0
    assert victim.read_text() == "keep" and not (out / "a.png").is_symlink()


def test_unsafe_weights_refused(tmp_path, capsys):
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    marker = tmp_path / "pwned"
    save_evil(tmp_path / "evil.pth", marker)
    assert run(tmp_path / "evil.pth", tmp_path / "out", tmp_path / "a.png") == 2
    assert not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "refused" in err[0]


def test_usage_errors(tmp_path, ckpt, capsys):
    assert run(ckpt, tmp_path / "out", tmp_path / "missing_dir/") == 2
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    if not torch.cuda.is_available():
        assert run(ckpt, tmp_path / "out", tmp_path / "a.png", extra=["--device", "cuda:7"]) == 2
    assert "error:" in capsys.readouterr().err
