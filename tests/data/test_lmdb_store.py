"""data=lmdb: BasicSR's LMDB layout written here with the lmdb package, read as folders are."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.datamodule import SRDataModule
from srlab.data.lmdb_store import open_store, read_meta
from srlab.errors import ConfigError, SRLabError
from tests.data.hostile import rgb_array

lmdb = pytest.importorskip("lmdb")

SMALL = {"patch_size": 32, "val_patch_size": 32, "batch_size": 2, "val_batch_size": 2, "num_workers": 0,
         "samples_per_epoch": 6}


def write_basicsr_lmdb(folder: Path, images: dict[str, np.ndarray | bytes], level: int = 1) -> Path:
    """An LMDB as BasicSR's make_lmdb_from_imgs writes it: cv2 PNG of the BGR array under the key, meta_info.txt."""
    env = lmdb.open(str(folder), map_size=1 << 26)
    lines = []
    with env.begin(write=True) as txn:
        for key, img in images.items():
            if isinstance(img, bytes):  # a damaged record, listed with a plausible shape
                txn.put(key.encode(), img)
                lines.append(f"{key}.png (48,64,3) {level}")  # _pairs' size
                continue
            ok, buf = cv2.imencode(".png", img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, level])
            txn.put(key.encode(), buf.tobytes())
            lines.append(f"{key}.png ({img.shape[0]},{img.shape[1]},{img.shape[2]}) {level}")
    env.close()
    (folder / "meta_info.txt").write_text("\n".join(lines) + "\n")
    return folder


def _pairs(n=4, size=(64, 48)):
    hq = {f"{i:04d}_s{i:03d}": rgb_array(i, size) for i in range(n)}
    lq = {k: np.asarray(Image.fromarray(v).resize((size[0] // 4, size[1] // 4), Image.BICUBIC)) for k, v in hq.items()}
    return hq, lq


def _stores(tmp_path, n=4):
    hq, lq = _pairs(n)
    return write_basicsr_lmdb(tmp_path / "hq.lmdb", hq), write_basicsr_lmdb(tmp_path / "lq.lmdb", lq), hq, lq


def _batches(dm, n=3):
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def test_records_decode_to_the_written_rgb_and_sizes_come_from_headers(tmp_path):
    hq_path, _, hq, _ = _stores(tmp_path)
    store, sizes, bad = open_store(hq_path)
    assert bad == [] and list(store.meta) == list(hq)
    key = "0002_s002"
    assert sizes[key] == (64, 48) and store.meta[key] == (48, 64, 3)
    np.testing.assert_array_equal(np.asarray(store.record(key).load_rgb()), hq[key])  # BGR in the PNG's eyes: RGB out
    assert str(store.record(key)) == f"{hq_path}/{key}"


def test_paired_lmdb_gives_the_batches_of_the_same_pairs_in_folders(tmp_path):
    hq_path, lq_path, hq, lq = _stores(tmp_path)
    for name, imgs in (("HQ", hq), ("LQ", lq)):
        (tmp_path / name).mkdir()
        for k, v in imgs.items():
            Image.fromarray(v).save(tmp_path / name / f"{k}.png")
    common = {**SMALL, "seed": 3}
    folders = SRDataModule(source="paired", root=tmp_path, degradation="none", **common)
    stores = SRDataModule(source="lmdb", hq_lmdb=hq_path, lq_lmdb=lq_path, degradation="none", **common)
    for dm in (folders, stores):
        dm.setup("fit")
    for a, b in zip(_batches(folders), _batches(stores)):
        assert torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"])
        assert [Path(p).stem for p in a["path"]] == [Path(p).name for p in b["path"]]
    va, vb = next(iter(folders.val_dataloader())), next(iter(stores.val_dataloader()))
    assert torch.equal(va["gt"], vb["gt"]) and torch.equal(va["lq"], vb["lq"])


def test_hq_lmdb_alone_is_degraded_on_the_fly_and_resumes_mid_epoch(tmp_path):
    hq_path, _, hq, _ = _stores(tmp_path, n=5)
    dm = SRDataModule(source="lmdb", hq_lmdb=hq_path, degradation="bicubic", **SMALL)
    dm.setup("fit")
    loader = dm.train_dataloader()
    full = list(loader)
    assert full[0]["lq"].shape == (2, 3, 8, 8) and full[0]["gt"].shape == (2, 3, 32, 32)
    loader.sampler.resume(0, 2)  # what a mid-epoch checkpoint restores: one batch of 2 done
    tail = list(loader)
    assert len(tail) == len(full) - 1
    for a, b in zip(full[1:], tail):
        assert torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"])


def test_a_damaged_record_is_named_and_skipped(tmp_path, caplog):
    hq, _ = _pairs(4)
    path = write_basicsr_lmdb(tmp_path / "hq.lmdb", {**hq, "broken": b"\x89PNG not really"})
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        dm = SRDataModule(source="lmdb", hq_lmdb=path, degradation="bicubic", **SMALL)
        dm.setup("fit")
    assert f"{path}/broken" in caplog.text and len(dm.train_set.items) + len(dm.val_set.items) == 4


def test_a_record_that_fails_its_full_decode_is_redrawn_and_named(tmp_path, caplog):
    hq, _ = _pairs(4)
    ok, buf = cv2.imencode(".png", hq["0001_s001"])
    truncated = buf.tobytes()[: len(buf) // 2]  # the header reads, the pixels do not
    path = write_basicsr_lmdb(tmp_path / "hq.lmdb", {**hq, "0001_s001": truncated})
    dm = SRDataModule(source="lmdb", hq_lmdb=path, degradation="bicubic", **{**SMALL, "samples_per_epoch": 40})
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        dm.setup("fit")
        dm.train_set.items.append(dm.train_set.items[0].store.record("0001_s001"))
        list(dm.train_dataloader())
    assert f"{path}/0001_s001" in caplog.text and dm.train_set.load_failures >= 1


def _rewrite_meta(path: Path, edit) -> None:
    (path / "meta_info.txt").write_text(edit((path / "meta_info.txt").read_text()))


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "meta_info.txt").unlink(), "meta_info.txt is missing"),
    (lambda p: (p / "data.mdb").unlink(), "data.mdb is missing"),
    (lambda p: (p / "data.mdb").write_bytes(b"not an lmdb" * 100), "not a readable LMDB"),
    (lambda p: _rewrite_meta(p, lambda t: t + "ghost.png (48,64,3) 1\n"),
     "1 listed in meta_info.txt but not in data.mdb \\(ghost\\)"),
    (lambda p: _rewrite_meta(p, lambda t: "\n".join(t.splitlines()[1:])), "1 in data.mdb but not in meta_info.txt"),
    (lambda p: _rewrite_meta(p, lambda t: t.replace("(48,64,3)", "(64,48,3)", 1)), "1 record\\(s\\) of another size"),
    (lambda p: _rewrite_meta(p, lambda t: t.replace(" (48,64,3)", "", 1)), "is not 'name \\(h,w,c\\) compression'"),
])
def test_bad_stores_fail_in_one_line_before_training(tmp_path, damage, message):
    hq_path, lq_path, _, _ = _stores(tmp_path)
    damage(hq_path)
    dm = SRDataModule(source="lmdb", hq_lmdb=hq_path, lq_lmdb=lq_path, degradation="none", **SMALL)
    with pytest.raises(SRLabError, match=message) as info:
        dm.setup("fit")
    assert "\n" not in str(info.value) and str(hq_path) in str(info.value)


def test_config_errors_name_the_key(tmp_path):
    hq_path, _, _, _ = _stores(tmp_path)
    with pytest.raises(ConfigError, match="data.hq_lmdb is not set"):
        SRDataModule(source="lmdb", **SMALL).setup("fit")
    with pytest.raises(ConfigError, match="data.lq_lmdb is not set and data.degradation=none"):
        SRDataModule(source="lmdb", hq_lmdb=hq_path, degradation="none", **SMALL).setup("fit")
    with pytest.raises(SRLabError, match="data.lq_lmdb=.*nope.lmdb does not exist"):
        SRDataModule(source="lmdb", hq_lmdb=hq_path, lq_lmdb=tmp_path / "nope.lmdb", degradation="none",
                     **SMALL).setup("fit")


def test_paired_keys_with_the_x4_suffix_match_and_mismatches_are_named(tmp_path):
    hq, lq = _pairs(3)
    hq_path = write_basicsr_lmdb(tmp_path / "hq.lmdb", hq)
    lq_path = write_basicsr_lmdb(tmp_path / "lq.lmdb", {f"{k}x4": v for k, v in lq.items()})
    dm = SRDataModule(source="lmdb", hq_lmdb=hq_path, lq_lmdb=lq_path, degradation="none", **SMALL)
    dm.setup("fit")
    assert len(dm.train_set.items) + len(dm.val_set.items) == 3
    other = write_basicsr_lmdb(tmp_path / "other.lmdb", dict(list(lq.items())[:2]))
    with pytest.raises(SRLabError, match="HQ and LQ names do not match: 1 only in"):
        SRDataModule(source="lmdb", hq_lmdb=hq_path, lq_lmdb=other, degradation="none", **SMALL).setup("fit")


def test_meta_lines_parse_as_basicsr_writes_them(tmp_path):
    (tmp_path / "meta_info.txt").write_text("000_00000000.png (720,1280,3) 1\n\n0001 (10, 20, 1)\n")
    assert read_meta(tmp_path) == {"000_00000000": (720, 1280, 3), "0001": (10, 20, 1)}


@pytest.mark.parametrize("paired", [True, False], ids=["pairs", "hq-only"])
def test_smoke_training_from_lmdb(tmp_path, smoke_cfg, paired):
    from srlab.train import run

    hq_path, lq_path, _, _ = _stores(tmp_path)
    # 2 workers, as data=lmdb defaults to: they fork after the validation crops opened the store here
    overrides = ["data=lmdb", f"data.hq_lmdb={hq_path}", "data.val_fraction=0.25", "data.num_workers=2"]
    overrides += [f"data.lq_lmdb={lq_path}"] if paired else ["data.degradation=report"]
    psnr = run(smoke_cfg("quickstart", overrides))
    assert psnr is not None and np.isfinite(psnr)
