"""Run names: a sweep's job by what its sweep varies, any other run by model and date/time."""

from __future__ import annotations

from omegaconf import OmegaConf

from srlab.runs.naming import name_of_run_dir, run_name, short_keys
from tests.conftest import write_hydra_record


def _hydra(mode: str, task: list[str], output_dir: str, params: dict | None = None, num: int = 0):
    return OmegaConf.create({"mode": mode, "job": {"name": "train", "num": num}, "overrides": {"task": task},
                             "sweeper": {"params": params},
                             "runtime": {"choices": {"model": "esrgan"}, "output_dir": output_dir}})


def test_single_run_is_named_by_model_and_folder_time():
    cfg = _hydra("RUN", ["model=esrgan", "seed=3"], "/home/u/outputs/2026-01-02/10-20-30")
    assert run_name(cfg) == "esrgan 2026-01-02_10-20-30"
    cfg.runtime.output_dir = "/data/my-run"  # a custom hydra.run.dir: the folder's own name
    assert run_name(cfg) == "esrgan my-run"


def test_sweep_job_is_named_by_the_swept_overrides(tmp_path):
    sweep = tmp_path / "multirun" / "2026-01-02" / "10-20-30"
    # what Hydra records: the launching command line, and the sweeper params of experiment=phase2
    launch = ["experiment=phase2", "model.optimizer_g.lr=1e-4,2e-4", "trainer.max_epochs=1"]
    task = ["model=srgan", "experiment=phase2", "model.optimizer_g.lr=2e-4", "trainer.max_epochs=1"]
    job = write_hydra_record(sweep / "1", task, params={"model": "srgan,esrgan"}, launch=launch)
    assert name_of_run_dir(job) == "model=srgan optimizer_g.lr=2e-4"  # shared overrides left out
    (sweep / "multirun.yaml").unlink()  # without the command line only the config's sweep is known
    assert name_of_run_dir(job) == "model=srgan"


def test_optuna_trial_is_named_by_its_searched_values_rounded():
    params = {"model.optimizer_g.lr": "tag(log, interval(2e-5, 5e-4))", "model.loss_weights.pixel": "0.01"}
    task = ["hparams_search=esrgan_optuna", "model.optimizer_g.lr=6.677511008261826e-05",
            "model.loss_weights.pixel=0.01"]
    cfg = _hydra("RunMode.MULTIRUN", task, "/x/multirun/2026-01-02/10-20-30/4", params, num=4)
    assert run_name(cfg) == "optimizer_g.lr=6.678e-05"  # a fixed param is not a swept one


def test_multirun_that_varies_nothing_gets_sweep_time_and_job_number():
    cfg = _hydra("MULTIRUN", ["seed=1"], "/x/multirun/2026-01-02/10-20-30/0")
    assert run_name(cfg, ["seed=1"]) == "esrgan 2026-01-02_10-20-30 #0"


def test_keys_shortened_only_while_they_stay_apart():
    assert short_keys(["model", "model.optimizer_g.lr", "model.optimizer_d.lr", "data.augment.affine"]) == {
        "model": "model", "model.optimizer_g.lr": "optimizer_g.lr", "model.optimizer_d.lr": "optimizer_d.lr",
        "data.augment.affine": "augment.affine"}
    assert short_keys(["model.discriminator.num_feat", "model.generator.num_feat"]) == {
        "model.discriminator.num_feat": "discriminator.num_feat", "model.generator.num_feat": "generator.num_feat"}
    assert short_keys(["a.x.lr", "b.x.lr"]) == {"a.x.lr": "a.x.lr", "b.x.lr": "b.x.lr"}


def test_run_without_hydra_record_has_no_name(tmp_path):
    assert name_of_run_dir(tmp_path) is None
