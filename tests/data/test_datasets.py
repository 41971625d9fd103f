"""HQ-folder and paired datasets: alignment, augmentation, bad files, clear errors."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.datasets import HQFolderDataset, PairedFolderDataset, match_pairs
from srlab.data.degradations import degrade
from srlab.errors import ConfigError, SRLabError
from srlab.prepare import main as prepare_main
from tests.data.hostile import BAD_AT_DECODE, BAD_AT_SCAN, GOOD, make_hostile, rgb_array

NO_AUG = {"hflip": 0, "vflip": 0, "rot90": 0, "affine": 0}


def _u8(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.uint8  # the loaders send uint8; the model makes it float on the device
    return t.permute(1, 2, 0).numpy()


def _folder(tmp_path, n=3, size=(48, 40), name="hq"):
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rgb_array(i, size)).save(folder / f"img{i}.png")
    return folder


def test_on_the_fly_lq_is_the_degraded_gt_even_with_every_augmentation(tmp_path):
    torch.manual_seed(0)
    aug = {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5, "affine": 1.0}
    ds = HQFolderDataset(_folder(tmp_path), scale=4, patch_size=32, augment=aug, samples_per_epoch=6)
    assert len(ds) == 6
    for i in range(len(ds)):
        s = ds[i]
        assert s["lq"].shape == (3, 8, 8) and s["gt"].shape == (3, 32, 32) and s["lq"].dtype == torch.uint8
        expected = np.asarray(degrade(Image.fromarray(_u8(s["gt"])), 4, 1.5))
        assert np.array_equal(_u8(s["lq"]), expected)


def test_a_warping_dataset_imports_its_warp_library_before_workers_fork(tmp_path):
    """Imported first in a forked DataLoader worker, albumentations ran W&B's import hook there (ForkedError)."""
    import subprocess
    import sys

    folder = _folder(tmp_path)
    code = (
        "import sys\n"
        "from srlab.data.datasets import HQFolderDataset\n"
        f"HQFolderDataset({str(folder)!r}, patch_size=32, augment={{'affine': 0}})\n"
        "assert 'albumentations' not in sys.modules, 'imported without a warp'\n"
        f"HQFolderDataset({str(folder)!r}, patch_size=32, augment={{'affine': 0.3}})\n"
        "assert 'albumentations' in sys.modules, 'not imported in the main process'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]


def test_validation_center_crop_and_whole_image(tmp_path):
    folder = _folder(tmp_path, size=(50, 43))
    crop = HQFolderDataset(folder, patch_size=32, train=False, val_patch_size=32)
    assert crop[0]["gt"].shape == (3, 32, 32) and crop[0]["lq"].shape == (3, 8, 8)
    whole = HQFolderDataset(folder, patch_size=32, train=False, val_patch_size=None)
    s = whole[1]
    assert s["gt"].shape == (3, 40, 48)  # modcropped 43 x 50 -> 40 x 48
    assert torch.equal(s["gt"], whole[1]["gt"])  # validation is deterministic
    assert np.array_equal(_u8(s["lq"]), np.asarray(degrade(Image.fromarray(_u8(s["gt"])))))


def test_hostile_folder_uses_every_good_file_and_names_every_bad_one(tmp_path, caplog):
    folder = make_hostile(tmp_path / "hostile")
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        ds = HQFolderDataset(folder, patch_size=32, train=False, val_patch_size=32)
    used = {p.relative_to(folder).as_posix() for p in ds.items}
    assert used == (set(GOOD) - {"small.png"}) | set(BAD_AT_DECODE)  # its header is fine
    skipped = {p.name: reason for p, reason in ds.skipped}
    assert skipped.keys() == set(BAD_AT_SCAN) | {"small.png"}
    assert "smaller than the 32 px crop" in skipped["small.png"]
    for name, why in BAD_AT_SCAN.items():
        assert why in skipped[name] and name in caplog.text
    # the truncated JPEG fails only on decode: it is logged, counted, and another image is served
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        paths = [ds[i]["path"] for i in range(len(ds))]
    assert not any(p.endswith("truncated.jpg") for p in paths)
    assert ds.load_failures == 1 and "truncated.jpg" in caplog.text


def test_training_redraws_after_a_decode_failure(tmp_path):
    folder = _folder(tmp_path, n=2)
    data = (folder / "img1.png").read_bytes()
    ds = HQFolderDataset(folder, patch_size=32, samples_per_epoch=8)
    (folder / "img1.png").write_bytes(data[: len(data) // 2])  # breaks after the scan
    assert all(ds[i]["path"].endswith("img0.png") for i in range(8))
    assert ds.load_failures >= 1


def test_lowered_pixel_limit_skips_big_files(tmp_path):
    folder = _folder(tmp_path, n=1)
    Image.fromarray(rgb_array(5, (64, 64))).save(folder / "big.png")
    ds = HQFolderDataset(folder, patch_size=32, max_image_pixels=3000)
    assert [p.name for p in ds.items] == ["img0.png"]
    assert "above the limit 3000" in ds.skipped[0][1]


def test_errors_for_empty_and_all_bad_folders_and_bad_patch(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SRLabError, match="empty: no images found"):
        HQFolderDataset(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.raises(SRLabError, match="none of the 1 image files is usable"):
        HQFolderDataset(tmp_path / "bad")
    with pytest.raises(ConfigError, match="data.patch_size=30"):
        HQFolderDataset(_folder(tmp_path), patch_size=30)


@pytest.fixture
def prepared(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(rgb_array(0, (128, 128))).save(src / "a.png")
    Image.fromarray(rgb_array(1, (96, 112))).save(src / "b.png")
    assert prepare_main([str(src), "-o", str(tmp_path / "out")]) == 0
    return tmp_path / "out"


def test_paired_crops_from_prepare_output_align(prepared):
    """LQ crops come from the whole-image LQ, so they equal degrade(HQ crop) away from a thin border
    (the bicubic and blur supports) and exactly where the crop is the whole image."""
    torch.manual_seed(0)
    ds = PairedFolderDataset(prepared / "HQ", prepared / "LQ", patch_size=96, augment=NO_AUG, samples_per_epoch=6)
    for i in range(6):
        s = ds[i]
        assert s["gt"].shape == (3, 96, 96) and s["lq"].shape == (3, 24, 24)
        redo = np.asarray(degrade(Image.fromarray(_u8(s["gt"]))))
        assert np.array_equal(_u8(s["lq"])[8:-8, 8:-8], redo[8:-8, 8:-8])
    whole = PairedFolderDataset(prepared / "HQ", prepared / "LQ", patch_size=96, train=False)
    for s in (whole[0], whole[1]):
        assert np.array_equal(_u8(s["lq"]), np.asarray(degrade(Image.fromarray(_u8(s["gt"])))))


@pytest.mark.parametrize("aug, tol", [({"hflip": 1}, 0), ({"vflip": 1}, 0), ({"rot90": 1}, 2)])
def test_paired_augmentation_equals_degrading_the_augmented_hq(prepared, aug, tol):
    torch.manual_seed(0)
    ds = PairedFolderDataset(prepared / "HQ", prepared / "LQ", patch_size=96, augment={**NO_AUG, **aug},
                             samples_per_epoch=4)
    for i in range(4):
        s = ds[i]
        redo = np.asarray(degrade(Image.fromarray(_u8(s["gt"])))).astype(int)
        diff = np.abs(_u8(s["lq"]).astype(int) - redo)
        assert diff[8:-8, 8:-8].max() <= tol  # flips exact; a turn moves <= 2 levels (Pillow's row/column rounding)


def test_paired_name_mismatch_names_stems_and_folders(prepared):
    (prepared / "LQ" / "00001.png").rename(prepared / "LQ" / "extra.png")
    with pytest.raises(SRLabError) as info:
        match_pairs(prepared / "HQ", prepared / "LQ", 4)
    msg = str(info.value)
    assert "00001" in msg and "extra" in msg and str(prepared / "HQ") in msg and str(prepared / "LQ") in msg


def test_paired_accepts_basicsr_x4_names_and_checks_sizes(prepared):
    for p in (prepared / "LQ").glob("*.png"):
        p.rename(p.with_name(p.stem + "x4.png"))
    assert len(match_pairs(prepared / "HQ", prepared / "LQ", 4)) == 2
    lq = prepared / "LQ" / "00000x4.png"
    Image.open(lq).resize((20, 20)).save(lq)
    with pytest.raises(SRLabError, match=r"00000.png HQ 128x128 vs LQ 20x20 \(expected 32x32\)"):
        PairedFolderDataset(prepared / "HQ", prepared / "LQ", scale=4, patch_size=32)


def test_every_load_failing_gives_one_clear_error(tmp_path):
    folder = _folder(tmp_path, n=1)
    ds = HQFolderDataset(folder, patch_size=32, samples_per_epoch=2)
    (folder / "img0.png").write_bytes(b"gone")
    with pytest.raises(SRLabError, match="image loads failed in a row .*img0.png"):
        ds[0]
