"""srlab.prepare: every good image becomes a pair, every bad one is named, nothing stops the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from srlab.data.degradations import degrade
from srlab.prepare import main, positions
from tests.data.hostile import BAD, GOOD, make_hostile, rgb_array


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _pairs(out):
    hq, lq = sorted((out / "HQ").glob("*.png")), sorted((out / "LQ").glob("*.png"))
    assert [p.name for p in hq] == [p.name for p in lq]
    return list(zip(hq, lq))


def test_hostile_folder_writes_every_good_pair_and_names_every_bad_file(tmp_path, capsys):
    src = make_hostile(tmp_path / "in")
    code, out, err = _run(capsys, src, "-o", tmp_path / "out")
    assert code == 0
    pairs = _pairs(tmp_path / "out")
    assert [hq.name for hq, _ in pairs] == [f"{i:05d}.png" for i in range(len(GOOD))]
    assert f"wrote {len(GOOD)} pairs from {len(GOOD)} images" in out and f"{len(BAD)} skipped" in out
    for name, why in BAD.items():
        # told as every command tells a bad input (srlab.errors.report_bad_input), on stderr
        line = next(line for line in err.splitlines() if line.startswith(f"error: {src / name}: skipped, "))
        assert why in line
    assert "prepare" in err  # the tqdm bar
    summary = json.loads((tmp_path / "out" / "prepare_summary.json").read_text())
    assert summary["pairs_written"] == len(GOOD)
    assert {s["path"] for s in summary["skipped"]} == {str(src / n) for n in BAD}
    assert {p["source"] for p in summary["pairs"]} == {str(src / n) for n in GOOD}
    for hq, lq in pairs:
        hq_img, lq_img = Image.open(hq), Image.open(lq)
        assert hq_img.mode == lq_img.mode == "RGB"
        assert hq_img.width == 4 * lq_img.width and hq_img.height == 4 * lq_img.height
        assert np.array_equal(np.asarray(lq_img), np.asarray(degrade(hq_img.convert("RGB"))))


@pytest.mark.parametrize("case", ["missing", "empty", "only_bad"])
def test_nothing_usable_exits_2_with_one_error_line(tmp_path, capsys, case):
    src = tmp_path / "in"
    if case != "missing":
        src.mkdir()
    if case == "only_bad":
        (src / "a.png").write_bytes(b"")
        (src / "b.jpg").write_text("text")
    code, out, err = _run(capsys, src, "-o", tmp_path / "out")
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    skipped = [line for line in errors if ": skipped, " in line]  # one line per bad file, then the one that ends it
    assert len(errors) == len(skipped) + 1 and str(src) in errors[-1] and ": skipped, " not in errors[-1]
    if case == "only_bad":
        assert "a.png: skipped, empty file" in err and "b.jpg: skipped, not an image" in err


def test_augmented_copies_subimages_are_deterministic(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0, (48, 40))).save(src / "a.png")
    args = [src, "--augment-copies", "3", "--subimage-size", "32", "--subimage-step", "16", "--seed", "5"]
    for out in ("o1", "o2", "o3"):
        seed = ["--seed", "6"] if out == "o3" else []
        assert _run(capsys, *args, *seed, "-o", tmp_path / out)[0] == 0
    # (1 original + 3 copies) x crops at x in {0, 16}, y in {0, 8} (the last crop flush with the edge)
    p1, p2, p3 = (_pairs(tmp_path / o) for o in ("o1", "o2", "o3"))
    assert len(p1) == 16
    assert all(hq.read_bytes() == hq2.read_bytes() for (hq, _), (hq2, _) in zip(p1, p2))
    assert any(hq.read_bytes() != hq3.read_bytes() for (hq, _), (hq3, _) in zip(p1[4:], p3[4:]))
    assert all(Image.open(hq).size == (32, 32) and Image.open(lq).size == (8, 8) for hq, lq in p1)
    summary = json.loads((tmp_path / "o1" / "prepare_summary.json").read_text())
    assert [p["variant"] for p in summary["pairs"]][::4] == ["original", "augment1", "augment2", "augment3"]
    assert np.array_equal(np.asarray(Image.open(p1[0][0])), rgb_array(0, (48, 40))[:32, :32])


def test_subimage_positions_cover_edges():
    assert positions(100, 48, 24) == [0, 24, 48, 52]
    assert positions(96, 48, 24) == [0, 24, 48]
    assert positions(30, 48, 24) == [0]


def test_fixed_size_and_blur_options(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0, (50, 30))).save(src / "a.png")
    assert _run(capsys, src, "-o", tmp_path / "out", "--fixed-size", "64", "--blur-radius", "0")[0] == 0
    (hq, lq), = _pairs(tmp_path / "out")
    assert Image.open(hq).size == (64, 64) and Image.open(lq).size == (16, 16)
    assert np.array_equal(np.asarray(Image.open(lq)), np.asarray(Image.open(hq).resize((16, 16), Image.BICUBIC)))


def test_refuses_to_mix_with_old_pairs_and_bad_options(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0)).save(src / "a.png")
    assert _run(capsys, src, "-o", tmp_path / "out")[0] == 0
    code, _, err = _run(capsys, src, "-o", tmp_path / "out")
    assert code == 2 and "--overwrite" in err
    assert _run(capsys, src, "-o", tmp_path / "out", "--overwrite")[0] == 0
    code, _, err = _run(capsys, src, "-o", tmp_path / "o2", "--subimage-size", "30")
    assert code == 2 and "multiple of --scale" in err


@pytest.mark.slow
def test_workers_give_the_same_pairs(tmp_path, capsys):
    src = make_hostile(tmp_path / "in")
    for out, workers in (("w1", "1"), ("w2", "2")):
        assert _run(capsys, src, "-o", tmp_path / out, "--augment-copies", "1", "--workers", workers)[0] == 0
    assert [hq.read_bytes() for hq, _ in _pairs(tmp_path / "w1")] == [hq.read_bytes() for hq, _ in _pairs(tmp_path / "w2")]


def test_hq_scales_add_antialiased_smaller_copies_before_cutting(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0, (48, 40))).save(src / "a.png")
    assert _run(capsys, src, "-o", tmp_path / "out", "--hq-scales", "1,0.5,0.05", "--blur-radius", "0")[0] == 0
    (hq1, lq1), (hq2, lq2) = _pairs(tmp_path / "out")  # 0.05 would be 2x2, below the scale: left out
    original = Image.fromarray(rgb_array(0, (48, 40)))
    assert np.array_equal(np.asarray(Image.open(hq1)), np.asarray(original))
    assert np.array_equal(np.asarray(Image.open(hq2)), np.asarray(original.resize((24, 20), Image.LANCZOS)))
    assert Image.open(lq2).size == (6, 5)
    summary = json.loads((tmp_path / "out" / "prepare_summary.json").read_text())
    assert [p["variant"] for p in summary["pairs"]] == ["original", "original@0.5"]
    assert summary["settings"]["hq_scales"] == [1.0, 0.5, 0.05]


def test_bicubic_choice_makes_the_lq_with_that_kernel(tmp_path, capsys):
    from srlab.data.resize import imresize

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0, (48, 40))).save(src / "a.png")
    lqs = {}
    for kind in ("pil", "matlab"):
        assert _run(capsys, src, "-o", tmp_path / kind, "--blur-radius", "0", "--bicubic", kind)[0] == 0
        (hq, lq), = _pairs(tmp_path / kind)
        lqs[kind] = np.asarray(Image.open(lq))
    hq = np.asarray(Image.open(hq))
    assert np.array_equal(lqs["matlab"], imresize(hq, size=(10, 12)))
    assert np.array_equal(lqs["pil"], np.asarray(Image.fromarray(hq).resize((12, 10), Image.BICUBIC)))
    assert not np.array_equal(lqs["pil"], lqs["matlab"])


@pytest.mark.parametrize("args, why", [
    (["--hq-scales", "1,2"], "in (0, 1]"), (["--hq-scales", "1,x"], "comma-separated"),
    (["--bicubic", "cv2"], "invalid choice"), (["--hq-scales", "1,0.5", "--fixed-size", "64"], "use one of them"),
])
def test_bad_hq_scales_and_bicubic_give_one_error_line(tmp_path, capsys, args, why):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb_array(0)).save(src / "a.png")
    try:
        code, _, err = _run(capsys, src, "-o", tmp_path / "out", *args)
    except SystemExit as exc:  # argparse rejects the value itself
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and why in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
