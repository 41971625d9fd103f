"""The tile progress bar of srlab.upscale: counts every tile of every input, warns early on long jobs."""

from __future__ import annotations

import re

from PIL import Image

import srlab.infer.progress
from srlab.infer import load_generator, tile_count, upscale_array
from tests.infer.test_generator import rand_image, save_ckpt
from tests.upscale.test_cli import run


def test_on_tile_called_once_per_tile(ckpt):
    gen = load_generator(ckpt)
    calls = []
    upscale_array(gen, rand_image(9, 5), tile=4, tile_pad=2, on_tile=lambda: calls.append(1))
    assert len(calls) == tile_count(9, 5, 4) == 3 * 2
    assert tile_count(13, 9, 0) == 1


def test_one_bar_over_all_tiles_of_all_inputs(tmp_path, ckpt, capsys):
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")  # 2 x 2 tiles of 4
    Image.fromarray(rand_image(3, 5)).save(tmp_path / "b.png")  # 1 x 2 tiles of 4
    assert main_loud(ckpt, tmp_path / "out", tmp_path / "a.png", tmp_path / "b.png", extra=["--tile", "4"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"upscale: 100%.* 6/6 .*(tile/s|s/tile)", err), err
    assert "a.png -> a.png" in err and "b.png -> b.png" in err  # a line per image for several inputs
    assert "note: about" not in err  # a tiny job predicts well under a minute


def test_long_job_gets_one_estimate_line(tmp_path, ckpt, capsys, monkeypatch):
    monkeypatch.setattr(srlab.infer.progress, "WARN_SECONDS", 0.0)
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")
    assert main_loud(ckpt, tmp_path / "out", tmp_path / "a.png", extra=["--tile", "4"]) == 0
    err = capsys.readouterr().err
    assert err.count("note: about") == 1 and "for 4 tiles" in err and "--precision" in err and "GPU" in err
    assert "a.png -> " not in err  # one image: the bar alone


def test_quiet_silences_bar_and_estimate(tmp_path, ckpt, capsys, monkeypatch):
    monkeypatch.setattr(srlab.infer.progress, "WARN_SECONDS", 0.0)
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")
    assert run(ckpt, tmp_path / "out", tmp_path / "a.png", extra=["--tile", "4"]) == 0
    err = capsys.readouterr().err
    assert "tile" not in err and "note" not in err


def test_failed_input_leaves_bar_total_consistent(tmp_path, ckpt, capsys):
    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")  # 4 tiles
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 20)
    assert main_loud(ckpt, tmp_path / "out", tmp_path / "a.png", tmp_path / "bad.png", extra=["--tile", "4"]) == 1
    assert re.search(r" 4/4 ", capsys.readouterr().err)


def main_loud(ckpt, out, *inputs, extra=()):
    from srlab.upscale import main

    return main([*map(str, inputs), "-o", str(out), "--weights", str(ckpt), *extra])


def test_evaluate_shows_tiles_of_a_tiled_benchmark_image(tmp_path, capsys):
    from srlab.evaluate import main as evaluate

    hr = tmp_path / "Tiny" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(rand_image(24, 20)).save(hr / "a.png")  # lq 6 x 5: 2 x 2 tiles of 4
    save_ckpt(tmp_path / "last.ckpt")
    args = [f"benchmarks=[{hr}]", f"weights=[{tmp_path / 'last.ckpt'}]", f"out={tmp_path / 'out'}", "lpips=false"]
    evaluate([*args, "tile=4", "figures.count=0"])
    # a tile bar of 4 (leave=False: gone once done, so its last state may not be printed)
    assert re.search(r"a\.png: .*\d/4 \[.*tile", capsys.readouterr().err)
    evaluate([*args, "tile=0", "figures.count=0"])
    assert "tile" not in capsys.readouterr().err  # untiled: the image bar alone
