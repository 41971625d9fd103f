"""Hostile image folders through training and upscale: every good file used, every bad one named, clean exits.

The same folder (tests/data/hostile.py) through ``srlab.prepare`` is tests/test_prepare.py::
test_hostile_folder_writes_every_good_pair_and_names_every_bad_file, through the datasets
tests/data/test_datasets.py::test_hostile_folder_uses_every_good_file_and_names_every_bad_one.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from PIL import Image

from srlab.data.images import DEFAULT_MAX_IMAGE_PIXELS, get_max_image_pixels
from srlab.errors import SRLabError
from srlab.train import build, run
from srlab.upscale import main as upscale_main
from tests.conftest import TINY_NETS, compose_config
from tests.data.hostile import BAD, BAD_AT_DECODE, BAD_AT_SCAN, GOOD, SMALL, make_hostile
from tests.infer.test_generator import save_ckpt

QUICK = ["model=quickstart", "debug=smoke", *TINY_NETS["quickstart"], "~callbacks.curves", "~callbacks.comparison_grid"]


def test_training_uses_every_good_file_and_names_every_bad_one(tmp_path, caplog):
    folder = make_hostile(tmp_path / "hostile")
    # validation on the same folder reads every usable file in order, so the truncated JPEG is decoded too
    cfg = compose_config(tmp_path / "run", [*QUICK, "data=hq_folder", f"data.train_dir={folder}",
                                            f"data.val_dir={folder}", "trainer.limit_val_batches=1.0"])
    datamodule, model, trainer = build(cfg)
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        trainer.fit(model, datamodule=datamodule)
    used = {p.relative_to(folder).as_posix() for p in datamodule.train_set.items}
    assert used == (set(GOOD) - {"small.png"}) | set(BAD_AT_DECODE)  # the truncated JPEG's header is fine
    for name, why in BAD_AT_SCAN.items():
        assert any(name in r.message and why in r.message for r in caplog.records), name
    assert f"{SMALL[0]}x{SMALL[1]} is smaller than the 32 px crop" in caplog.text
    assert "truncated.jpg" in caplog.text and "failed to decode" in caplog.text
    assert datamodule.val_set.load_failures >= 1
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_training_fails_fast_when_no_file_is_usable(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "zero.png").touch()
    (folder / "text.jpg").write_text("not a JPEG")
    with pytest.raises(SRLabError, match=r"none of the 2 images is readable"):
        run(compose_config(tmp_path / "run", [*QUICK, "data=hq_folder", f"data.train_dir={folder}"]))
    assert not (tmp_path / "run" / "checkpoints").exists()
    # the CLI (Hydra's real main, in-process): one line, exit 2
    from srlab.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["srlab.train", *QUICK, "data=hq_folder", f"data.train_dir={folder}",
                                      "hydra.run.dir=cli"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {folder}: none of the 2")


def _upscale_hostile(tmp_path: Path, capsys, keep_loop: bool) -> tuple[Path, Path, int, str]:
    folder = make_hostile(tmp_path / "hostile")
    if not keep_loop:
        (folder / "loop.png").unlink()
    ckpt = tmp_path / "w.ckpt"
    save_ckpt(ckpt)
    out = tmp_path / "out"
    # --ext png: one output name per input to check (auto would keep each input's own format)
    code = upscale_main([str(folder), "-o", str(out), "--weights", str(ckpt), "-q", "--tile", "0", "--ext", "png"])
    return folder, out, code, capsys.readouterr().err


def test_upscale_writes_every_good_file_and_names_every_bad_one(tmp_path, capsys):
    folder, out, code, err = _upscale_hostile(tmp_path, capsys, keep_loop=False)
    assert code == 1  # some inputs failed
    top_level_good = [n for n in GOOD if "/" not in n]  # a folder argument is not searched recursively
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(Path(n).stem + ".png" for n in top_level_good)
    for name in top_level_good:
        src = Image.open(folder / name)
        assert Image.open(out / (Path(name).stem + ".png")).size == (4 * src.width, 4 * src.height)
    lines = err.splitlines()
    for name in set(BAD) - {"loop.png"}:
        assert any(line.startswith(f"error: {folder / name}:") for line in lines), name
    bomb = next(line for line in lines if "bomb.png" in line)
    assert "above the limit" in bomb and "--max-image-pixels" in bomb


def test_upscale_names_a_symlink_loop_instead_of_crashing(tmp_path, capsys):
    folder, out, code, err = _upscale_hostile(tmp_path, capsys, keep_loop=True)
    assert code == 1 and f"error: {folder / 'loop.png'}: symlink loop" in err
    assert "Traceback" not in err and len(list(out.iterdir())) > 0  # the rest of the batch still ran


def test_upscale_bomb_message_names_the_option_that_raises_the_limit(tmp_path, capsys):
    err = _upscale_hostile(tmp_path, capsys, keep_loop=False)[3]
    bomb = next(line for line in err.splitlines() if "bomb.png" in line)
    assert "--max-image-pixels" in bomb and "raise it only for files you trust" in bomb


def test_upscale_max_image_pixels_option_moves_the_limit(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (20, 10)).save(src / "a.png")
    ckpt = tmp_path / "w.ckpt"
    save_ckpt(ckpt)
    code = upscale_main([str(src), "-o", str(tmp_path / "o1"), "--weights", str(ckpt), "-q",
                         "--max-image-pixels", "199"])
    assert code == 1 and "image has 200 pixels, above the limit 199 (--max-image-pixels" in capsys.readouterr().err
    code = upscale_main([str(src), "-o", str(tmp_path / "o2"), "--weights", str(ckpt), "-q",
                         "--max-image-pixels", "200"])
    assert code == 0 and (tmp_path / "o2" / "a.png").is_file()
    assert get_max_image_pixels() == DEFAULT_MAX_IMAGE_PIXELS  # process-wide limit restored after the run
