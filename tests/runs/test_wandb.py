"""Weights & Biases without an account: an offline run holds the config, every metric and the grids."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

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


def _summary(records: list) -> dict:
    """The run's final summary: its summary updates merged in order."""
    summary: dict = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update({(i.key or ".".join(i.nested_key)): json.loads(i.value_json) for i in r.summary.update})
    return summary


def offline_run_records(run_folder: Path) -> list:
    """Records of the one finished offline W&B run under ``<run_folder>/wandb/``."""
    (run_dir,) = list((run_folder / "wandb").glob("offline-run-*"))
    return _read_finished_run(next(run_dir.glob("run-*.wandb")))


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


def test_default_names_follow_the_run_name(tmp_path):
    from tests.conftest import compose_config

    out = tmp_path / "outputs" / "2026-01-02" / "10-20-30"
    compose_config(out, ["model=quickstart", "seed=3"])
    assert wandb_setup.default_names("train") == ("quickstart 2026-01-02_10-20-30", "train", "model=quickstart seed=3")
    # srlab.train's stage 1 runs inside the same Hydra job: its own W&B run, told apart
    assert wandb_setup.default_names("train_stage1")[0] == "quickstart 2026-01-02_10-20-30 stage1"


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
    # the name srlab.compare gives it (a single run: model and folder), all overrides in the notes
    assert run_record.display_name == f"quickstart {out.name}" and "debug=smoke" in run_record.notes
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


def _one_batch(*_owner) -> DataLoader:
    """One batch of one value: the training and validation data of the scripted runs below."""
    return DataLoader(TensorDataset(torch.ones(1, 1)))


class _Scripted(L.LightningModule):
    """Logs a given val/psnr per validation: the best epoch is known in advance."""

    def __init__(self, psnr: list[float]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.psnr = psnr

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/psnr", self.psnr[self.current_epoch])
        self.log("val/ssim", 0.1 * self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    train_dataloader = val_dataloader = _one_batch


def test_summary_holds_best_not_last_with_its_step_and_checkpoint(no_key, tmp_path, monkeypatch):
    from srlab.runs.checkpointing import AtomicCheckpoint
    from srlab.runs.wandb_summary import BestInSummary

    monkeypatch.chdir(tmp_path)
    logger = wandb_setup.wandb_logger(save_dir=str(tmp_path / "run"), name="scripted", mode="offline")
    ckpt = AtomicCheckpoint(dirpath=tmp_path / "run" / "checkpoints", monitor="val/psnr", mode="max",
                            filename="best-epoch{epoch:03d}", auto_insert_metric_name=False)
    trainer = L.Trainer(max_epochs=3, logger=logger, callbacks=[ckpt, BestInSummary()], enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1)
    trainer.fit(_Scripted([20.0, 22.0, 21.0]))  # best at epoch 1 (step 2), last lower
    wandb_setup.finish()
    summary = _summary(offline_run_records(tmp_path / "run"))
    assert summary["val/psnr"] == {"max": 22.0}, summary
    assert summary["val/ssim"] == {"max": pytest.approx(0.2)}
    assert summary["best/epoch"] == 1 and summary["best/step"] == 2
    assert summary["best/checkpoint"] == "run/checkpoints/best-epoch001.ckpt"  # relative to the launch folder


class _ScriptedLPIPS(_Scripted):
    """Also logs a benchmark set's LPIPS, lowest at epoch 1 and higher after."""

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.log("val/Set5/lpips", [0.3, 0.1, 0.2][self.current_epoch])
        self.log("val/Set5/psnr_y", [25.0, 26.0, 27.0][self.current_epoch])


class _WithValSets(L.LightningDataModule):
    """A data module whose validation includes Set5 with LPIPS, as SRDataModule's ``val_benchmarks`` say."""

    def __init__(self) -> None:
        super().__init__()
        from types import SimpleNamespace

        self.val_benchmarks = [SimpleNamespace(spec=SimpleNamespace(name="Set5", metrics=("lpips",)))]

    train_dataloader = val_dataloader = _one_batch


def test_summary_holds_the_lowest_lpips_of_a_benchmark_set(no_key, tmp_path, monkeypatch):
    from srlab.runs.wandb_summary import BestInSummary

    monkeypatch.chdir(tmp_path)
    logger = wandb_setup.wandb_logger(save_dir=str(tmp_path / "run"), name="scripted", mode="offline")
    trainer = L.Trainer(max_epochs=3, logger=logger, callbacks=[BestInSummary()], enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1,
                        enable_checkpointing=False)
    trainer.fit(_ScriptedLPIPS([20.0, 22.0, 21.0]), datamodule=_WithValSets())
    wandb_setup.finish()
    summary = _summary(offline_run_records(tmp_path / "run"))
    assert summary["val/Set5/lpips"] == {"min": pytest.approx(0.1)}, summary  # a distance: its lowest
    assert summary["val/Set5/psnr_y"] == {"max": 27.0}
    assert summary["val/psnr"] == {"max": 22.0}
