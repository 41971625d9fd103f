"""data=streaming: shards written by prepare --format litdata, read locally and from an S3-compatible server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.datamodule import SRDataModule
from srlab.errors import ConfigError, SRLabError
from srlab.prepare import main as prepare_main
from tests.data.hostile import rgb_array

pytest.importorskip("litdata")

SMALL = {"patch_size": 32, "val_patch_size": 32, "batch_size": 2, "val_batch_size": 2, "num_workers": 0,
         "val_fraction": 0, "seed": 0}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """12 pairs of 48 px sub-images (3 photos of 96x96) as shards, and the same photos' PNG pairs for validation."""
    root = tmp_path_factory.mktemp("streaming")
    src = root / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(rgb_array(i, (96, 96))).save(src / f"img{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG junk")
    args = [str(src), "--subimage-size", "48", "--subimage-step", "48"]
    assert prepare_main([*args, "-o", str(root / "shards"), "--format", "litdata"]) == 0
    assert prepare_main([*args, "-o", str(root / "val")]) == 0
    return root


def _dm(written, **kw):
    settings = {"source": "streaming", "input_dir": written / "shards", "val_dir": written / "val",
                "degradation": "none", **SMALL, **kw}
    dm = SRDataModule(**settings)
    dm.setup("fit")
    return dm


def test_prepare_writes_uint8_sub_image_shards_with_srlab_meta(written):
    meta = json.loads((written / "shards" / "srlab_shards.json").read_text())
    assert meta["format"] == 1 and meta["items"] == 12 and meta["subimage_size"] == 48 and meta["scale"] == 4
    summary = json.loads((written / "shards" / "prepare_summary.json").read_text())
    assert [s["path"].endswith("broken.png") for s in summary["skipped"]] == [True]
    from litdata import StreamingDataset

    item = StreamingDataset(str(written / "shards"))[0]
    assert item["gt"].dtype == np.uint8 and item["gt"].shape == (48, 48, 3) and item["lq"].shape == (12, 12, 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_mid_epoch_state_resumes_at_the_next_unprocessed_batch(written, workers):
    torch.manual_seed(1)
    dm = _dm(written, num_workers=workers)
    progress = {"done": 0, "complete": False}
    dm._batches_done = lambda: (progress["done"], progress["complete"])
    loader = dm.train_dataloader()
    it = iter(loader)
    full = [next(it) for _ in range(3)]  # Lightning fetches one batch ahead of what it processed
    progress["done"] = 2
    state = loader.state_dict()
    full += list(it)
    assert len(full) == 6 and full[0]["gt"].shape == (2, 3, 32, 32) and full[0]["lq"].shape == (2, 3, 8, 8)
    torch.manual_seed(1)
    again = _dm(written, num_workers=workers)
    again._batches_done = lambda: (0, False)
    resumed = again.train_dataloader()
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert [b["path"] for b in tail] == [b["path"] for b in full[2:]]
    assert all(torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"]) for a, b in zip(full[2:], tail))
    progress["complete"] = True  # a checkpoint at the epoch's end: the next epoch starts at its beginning
    loader.load_state_dict(loader.state_dict())
    nxt = list(loader)
    assert len(nxt) == 6 and [b["path"] for b in nxt] != [b["path"] for b in full]


def test_hq_shards_degraded_on_the_fly(written):
    dm = _dm(written, degradation="bicubic", val_dir=written / "val" / "HQ")
    batch = next(iter(dm.train_dataloader()))
    assert batch["gt"].shape == (2, 3, 32, 32) and batch["lq"].shape == (2, 3, 8, 8)


def _meta(written, tmp_path, **change) -> Path:
    copy = tmp_path / "shards"
    copy.mkdir()
    for f in (written / "shards").iterdir():
        os.symlink(f, copy / f.name)
    meta = json.loads((written / "shards" / "srlab_shards.json").read_text())
    (copy / "srlab_shards.json").unlink()
    (copy / "srlab_shards.json").write_text(json.dumps({**meta, **change}))
    return copy


@pytest.mark.parametrize("change, settings, message", [
    ({"format": 0}, {}, "shards of format 0 .*this srlab reads format 1"),
    ({}, {"patch_size": 64, "val_patch_size": 32}, "48 px sub-images cannot give data.patch_size=64"),
    ({"scale": 2}, {}, "shards of x2 pairs, data.scale=4"),
])
def test_shards_from_another_version_or_patch_size_are_refused(written, tmp_path, change, settings, message):
    with pytest.raises(ConfigError, match=message):
        _dm(written, input_dir=_meta(written, tmp_path, **change), **settings)


def test_missing_inputs_are_told_in_one_line(written, tmp_path):
    with pytest.raises(SRLabError, match="does not exist"):
        _dm(written, input_dir=tmp_path / "nope")
    with pytest.raises(SRLabError, match="srlab_shards.json is missing"):
        _dm(written, input_dir=written / "val")
    with pytest.raises(ConfigError, match="data=streaming holds nothing out"):
        _dm(written, val_dir=None)
    with pytest.raises(SRLabError, match="--format litdata stores sub-images of one size"):
        from srlab import prepare

        prepare.run(prepare.parse_args([str(written / "src"), "-o", str(tmp_path / "x"), "--format", "litdata"]))


def test_smoke_training_from_shards(written, smoke_cfg):
    from srlab.train import run

    cfg = smoke_cfg("quickstart", ["data=streaming", f"data.input_dir={written / 'shards'}",
                                   f"data.val_dir={written / 'val'}"])
    psnr = run(cfg)
    assert psnr is not None and np.isfinite(psnr)


@pytest.fixture
def s3_server(monkeypatch):
    """A real S3-compatible HTTP server on a free local port (moto's server: boto3 and litdata talk to it over
    the network as to any S3 endpoint); yields the storage_options that reach it."""
    server_mod = pytest.importorskip("moto.server")
    for key, value in {"AWS_ACCESS_KEY_ID": "srlab", "AWS_SECRET_ACCESS_KEY": "srlab-secret",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"endpoint_url": f"http://{host}:{port}", "aws_access_key_id": "srlab",
           "aws_secret_access_key": "srlab-secret"}
    server.stop()


@pytest.fixture
def remote_shards(written, s3_server) -> str:
    """The written shards uploaded to the local S3 server; their URL."""
    import boto3

    client = boto3.client("s3", **s3_server)
    client.create_bucket(Bucket="srlab-shards")
    for f in (written / "shards").iterdir():
        client.upload_file(str(f), "srlab-shards", f"x4/{f.name}")
    return "s3://srlab-shards/x4"


@pytest.mark.slow
def test_smoke_training_from_a_local_s3_server_and_an_unreachable_one(written, smoke_cfg, s3_server, remote_shards,
                                                                      tmp_path):
    from srlab.train import run

    options = [f"+data.storage_options.{k}={v}" for k, v in s3_server.items()]
    common = ["data=streaming", f"data.val_dir={written / 'val'}", f"data.cache_dir={tmp_path / 'cache'}"]
    psnr = run(smoke_cfg("quickstart", [*common, f"data.input_dir={remote_shards}", *options]))
    assert psnr is not None and np.isfinite(psnr)
    assert list((tmp_path / "cache").rglob("chunk-*.bin")), "the chunks came from the server"
    gone = [o.replace(s3_server["endpoint_url"], "http://127.0.0.1:9") for o in options]
    with pytest.raises(SRLabError, match="cannot read srlab_shards.json .*EndpointConnectionError"):
        run(smoke_cfg("quickstart", [*common, f"data.input_dir={remote_shards}", *gone]))


@pytest.mark.slow
def test_sigkill_mid_epoch_on_shards_then_resume_equals_the_uninterrupted_run(written, tmp_path):
    """kill -9 a data=streaming run (2 loader workers) after a mid-epoch last.ckpt; ckpt_path resumes it to the
    same weights, optimizer and loop state, bit for bit, as a run never stopped (the stream restarts at the
    next batch; 0 workers: the loader-level test above and the folder kill test)."""
    from tests.runs.test_resume import LEAN, QUICK, _same, kill_mid_epoch_then_resume

    args = [*LEAN, "data=streaming", f"data.input_dir={written / 'shards'}", f"data.val_dir={written / 'val'}",
            "data.num_workers=2", "trainer.deterministic=true", "trainer.limit_train_batches=4",
            "trainer.max_epochs=2", "callbacks.model_checkpoint_last.every_n_batches=1"]
    a, b = kill_mid_epoch_then_resume(tmp_path, QUICK, args)
    assert a["global_step"] == b["global_step"] == 8
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert _same(a["optimizer_states"], b["optimizer_states"]) and _same(a["loops"], b["loops"])


@pytest.mark.slow
def test_remote_shards_resume_on_a_node_whose_cache_sits_elsewhere(written, s3_server, remote_shards, tmp_path):
    """litdata keeps its local cache's path in the state; another node (or data.cache_dir) has its own."""
    remote = {"input_dir": remote_shards, "storage_options": s3_server}
    torch.manual_seed(1)
    first = _dm(written, cache_dir=tmp_path / "node0", **remote)
    first._batches_done = lambda: (2, False)
    loader = first.train_dataloader()
    full = list(loader)
    state = loader.state_dict()
    torch.manual_seed(1)
    other = _dm(written, cache_dir=tmp_path / "node1", **remote)
    other._batches_done = lambda: (0, False)
    resumed = other.train_dataloader()
    resumed.load_state_dict(state)
    assert [b["path"] for b in resumed] == [b["path"] for b in full[2:]]
