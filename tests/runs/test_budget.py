"""A training budget in time: the run stops when it is spent, the rate anneals over it, validation is free."""

from __future__ import annotations

import csv
import time

import lightning as L
import pytest
import torch
from torch import nn
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from srlab.errors import ConfigError
from srlab.prepare import main as prepare_main
from srlab.runs.budget import TrainingBudget, annealed
from srlab.train import run
from tests.conftest import TINY_NETS, compose_config
from tests.data.hostile import rgb_array


class TinyRegression(L.LightningModule):
    """One linear layer; ``pause_s`` sleeps in each training (or validation) step to spend wall time."""

    def __init__(self, pause_s: float = 0.0, val_pause_s: float = 0.0, scheduler: bool = False) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.pause_s, self.val_pause_s, self.scheduler = pause_s, val_pause_s, scheduler

    def training_step(self, batch, batch_idx):
        time.sleep(self.pause_s)
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        time.sleep(self.val_pause_s)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        if self.scheduler:
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 10)]
        return opt


def _loader(n: int = 64) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 4), torch.randn(n, 1)), batch_size=1)


def _fit(module: L.LightningModule, budget: TrainingBudget, max_steps: int = 400, **trainer_kwargs) -> L.Trainer:
    trainer = L.Trainer(max_steps=max_steps, callbacks=[budget], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        **trainer_kwargs)
    trainer.fit(module, _loader(), _loader(4) if "val_check_interval" in trainer_kwargs else None)
    return trainer


def test_annealing_runs_from_the_full_rate_to_the_final_fraction():
    assert annealed("cosine", 0.0, 0.01) == pytest.approx(1.0)
    assert annealed("cosine", 0.5, 0.01) == pytest.approx(0.505)
    assert annealed("cosine", 1.0, 0.01) == pytest.approx(0.01)
    assert annealed("cosine", 1.7, 0.01) == pytest.approx(0.01)  # past the budget: stays at the end
    assert annealed("linear", 0.25, 0.0) == pytest.approx(0.75)
    assert annealed("none", 0.9, 0.01) == 1.0


def test_a_wall_budget_stops_the_run_and_leaves_the_rate_annealed():
    budget = TrainingBudget(minutes=0.6 / 60, clock="wall")  # 0.6 s at ~0.05 s per step: ~12 steps
    trainer = _fit(TinyRegression(pause_s=0.05), budget)
    assert 5 <= trainer.global_step < 60
    assert budget.fraction >= 1.0
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.01)


def test_a_cpu_budget_is_not_spent_by_waiting():
    # the same sleeps that spend a wall budget in ~12 steps cost almost no CPU time
    budget = TrainingBudget(minutes=0.6 / 60, clock="cpu")
    trainer = _fit(TinyRegression(pause_s=0.05), budget, max_steps=20)
    assert trainer.global_step == 20
    assert budget.fraction < 0.5
    assert 0.1 * 0.5 < trainer.optimizers[0].param_groups[0]["lr"] < 0.1


def test_validation_time_is_not_training_time():
    budget = TrainingBudget(minutes=10, clock="wall")
    start = time.monotonic()
    _fit(TinyRegression(pause_s=0.01, val_pause_s=0.2), budget, max_steps=20, val_check_interval=10)
    wall = time.monotonic() - start
    # two validations of 4 batches x 0.2 s: 1.6 s of the wall time, none of it spent from the budget
    assert wall - budget.spent_s > 1.5


def test_resume_keeps_the_time_spent_and_the_starting_rates():
    first = TrainingBudget(minutes=0.6 / 60, clock="wall")
    _fit(TinyRegression(pause_s=0.05), first)
    resumed = TrainingBudget(minutes=0.6 / 60, clock="wall")
    resumed.load_state_dict(first.state_dict())
    assert resumed.spent_s == first.spent_s
    trainer = _fit(TinyRegression(), resumed, max_steps=3)
    # the optimizer was rebuilt at lr 0.1; annealing continues from the spent fraction, not from 1
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.01)


def test_a_model_scheduler_beside_the_annealing_is_a_config_error():
    with pytest.raises(ConfigError, match="model.scheduler=null"):
        _fit(TinyRegression(scheduler=True), TrainingBudget(minutes=1))


@pytest.mark.parametrize("kwargs, key", [({"minutes": 0}, "minutes"), ({"minutes": 1, "clock": "gpu"}, "clock"),
                                         ({"minutes": 1, "anneal": "step"}, "anneal")])
def test_bad_settings_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=f"training_budget.{key}"):
        TrainingBudget(**kwargs)


FRONTIER_FAMILIES = ["srvgg", "span", "safmn", "rlfn", "imdn", "omnisr", "edsr"]


@pytest.mark.parametrize("model", FRONTIER_FAMILIES)
def test_the_frontier_experiment_composes_for_every_family(tmp_path, model):
    cfg = compose_config(tmp_path, ["experiment=cpu_hour_frontier", f"model={model}", "data.root=pairs",
                                    "benchmarks_dir=bench"])
    assert cfg.model.scheduler is None and cfg.model.ema_decay == 0
    assert cfg.callbacks.training_budget.clock == "cpu" and cfg.data.num_workers == 0
    assert [s.name for s in cfg.data.val_sets] == ["Set5"]


@pytest.mark.slow
def test_a_frontier_run_stops_on_its_budget_and_validates_on_the_benchmark(tmp_path):
    src, bench = tmp_path / "src", tmp_path / "bench" / "Set5"
    src.mkdir()
    bench.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rgb_array(i, (96, 96))).save(src / f"{i}.png")
    Image.fromarray(rgb_array(5, (64, 64))).save(bench / "a.png")
    assert prepare_main([str(src), "-o", str(tmp_path / "pairs"), "--blur-radius", "0"]) == 0
    cfg = compose_config(tmp_path / "run", [
        "experiment=cpu_hour_frontier", "model=srvgg", *TINY_NETS["srvgg"], f"data.root={tmp_path / 'pairs'}",
        f"benchmarks_dir={tmp_path / 'bench'}", "data.patch_size=32", "data.batch_size=2", "data.samples_per_epoch=8",
        "callbacks.training_budget.minutes=0.02", "callbacks.training_budget.clock=wall",
        "~callbacks.comparison_grid", "~callbacks.curves", "~callbacks.progress_bar"])
    best = run(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "metrics.csv")))
    steps = max(int(r["step"]) for r in rows if r.get("step"))
    validated = [int(r["step"]) for r in rows if r.get("val/Set5/psnr_y")]
    assert 0 < steps < 10_000 and best > 0  # stopped by the budget (no step limit), monitored Set5
    assert validated[-1] >= steps - 1  # Lightning validated once more as the budget ran out
    assert float([r for r in rows if r.get("budget/fraction")][-1]["budget/fraction"]) >= 1
