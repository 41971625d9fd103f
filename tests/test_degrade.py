"""python -m srlab.degrade: the preview writes LQ images, their sampled parameters and one grid per input."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from srlab.degrade import main
from tests.data.hostile import rgb_array


def _photo(tmp_path, name="photo.png", size=(120, 100)):
    path = tmp_path / name
    Image.fromarray(rgb_array(2, size)).save(path)
    return path


def test_preview_writes_lq_params_and_grid(tmp_path, capsys):
    photo = _photo(tmp_path)
    out = tmp_path / "out"
    assert main([str(photo), "-o", str(out), "-n", "3", "--seed", "5", "--crop", "8", "--set", "data.patch_size=96",
                 "--set", "data.degradation.crop_ratio=1"]) == 0
    lqs = sorted((out / "photo").glob("lq_*.png"))
    assert [p.name for p in lqs] == ["lq_00.png", "lq_01.png", "lq_02.png"]
    assert all(Image.open(p).size == (24, 24) for p in lqs)  # the 96 px HQ crop training degrades (crop_ratio 1) / 4
    params = json.loads((out / "photo" / "params.json").read_text())
    assert params["hq_crop"] == [0, 12, 96] and len(params["samples"]) == 3
    first = params["samples"][0]
    assert first["seed"] == [5, 0] and {"kernel1", "stage1", "stage2", "final", "noise_seed"} <= set(first["params"])
    assert 30 <= first["params"]["stage1"]["jpeg_quality"] <= 95
    grid = Image.open(out / "photo_grid.png")
    assert grid.size == (4 * 96 + 3 * 2, 96)  # HQ + 3 samples in one row, each shown at 96 px
    again = tmp_path / "again"
    assert main([str(photo), "-o", str(again), "-n", "3", "--seed", "5", "--crop", "8", "--set", "data.patch_size=96",
                 "--set", "data.degradation.crop_ratio=1"]) == 0
    assert all(np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(again / "photo" / p.name))) for p in lqs)
    assert "photo_grid.png" in capsys.readouterr().out


def test_preview_takes_the_training_keys_and_other_presets(tmp_path):
    photo = _photo(tmp_path)
    out = tmp_path / "out"
    sets = ["--set", "data.patch_size=80", "--set", "data.degradation.noise_range=[1,2]",
            "--set", "data.degradation.gaussian_noise_prob=1", "--set", "data.degradation.crop_ratio=1"]
    assert main([str(photo), "-o", str(out), "-n", "4", "--crop", "8"] + sets) == 0
    samples = json.loads((out / "photo" / "params.json").read_text())["samples"]
    assert all(s["params"]["stage1"]["noise"]["type"] == "gaussian" and s["params"]["stage1"]["noise"]["sigma"] <= 2
               for s in samples)
    assert Image.open(out / "photo" / "lq_00.png").size == (20, 20)
    assert main([str(photo), "-o", str(tmp_path / "bic"), "-n", "1", "--degradation", "bicubic"]) == 0
    bic = json.loads((tmp_path / "bic" / "photo" / "params.json").read_text())["samples"][0]["params"]
    assert bic == {"kind": "bicubic", "blur_radius": 0, "order": "resize_then_blur", "resize": "pil"}


def test_preview_crop_defaults_to_a_size_a_person_can_judge(tmp_path):
    photo = _photo(tmp_path, size=(400, 300))
    assert main([str(photo), "-o", str(tmp_path / "out"), "-n", "1", "--degradation", "bicubic"]) == 0
    assert Image.open(tmp_path / "out" / "photo" / "lq_00.png").size == (64, 64)  # 256 px HQ crop / 4
    assert Image.open(tmp_path / "out" / "photo_grid.png").size == (2 * 256 + 2, 256)


def test_bad_inputs_are_one_line(tmp_path, capsys):
    photo = _photo(tmp_path)
    assert main([str(photo), "-o", str(tmp_path / "o"), "--set", "data.degradation.kernel_prob=[1]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.degradation.kernel_prob=[1.0] must be 6") and "\n" not in err
    assert main([str(photo), "-o", str(tmp_path / "o"), "--set", "data.degradation.no_key=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_key" in err and "\n" not in err and "Traceback" not in err
    assert main([str(photo), "-o", str(tmp_path / "o"), "--degradation", "sharp"]) == 2
    assert "sharp" in capsys.readouterr().err
    small = _photo(tmp_path, "small.png", (40, 40))
    assert main([str(small), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "-n", "1"]) == 1
    err = capsys.readouterr().err
    assert "small.png: 40x40 is smaller than the 76 px" in err and "missing.png: no such file" in err
