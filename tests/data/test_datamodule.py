"""SRDataModule from the real configs: samples, HQ folder and paired sources; config errors at setup."""

from __future__ import annotations

import logging

import hydra
import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data import images
from srlab.data.datamodule import SRDataModule, _worker_init
from srlab.data.samples import SAMPLE_FILES, materialize_samples
from srlab.data.transforms import denormalize, images_to_float
from srlab.errors import ConfigError, SRLabError
from srlab.prepare import main as prepare_main
from tests.conftest import compose_config
from tests.data.hostile import rgb_array

SMALL = {"patch_size": 32, "val_patch_size": 32, "batch_size": 2, "val_batch_size": 2, "num_workers": 0,
         "samples_per_epoch": 4}


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory):
    return materialize_samples(tmp_path_factory.mktemp("samples"))


def _folder(tmp_path, n=4, size=(48, 40)):
    folder = tmp_path / "hq"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rgb_array(i, size)).save(folder / f"img{i}.png")
    return folder


def test_samples_are_real_bundled_photos(samples_dir):
    files = sorted(p.stem for p in samples_dir.glob("*.png"))
    assert files == sorted(SAMPLE_FILES)
    for p in samples_dir.glob("*.png"):
        img = Image.open(p)
        assert img.mode == "RGB" and min(img.size) >= 256


def test_samples_config_yields_batches(tmp_path, samples_dir):
    cfg = compose_config(tmp_path, ["data=samples", f"data.samples_dir={samples_dir}",
                                    *[f"data.{k}={v}" for k, v in SMALL.items()]])
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set.items) == 6 and len(dm.val_set.items) == 2  # val_fraction 0.25 of 8
    for loader, n in ((dm.train_dataloader(), 2), (dm.val_dataloader(), 1)):
        batch = next(iter(loader))
        assert batch["lq"].shape == (2, 3, 8, 8) and batch["gt"].shape == (2, 3, 32, 32)
        assert batch["lq"].dtype == batch["gt"].dtype == torch.uint8 and len(batch["path"]) == 2
    assert len(dm.train_dataloader()) == 2 and dm.normalization is None


def test_hq_folder_config_with_normalization(tmp_path):
    folder = _folder(tmp_path)
    cfg = compose_config(tmp_path / "run", ["data=hq_folder", f"data.train_dir={folder}", "data.normalize=true",
                                            *[f"data.{k}={v}" for k, v in SMALL.items()]])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    assert len(dm.val_set.items) == 1 and len(dm.train_set.items) == 3
    raw = next(iter(dm.train_dataloader()))
    batch = images_to_float(raw, normalized=True)  # what the model does on the device
    gt = denormalize(batch["gt"])
    assert torch.allclose(gt, raw["gt"].float() / 255, atol=1e-5) and batch["gt"].min() < 0
    assert dm.normalization is not None


def test_whole_image_validation_uses_batch_size_1(tmp_path):
    dm = SRDataModule(source="hq_folder", train_dir=_folder(tmp_path), **{**SMALL, "val_patch_size": None})
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["gt"].shape == (1, 3, 40, 48)


def test_paired_config_from_prepare_output(tmp_path, capsys, caplog):
    src = _folder(tmp_path, n=3, size=(64, 64))
    assert prepare_main([str(src), "-o", str(tmp_path / "out")]) == 0
    cfg = compose_config(tmp_path / "run", ["data=paired", f"data.root={tmp_path / 'out'}", "data.val_fraction=0.34",
                                            "data.augment.affine=0.5", *[f"data.{k}={v}" for k, v in SMALL.items()]])
    dm = hydra.utils.instantiate(cfg.data)
    with caplog.at_level(logging.WARNING, logger="srlab.data"):
        dm.setup("fit")
    assert "data.augment.affine is ignored for paired folders" in caplog.text
    batch = next(iter(dm.train_dataloader()))
    assert batch["lq"].shape == (2, 3, 8, 8) and batch["gt"].shape == (2, 3, 32, 32)


@pytest.mark.parametrize("override, message", [
    ({"patch_size": 30}, "data.patch_size=30 must be a positive multiple of data.scale=4"),
    ({"val_patch_size": 18}, "data.val_patch_size=18"),
    ({"val_fraction": 1.0}, "data.val_fraction=1.0 must be in"),
    ({"val_fraction": 0}, "data.val_fraction=0"),
    ({"source": "web"}, "data.source"),
    ({"train_dir": None}, "data.train_dir is not set"),
])
def test_config_errors_name_the_key(tmp_path, override, message):
    kwargs = {"source": "hq_folder", "train_dir": _folder(tmp_path), **SMALL, **override}
    dm = SRDataModule(**kwargs)  # constructing never fails: errors come at setup
    with pytest.raises(ConfigError, match=message):
        dm.setup("fit")


def test_folder_errors_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SRLabError, match=f"{tmp_path / 'empty'}: no images found"):
        SRDataModule(source="hq_folder", train_dir=tmp_path / "empty", **SMALL).setup("fit")
    with pytest.raises(SRLabError, match="does not exist"):
        SRDataModule(source="hq_folder", train_dir=tmp_path / "nope", **SMALL).setup("fit")
    one = _folder(tmp_path, n=1)
    with pytest.raises(SRLabError, match="cannot be split into train and val; add images or set data.val_dir"):
        SRDataModule(source="hq_folder", train_dir=one, **SMALL).setup("fit")
    with pytest.raises(ConfigError, match="data.root is not set"):
        SRDataModule(source="paired", **SMALL).setup("fit")


def test_val_dir_and_worker_init(tmp_path):
    folder = _folder(tmp_path)
    dm = SRDataModule(source="hq_folder", train_dir=folder, val_dir=folder, **SMALL)
    dm.setup("fit")
    assert len(dm.train_set.items) == len(dm.val_set.items) == 4
    threads, limit = torch.get_num_threads(), images.get_max_image_pixels()
    try:
        _worker_init(12345, 0)
        assert torch.get_num_threads() == 1 and images.get_max_image_pixels() == 12345
    finally:
        torch.set_num_threads(threads)
        images.set_max_image_pixels(limit)


def test_val_sets_add_one_whole_image_loader_per_set(tmp_path, samples_dir):
    from tests.data.test_val_sets import make_benchmark

    bench = make_benchmark(tmp_path / "Tiny")
    cfg = compose_config(tmp_path, ["data=samples", f"data.samples_dir={samples_dir}",
                                    *[f"data.{k}={v}" for k, v in SMALL.items()],
                                    f"data.val_sets=[{{name: Tiny, dir: '{bench}', resize: matlab}}]"])
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    crops, tiny = dm.val_dataloader()
    assert next(iter(crops))["gt"].shape == (2, 3, 32, 32)
    samples = list(tiny)
    assert [s["image"] for s in samples] == ["img0.png", "img1.png", "img2.png"]
    assert samples[2]["hr"].shape == (48, 40, 3) and samples[2]["lq"].shape == (12, 10, 3)  # 41x50 modcropped
    assert samples[0]["hr"].dtype == np.uint8 and samples[0]["set"] == "Tiny"
