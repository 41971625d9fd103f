"""Weights & Biases without an account: an offline run holds the config, every metric and the grids."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from srlab.errors import SRLabError
from srlab.runs import wandb_setup


def read_wandb_records(path: Path) -> list:
    """Decode a ``run-*.wandb`` file (LevelDB log blocks of W&B's protobuf ``Record``s)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    block, pos, raws, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # full record
            raws.append(chunk)
        elif kind == 2:  # first, middle..., last fragments
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            raws.append(pending + chunk)
    records = []
    for raw in raws:
        record = pb.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def _read_finished_run(path: Path, timeout: float = 60.0) -> list:
    """Records of a finished run; W&B's service may still be flushing the log when finish() returns."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_wandb_records(path)
        kinds = {r.WhichOneof("record_type") for r in records}
        if {"run", "exit"} <= kinds or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def _history(records: list) -> list[dict]:
    rows = []
    for r in records:
        if r.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
    return rows


def _config(records: list) -> dict:
    config = {}
    for r in records:
        kind = r.WhichOneof("record_type")
        items = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        config.update({i.key: json.loads(i.value_json) for i in items})
    return config


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    """No API key anywhere: no env variable, an empty home (no ~/.netrc)."""
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_mode_follows_the_api_key(no_key, monkeypatch, tmp_path):
    assert wandb_setup.resolve_mode() == "offline"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "x" * 40 + "\n")
    assert wandb_setup.has_api_key() and wandb_setup.resolve_mode() == "online"
    assert wandb_setup.resolve_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_setup.resolve_mode() == "disabled"


def test_online_without_key_and_terminal_fails_fast(no_key, monkeypatch):
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(SRLabError, match="WANDB_API_KEY"):
        wandb_setup.resolve_mode("online")
    with pytest.raises(SRLabError, match="logger.wandb.mode"):
        wandb_setup.resolve_mode("sometimes")


@pytest.mark.slow
def test_offline_run_logs_config_metrics_and_grids(no_key, smoke_cfg, capsys):
    from srlab.train import run

    cfg = smoke_cfg("quickstart", ["logger=many", "tags=[unit]", "logger.wandb.log_model=true"])
    run(cfg)
    wandb_setup.finish()
    out = Path(cfg.paths.output_dir)
    run_dirs = list((out / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1, "expected one offline W&B run in the run folder"
    run_dir = run_dirs[0]
    assert list((run_dir / "files" / "media" / "images").rglob("*.png")), "comparison grid not logged"
    records = _read_finished_run(next(run_dir.glob("run-*.wandb")))
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run_record.run_group == "smoke" and list(run_record.tags) == ["unit"]
    assert run_record.display_name == f"smoke-{out.parent.name}_{out.name}" and "debug=smoke" in run_record.notes
    history = _history(records)
    logged = set().union(*history)
    for key in ("train/loss", "val/psnr", "val/ssim", "val/psnr_bicubic", "trainer/global_step"):
        assert key in logged, f"{key} missing from W&B history: {sorted(logged)}"
    assert any("val/comparison/filenames" in row for row in history)
    config = _config(records)
    assert config["model"]["generator"]["num_feat"] == 8  # the resolved Hydra config, not just hparams
    assert config["task_name"] == "smoke"
    assert (out / "csv" / "metrics.csv").is_file(), "logger=many keeps the CSV log"
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert any(a.type == "model" for a in artifacts), "log_model=true should store the checkpoint for sync"
