"""The Real-ESRGAN degradation in the data pipeline: workers draw, the batch is degraded on its device,
patches are cut, the training-pair pool mixes batches; every source; reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.datamodule import SRDataModule
from srlab.data.datasets import HQFolderDataset
from srlab.data.degradations import build_degradation, preset
from srlab.data.realesrgan.ops import poisson_noise, usm_sharpen
from srlab.data.realesrgan.pipeline import TrainingPairPool, cut, degrade
from srlab.data.transforms import denormalize
from tests.data.hostile import rgb_array

SMALL = {"patch_size": 32, "val_patch_size": 32, "batch_size": 2, "val_batch_size": 2, "num_workers": 0,
         "samples_per_epoch": 4}


def _folder(tmp_path, name="hq", n=4, size=(96, 88)):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rgb_array(i, size)).save(folder / f"img{i}.png")
    return folder


def _batch(ds, n=2):
    return ds.degradation.collate([ds[i] for i in range(n)])  # the loaders' collate_fn


def test_workers_draw_and_the_batch_is_degraded_to_patches(tmp_path):
    deg = build_degradation("realesrgan", 4)
    ds = HQFolderDataset(_folder(tmp_path), scale=4, patch_size=32, degradation=deg, samples_per_epoch=4)
    torch.manual_seed(0)
    batch = _batch(ds)
    assert "lq" not in batch and batch["gt"].shape == (2, 3, 76, 76)  # the larger crop the kernels need
    assert batch["degradation"]["kernel1"].shape == (2, 21, 21)
    # what the batch step sizes, branches and seeds on stays Python numbers: it never reads the device back
    host = batch["degradation"]["host"]
    assert isinstance(host["seed"][0], int) and isinstance(host["cut_y"], list) and len(host["gray1"]) == 2
    assert "seed" not in batch["degradation"] and batch["degradation"]["gray1"].dtype == torch.bool
    out = deg.batch_degradation()(batch, training=True)
    assert out["lq"].shape == (2, 3, 8, 8) and out["gt"].shape == out["gt_usm"].shape == (2, 3, 32, 32)
    assert "degradation" not in out
    lq = out["lq"] * 255
    assert torch.equal(lq, lq.round()) and 0 <= out["lq"].min() and out["lq"].max() <= 1  # 8-bit levels
    # the patch is cut where the worker said, from the crop, and so is its sharpened target
    p, gt = batch["degradation"], batch["gt"].float() / 255  # the loader sends uint8
    assert batch["gt"].dtype == torch.uint8
    y, x = p["host"]["cut_y"][0], p["host"]["cut_x"][0]
    assert torch.equal(out["gt"][0], gt[0, :, 4 * y : 4 * y + 32, 4 * x : 4 * x + 32])
    sharp = usm_sharpen(gt)[0, :, 4 * y : 4 * y + 32, 4 * x : 4 * x + 32]
    assert torch.equal(out["gt_usm"][0], sharp) and not torch.equal(out["gt_usm"], out["gt"])


def test_default_crop_is_degraded_whole_then_cut_in_step_with_its_lq(tmp_path):
    deg = build_degradation({**preset("realesrgan"), "queue_size": 0}, 4)
    ds = HQFolderDataset(_folder(tmp_path, size=(128, 120)), scale=4, patch_size=64, degradation=deg, samples_per_epoch=4)
    torch.manual_seed(1)
    batch = _batch(ds)
    assert batch["gt"].shape[-2:] == (100, 100)  # 64 x 400/256 rounded up to a multiple of 4: real context around
    p, gt = batch["degradation"], batch["gt"].float() / 255
    out = deg.batch_degradation()(dict(batch), training=True)
    assert out["lq"].shape == (2, 3, 16, 16) and out["gt"].shape == (2, 3, 64, 64)
    whole = degrade(usm_sharpen(gt), p, 4, torch.Generator().manual_seed(p["host"]["seed"][0]))  # the crop's LQ
    assert whole.shape[-2:] == (25, 25)
    for i, (y, x) in enumerate(zip(p["host"]["cut_y"], p["host"]["cut_x"])):
        assert 0 <= y <= 9 and 0 <= x <= 9
        assert torch.equal(out["lq"][i], whole[i, :, y : y + 16, x : x + 16])  # LQ pixel (y, x) ...
        assert torch.equal(out["gt"][i], gt[i, :, 4 * y : 4 * y + 64, 4 * x : 4 * x + 64])  # ... is HQ (4y, 4x)


def test_same_seed_same_degraded_batch(tmp_path):
    deg = build_degradation("realesrgan", 4)
    ds = HQFolderDataset(_folder(tmp_path), scale=4, patch_size=32, degradation=deg, samples_per_epoch=4)
    outs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        outs.append(deg.batch_degradation()(_batch(ds), training=True))
    assert torch.equal(outs[0]["lq"], outs[1]["lq"]) and torch.equal(outs[0]["gt"], outs[1]["gt"])
    assert not torch.equal(outs[0]["lq"], outs[2]["lq"])


def test_validation_is_fixed_per_image_and_unsharpened(tmp_path):
    deg = build_degradation("realesrgan", 4)
    ds = HQFolderDataset(_folder(tmp_path), scale=4, patch_size=32, degradation=deg, train=False, val_patch_size=32)
    a, b = (deg.batch_degradation()(_batch(ds), training=False) for _ in range(2))
    assert torch.equal(a["lq"], b["lq"]) and "gt_usm" not in a
    assert a["lq"].shape == (2, 3, 8, 8) and a["gt"].shape == (2, 3, 32, 32)
    whole = HQFolderDataset(_folder(tmp_path, "whole", n=1), scale=4, degradation=deg, train=False)
    c = deg.batch_degradation()(_batch(whole, 1), training=False)
    assert c["lq"].shape == (1, 3, 22, 24) and c["gt"].shape == (1, 3, 88, 96)  # whole images, no cut


def test_cut_takes_each_samples_own_position():
    gt = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    lq = gt[..., ::4, ::4]
    lo, g, g2 = cut({"cut_y": [0, 2], "cut_x": [1, 0], "cut_size": [2, 2]}, 4, lq, gt, gt + 1)
    assert torch.equal(g[0], gt[0, :, 0:8, 4:12]) and torch.equal(g[1], gt[1, :, 8:16, 0:8])
    assert torch.equal(lo, g[..., ::4, ::4]) and torch.equal(g2, g + 1)


def test_training_pair_pool_mixes_batches_once_full():
    pool = TrainingPairPool(size=4)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.full((2, 1, 2, 2), float(i)), torch.full((2, 1, 4, 4), float(i))) for i in range(5)]
    outs = [pool(pair, gen) for pair in batches]
    assert [o[0][:, 0, 0, 0].tolist() for o in outs[:2]] == [[0, 0], [1, 1]]  # filling: passed through
    seen = set()
    for i, (lq, gt) in enumerate(outs[2:], start=2):
        assert torch.equal(lq[:, :, 0, 0], gt[:, :, 0, 0])  # pairs stay pairs
        values = set(lq[:, 0, 0, 0].tolist())
        assert i not in values and values <= set(range(i))  # drawn from earlier batches only
        seen |= values
    assert len(seen) >= 2 and pool.store[0].shape[0] == 4


def test_training_pair_pool_counts_samples_not_batches():
    pool = TrainingPairPool(size=5)  # as Real-ESRGAN's 180 with batch 8: not a multiple of the batch
    gen = torch.Generator().manual_seed(0)
    fill = [pool((torch.full((2, 1), float(i)),), gen)[0][:, 0].tolist() for i in range(3)]
    assert fill == [[0, 0], [1, 1], [2, 2]]  # passed through while 5 of their 6 samples fill it
    assert pool.filled == 5 and sorted(pool.store[0][:, 0].tolist()) == [0, 0, 1, 1, 2]
    out = pool((torch.full((2, 1), 3.0),), gen)[0][:, 0].tolist()
    assert set(out) <= {0, 1, 2} and pool.store[0].shape == (5, 1) and 3.0 in pool.store[0]


def test_normalized_batches(tmp_path):
    deg = build_degradation("realesrgan", 4)
    ds = HQFolderDataset(_folder(tmp_path), scale=4, patch_size=32, degradation=deg, samples_per_epoch=4)
    torch.manual_seed(0)
    batch = _batch(ds)
    plain = deg.batch_degradation()(dict(batch), training=False)
    normed = deg.batch_degradation(normalized=True)(dict(batch), training=False)
    assert torch.allclose(denormalize(normed["lq"]), plain["lq"], atol=1e-5) and normed["lq"].min() < 0


def test_whole_image_lq_is_reproducible_from_the_seed():
    deg = build_degradation("realesrgan", 4)
    hq = rgb_array(3, (100, 84))
    draw = deg.draw(np.random.default_rng(0), 84, None, train=False)
    a, b = deg.apply(hq, draw), deg.apply(hq, draw)
    assert a.shape == (21, 25, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    other = deg.apply(hq, deg.draw(np.random.default_rng(1), 84, None, train=False))
    assert not np.array_equal(a, other)
    assert np.abs(deg.apply(hq, draw, torch.float32).astype(int) - a).mean() < 40  # same image, other noise draws


@pytest.mark.parametrize("source", ["samples", "hq_folder", "paired"])
def test_every_source_takes_the_degradation(tmp_path, source):
    hq = _folder(tmp_path, "data/HQ")
    kwargs = {"samples": {"samples_dir": tmp_path / "samples"}, "hq_folder": {"train_dir": hq},
              "paired": {"root": tmp_path / "data"}}[source]
    if source == "paired":  # the LQ folder is not even read: HQ-only
        (tmp_path / "data" / "LQ").mkdir()
        Image.fromarray(rgb_array(0, (5, 5))).save(tmp_path / "data" / "LQ" / "img0.png")
    dm = SRDataModule(source=source, degradation="realesrgan", **kwargs, **SMALL)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.batch_degradation is not None
    batch = dm.batch_degradation(next(iter(dm.train_dataloader())), training=True)
    assert batch["lq"].shape == (2, 3, 8, 8) and batch["gt"].shape == (2, 3, 32, 32)


def test_paired_without_a_degradation_reads_the_given_lq(tmp_path):
    dm = SRDataModule(source="paired", root=tmp_path, **SMALL)
    assert build_degradation(preset("none"), 4) is None
    _folder(tmp_path, "HQ", size=(64, 64))
    (tmp_path / "LQ").mkdir()
    for i in range(4):
        Image.fromarray(rgb_array(i, (16, 16))).save(tmp_path / "LQ" / f"img{i}.png")
    dm.setup("fit")
    assert dm.batch_degradation is None and "lq" in next(iter(dm.train_dataloader()))


def test_noise_takes_channels_last_images():
    """Stage-2 inputs can arrive in channels_last (a conv's output): same noise as the contiguous image."""
    img = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    scale, gray = torch.tensor([1.0, 2.0]), torch.tensor([False, True])
    plain = poisson_noise(img, scale, gray, torch.Generator().manual_seed(0))
    nhwc = poisson_noise(img.contiguous(memory_format=torch.channels_last), scale, gray, torch.Generator().manual_seed(0))
    assert torch.equal(plain, nhwc)
