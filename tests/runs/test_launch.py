"""Runs started by torchrun/srun: one run folder (global rank 0's), metrics reduced over every node."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from srlab.runs.launch import launcher_rank, worker_overrides
from tests.conftest import subprocess_env
from tests.test_val_sets import TINY, evaluate_rows, last_values, make_benchmark, val_sets


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
    run_dir, subdir = worker_overrides({"RANK": "1"})
    folder = Path(run_dir.removeprefix("hydra.run.dir="))
    assert folder.parent == tmp_path and folder.is_dir() and subdir == "hydra.output_subdir=null"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_over_loopback_write_one_run_and_reduce_validation(tmp_path):
    """Two torchrun "nodes" on this machine (gloo): rank 0 alone writes the run; 3 images over 2 ranks give evaluate's means."""
    bench = make_benchmark(tmp_path / "Tiny")
    port, work = _free_port(), tmp_path / "work"
    work.mkdir()
    args = [*TINY, "trainer.num_nodes=2", "trainer.accelerator=cpu", "trainer.devices=1",
            "trainer.limit_val_batches=1.0", "data.val_fraction=0", val_sets(f"{{name: Tiny, dir: '{bench}'}}"),
            "monitor=val/Tiny/psnr_y"]
    procs = []
    for rank in (0, 1):
        (tmp_path / f"tmp{rank}").mkdir()
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
               "-m", "srlab.train", *args]
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
    # the benchmark's 3 images are split 2 + 1 over the nodes; the logged means are over all 3
    metrics = pd.read_csv(run / "csv" / "metrics.csv")
    rows = evaluate_rows(tmp_path, run / "checkpoints" / "last.ckpt", bench)
    for metric, value in last_values(metrics, "val/Tiny/").items():
        assert value == pytest.approx(float(rows["model"][metric]), abs=1e-3 if "psnr" in metric else 1e-5), metric
