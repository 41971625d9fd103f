"""Sweeps from the command line: a grid multirun with its summary, an Optuna search and its resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from srlab.errors import SRLabError
from srlab.runs.sweep import find_runs, write_summary
from tests.conftest import TINY_NETS, compose_config, subprocess_env, write_hydra_record

QUIET = ["callbacks.progress_bar.refresh_rate=0"]


REPO = Path(__file__).resolve().parents[2]


def _train(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    # subprocess_env: this checkout's srlab in the subprocess (and the jobs it starts), whatever is installed
    return subprocess.run([sys.executable, "-m", "srlab.train", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def _fake_run(folder: Path, psnr: list[float], overrides: list[str], launch: list[str] | None = None) -> Path:
    write_hydra_record(folder, overrides, launch=launch)
    (folder / "csv").mkdir(parents=True)
    rows = ["epoch,step,train/loss,val/psnr,val/ssim,val/psnr_bicubic"]
    rows += [f"{e},{e * 10 + 9},,{p},0.5,20.0" for e, p in enumerate(psnr)]
    (folder / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_summary_ranks_jobs_by_best_psnr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "multirun" / "2024-01-01" / "10-00-00"
    launch = ["model=srgan,esrgan", "seed=1"]
    _fake_run(sweep / "0", [21.0, 22.5, 22.0], ["model=srgan", "seed=1"], launch)
    _fake_run(sweep / "1", [23.0, 24.0], ["model=esrgan", "seed=1"], launch)
    (sweep / "2" / ".hydra").mkdir(parents=True)  # a job that died before logging
    (sweep / "2" / ".hydra" / "config.yaml").write_text("{}")
    assert [p.name for p in find_runs(sweep)] == ["0", "1", "2"]
    csv_path, md_path = write_summary(sweep)
    text = md_path.read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert "3 jobs, best `val/psnr` first." in text  # the default monitor, no column twice
    assert lines[0].startswith("| job | run | best val/psnr | last val/psnr")
    assert lines[2].startswith("| 1 | model=esrgan | 24.000 | 24.000")  # best first, named by what the sweep varies
    assert lines[3].startswith("| 0 | model=srgan | 22.500 | 22.000")
    assert "no metrics" in lines[4] and "seed=1" in text.split("|")[0]
    # folders relative to where the summary was written from, never the machine's absolute path
    assert text.startswith("# Sweep multirun/2024-01-01/10-00-00\n") and str(tmp_path) not in text
    assert "`python -m srlab.compare multirun/2024-01-01/10-00-00 -o multirun/2024-01-01/10-00-00/report`" in text
    csv_text = csv_path.read_text()
    assert csv_text.splitlines()[0].startswith("job,run,overrides,monitor,best monitored,best val/psnr")
    assert str(tmp_path) not in csv_text


def _val_sets_run(folder: Path, set5: list[float], overrides: list[str], launch: list[str], mode: str = "max") -> Path:
    """A job validated only on data.val_sets (no crop val/psnr), monitoring Set5 like cpu_hour_x4."""
    write_hydra_record(folder, overrides, launch=launch)
    (folder / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"monitor": "val/Set5/psnr_y", "callbacks": {"model_checkpoint": {"mode": mode}}}))
    (folder / "csv").mkdir(parents=True)
    rows = ["epoch,step,val/Set5/psnr_y,val/Set5/ssim_y,val/Set5/psnr_y_bicubic"]
    rows += [f"{e},{e * 10 + 9},{p},0.8,28.0" for e, p in enumerate(set5)]
    (folder / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("mode", ["max", "min"])
def test_summary_ranks_jobs_by_the_monitored_metric(tmp_path, monkeypatch, mode):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "multirun" / "2024-01-01" / "11-00-00"
    launch = ["model.optimizer.lr=1e-3,5e-4,2e-4"]
    _val_sets_run(sweep / "0", [30.1, 30.4], ["model.optimizer.lr=1e-3"], launch, mode)
    _val_sets_run(sweep / "1", [30.2, 30.9, 30.6], ["model.optimizer.lr=5e-4"], launch, mode)
    _val_sets_run(sweep / "2", [29.8, 30.0], ["model.optimizer.lr=2e-4"], launch, mode)
    csv_path, md_path = write_summary(sweep)
    text = md_path.read_text()
    assert "3 jobs, best `val/Set5/psnr_y` first." in text, text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| job | run | best val/Set5/psnr_y | best val/psnr")
    # the monitored metric's best (the lowest for mode min), not '-' for the missing crop val/psnr
    expected = [("1", "30.9000"), ("0", "30.4000"), ("2", "30.0000")] if mode == "max" else \
        [("2", "29.8000"), ("0", "30.1000"), ("1", "30.2000")]
    for line, (job, best) in zip(lines[2:], expected):
        assert line.startswith(f"| {job} | optimizer.lr=") and f" | {best} | - |" in line and line.endswith("| ok |")
    assert csv_path.read_text().splitlines()[0].startswith("job,run,overrides,monitor,best monitored,best val/psnr")


def test_not_a_run_folder_is_one_clear_error(tmp_path):
    with pytest.raises(SRLabError, match="not a run or sweep folder"):
        find_runs(tmp_path)
    with pytest.raises(SRLabError, match="no such folder"):
        find_runs(tmp_path / "missing")


def test_sweep_configs_compose(tmp_path):
    cfg = compose_config(tmp_path, ["hparams_search=esrgan_optuna"])
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and cfg.hydra.sweeper.direction == "maximize"
    assert set(cfg.hydra.sweeper.params) == {"model.optimizer_g.lr", "model.optimizer_d.lr",
                                             "model.loss_weights.pixel", "model.loss_weights.adversarial"}
    assert cfg.hydra.sweeper.storage.startswith("sqlite:///") and cfg.model.discriminator is not None
    assert cfg.hydra.callbacks.sweep_summary._target_ == "srlab.runs.sweep.SweepSummary"  # conf/hydra/default.yaml
    for launcher, target in (("joblib", "JoblibLauncher"), ("slurm", "SlurmLauncher"), ("local", "LocalLauncher")):
        cfg = compose_config(tmp_path, [f"hydra/launcher={launcher}"])
        assert cfg.hydra.launcher._target_.endswith(target)


def test_the_slurm_launcher_is_the_local_one_with_the_slurm_executor(tmp_path):
    # unresolved: both folders read ${hydra.sweep.dir}, whose ${now:...} differs between two compositions
    local, slurm = (OmegaConf.to_container(compose_config(tmp_path, [f"hydra/launcher={name}"]).hydra.launcher)
                    for name in ("local", "slurm"))
    assert {k for k in local if local[k] != slurm[k]} == {"_target_"}
    assert {"partition", "account", "qos", "array_parallelism", "setup"} <= set(slurm) - set(local)
    # the README's example of SLURM overrides
    readme = (REPO / "README.md").read_text()
    example = ("hydra/launcher=slurm hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=4 "
               "hydra.launcher.tasks_per_node=4 hydra.launcher.timeout_min=720 trainer.devices=4")
    assert example in readme
    cfg = compose_config(tmp_path, [*example.split(), "model=esrgan"])
    launcher = cfg.hydra.launcher
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == ("gpu", 4, 4, 720)
    assert launcher._target_.endswith("SlurmLauncher") and cfg.trainer.devices == 4


@pytest.mark.slow
def test_a_sweep_through_the_local_submitit_launcher(tmp_path):
    result = _train("-m", "hydra/launcher=local", "hydra.launcher.gpus_per_node=0", "debug=smoke", "model=quickstart",
                    "seed=1,2", *TINY_NETS["quickstart"], *QUIET, cwd=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "multirun").glob("*/*"))
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file() and (sweep / job / "csv" / "metrics.csv").is_file()
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # each job ran as a submitit job
    summary = (sweep / "summary.md").read_text()
    assert "| seed=1 |" in summary and "| seed=2 |" in summary, summary


@pytest.mark.slow
def test_multirun_writes_each_job_and_the_summary(tmp_path):
    from tests.runs.test_wandb import _config, _summary, offline_run_records

    # logger=many: CSV for the summary, an offline W&B run per job (conftest sets WANDB_MODE=offline)
    result = _train("-m", "debug=smoke", "model=quickstart", "seed=1,2", "logger=many", *TINY_NETS["quickstart"],
                    *QUIET, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "multirun").glob("*/*"))
    for job, seed in (("0", 1), ("1", 2)):
        assert (sweep / job / "csv" / "metrics.csv").is_file()
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        # the W&B run: the name every report gives the job, the swept key top level, the best in the summary
        records = offline_run_records(sweep / job)
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.display_name == f"seed={seed}", run.display_name
        assert _config(records)["swept/seed"] == seed
        summary = _summary(records)
        assert set(summary["val/psnr"]) == {"max"} and summary["best/step"] >= 0, summary
        assert (tmp_path / summary["best/checkpoint"]).is_file()  # relative to the launch folder
    summary = (sweep / "summary.md").read_text()
    assert "| seed=1 |" in summary and "| seed=2 |" in summary, summary
    assert len((sweep / "summary.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_optuna_search_reports_best_and_resumes(tmp_path):
    import optuna

    args = ["hparams_search=esrgan_optuna", "debug=smoke", *TINY_NETS["esrgan"], *QUIET]
    first = _train(*args, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (sweep,) = list((tmp_path / "multirun").glob("*/*"))
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert isinstance(results["best_value"], float)
    assert set(results["best_params"]) >= {"model.optimizer_g.lr", "model.loss_weights.adversarial"}
    again = _train(*args, "hydra.sweeper.n_trials=1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="esrgan_optuna", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


@pytest.mark.slow
def test_one_sweep_over_every_report_model_offline(tmp_path):
    """The issue's command: keys only some models have (the VGG weights) must not block a sweep over all."""
    models = ["autoencoder", "vanilla_gan", "srgan", "esrgan"]
    result = _train("-m", f"model={','.join(models)}", "vgg_weights=random", "debug=smoke", *QUIET, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "multirun").glob("*/*"))
    for job, model in enumerate(models):
        assert f"model={model}" in (sweep / str(job) / ".hydra" / "overrides.yaml").read_text()
        assert (sweep / str(job) / "checkpoints" / "last.ckpt").is_file(), model


@pytest.mark.slow
def test_config_error_in_a_sweep_job_is_one_line_naming_the_job(tmp_path):
    # the quickstart has no perceptual loss: forcing one in breaks its job, not with a traceback
    result = _train("-m", "model=quickstart", "debug=smoke", "++model.perceptual_loss.vgg_weights=random", *QUIET,
                    cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert errors[0].startswith("error: job 0 (model=quickstart debug=smoke ++model.perceptual_loss.vgg_weights=random")
    assert "model: cannot build srlab.models.restoration.RestorationModule" in errors[0]
    assert "unexpected keyword argument 'perceptual_loss'" in errors[0]
