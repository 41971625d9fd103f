"""Runs started by torchrun/srun: one run folder (global rank 0's), metrics reduced over every node."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from srlab import train
from srlab.errors import SRLabError
from srlab.runs.launch import launcher_rank, worker_overrides
from srlab.train import build
from tests.conftest import TINY_NETS, compose_config, subprocess_env
from tests.data.test_val_sets import TINY, make_benchmark, val_sets


@pytest.mark.parametrize(("env", "rank"), [
    ({}, 0),
    ({"RANK": "0", "LOCAL_RANK": "0"}, 0),
    ({"RANK": "1", "LOCAL_RANK": "0"}, 1),  # torchrun, second node
    ({"SLURM_PROCID": "3"}, 3),  # srun
    ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, 0),  # Lightning's own launcher: it points the child at rank 0's folder
])
def test_launcher_rank(env, rank):
    assert launcher_rank(env) == rank


def test_only_nonzero_ranks_get_a_temporary_output_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert worker_overrides({"RANK": "0"}) == []
    run_dir, sweep_dir, subdir = worker_overrides({"RANK": "1"})
    folder = Path(run_dir.removeprefix("hydra.run.dir="))
    assert folder.parent == tmp_path and folder.is_dir() and subdir == "hydra.output_subdir=null"
    assert sweep_dir == f"hydra.sweep.dir={folder}"  # a multirun's sweep folder and summary too


def test_stage2_on_another_node_does_not_wait_for_stage1_checkpoint(tmp_path, monkeypatch):
    """Stage 1's last.ckpt is in rank 0's folder; other nodes start stage 2 without it (DDP copies rank 0's)."""
    cfg = compose_config(tmp_path / "run", ["experiment=esrgan_two_stage", "debug=smoke", *TINY_NETS["esrgan"]])
    stages = []
    monkeypatch.setattr(train, "run", stages.append)  # stage 1's training itself is not what is tested here
    monkeypatch.setenv("RANK", "1")
    main_cfg = train._run_stage1(cfg)
    assert len(stages) == 1 and main_cfg.stage1 is None and not main_cfg.model.get("generator_init")
    monkeypatch.setenv("RANK", "0")  # rank 0 itself needs the checkpoint that its stage 1 wrote
    with pytest.raises(SRLabError, match="stage 1 wrote no .*stage1/checkpoints/last.ckpt"):
        train._run_stage1(cfg)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_over_loopback_write_one_run_and_reduce_validation(tmp_path):
    """Two torchrun "nodes" on this machine (gloo): rank 0 alone writes the run; validation is reduced over both."""
    bench = make_benchmark(tmp_path / "Tiny")
    port, work = _free_port(), tmp_path / "work"
    work.mkdir()
    args = [*TINY, "trainer.accelerator=cpu", "trainer.devices=1",
            "trainer.limit_val_batches=1.0", val_sets(f"{{name: Tiny, dir: '{bench}'}}"),
            "monitor=val/Tiny/psnr_y"]
    procs = []
    for rank in (0, 1):
        (tmp_path / f"tmp{rank}").mkdir()
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
               "-m", "srlab.train", "trainer.num_nodes=2", *args]
        # one thread each: two processes share the machine's cores; TMPDIR shows what rank 1 leaves behind
        env = subprocess_env(OMP_NUM_THREADS="1", TMPDIR=str(tmp_path / f"tmp{rank}"))
        procs.append(subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in outs[1]
    (run,) = (work / "outputs").glob("*/*")  # one run folder, whatever second each rank started in
    assert [p.name for p in work.iterdir()] == ["outputs"]
    best, last = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert best.startswith("best-") and last == "last.ckpt"
    log = (run / "train.log").read_text()
    assert log.count("trainer.precision=auto") == 1, log  # rank 1 logs to its console only
    assert "trainer.precision=auto" in outs[1]
    assert not list((tmp_path / "tmp1").glob("srlab-rank*"))  # rank 1's temporary Hydra folder is gone
    # crops (torchmetrics) and the benchmark's 3 images (gathered rows) are split over the nodes; the
    # logged means are over the whole sets: what one process validating last.ckpt alone logs
    logged = pd.read_csv(run / "csv" / "metrics.csv").ffill().iloc[-1]
    alone = _validate_alone(tmp_path, args, run / "checkpoints" / "last.ckpt")
    names = ["val/psnr", "val/ssim", *(f"val/Tiny/{m}" for m in ("psnr", "ssim", "psnr_y", "ssim_y"))]
    for name in names:
        assert float(logged[name]) == pytest.approx(alone[name], abs=1e-4 if "psnr" in name else 1e-6), name


def _validate_alone(tmp_path: Path, args: list[str], ckpt: Path) -> dict[str, float]:
    """The validation metrics of one process (no DDP) over the whole validation sets, for ``ckpt``."""
    cfg = compose_config(tmp_path / "alone", args)
    datamodule, model, trainer = build(cfg)
    results = trainer.validate(model, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True)
    return {k: float(v) for per_loader in results for k, v in per_loader.items()}  # one dict per val loader
