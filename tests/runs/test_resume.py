"""Resume and checkpoint integrity: exact continuation, atomic last.ckpt every N batches, resume=auto, no NaN saved."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

import srlab.runs.checkpointing as ckpt_mod
from srlab.errors import ConfigError, SRLabError
from srlab.runs.checkpointing import (
    AtomicCheckpoint,
    LastCheckpoint,
    find_resume_checkpoint,
    resolve_ckpt_path,
    rng_state,
    set_rng_state,
)
from srlab.train import run
from srlab.weights import safe_torch_load
from tests.conftest import compose_config, subprocess_env

# ESRGAN structure (two optimizers, two schedulers, EMA, batch counter) without the VGG19 cost
GAN = ["model=esrgan", "debug=smoke", "model.generator.num_feat=8", "model.generator.num_block=1",
       "model.generator.num_grow_ch=4", "model.discriminator.num_feat=8", "model.perceptual_loss=null"]
# pictures and plots cost seconds per epoch and play no part in resuming
LEAN = ["~callbacks.curves", "~callbacks.comparison_grid", "~callbacks.progress_bar"]
QUICK = ["model=quickstart", "debug=smoke", "model.generator.num_feat=8", "model.generator.num_block=1",
         "model.generator.num_grow_ch=4"]


class Throttle(L.Callback):
    """Slows training down so that a test can kill it in the middle (used from a subprocess)."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _last(out: Path) -> Path:
    return out / "checkpoints" / "last.ckpt"


def _same(a, b) -> bool:
    """Exact structural equality of checkpoint parts (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN == NaN here


def _callback_state(ckpt: dict, name: str) -> dict:
    return next(v for k, v in ckpt["callbacks"].items() if k.startswith(name))


# ----------------------------------------------------------------- exact continuation
@pytest.mark.slow
def test_interrupted_at_epoch_end_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    """2 epochs straight == 1 epoch, then resume from its last.ckpt (new run folder) to 2 epochs."""
    monkeypatch.chdir(tmp_path)
    extra = ["trainer.deterministic=true", "data.samples_per_epoch=6", "trainer.limit_train_batches=3",
             # LR halves inside epoch 2: the restored scheduler state matters
             "model.scheduler_g.milestones=[4]", "model.scheduler_d.milestones=[4]", "model.ema_decay=0.9", *LEAN]
    run(compose_config(tmp_path / "straight", [*GAN, *extra, "trainer.max_epochs=2"]))
    run(compose_config(tmp_path / "first", [*GAN, *extra, "trainer.max_epochs=1"]))
    first = _last(tmp_path / "first")
    run(compose_config(tmp_path / "resumed", [*GAN, *extra, "trainer.max_epochs=2", f"ckpt_path={first}"]))

    a, b = safe_torch_load(_last(tmp_path / "straight")), safe_torch_load(_last(tmp_path / "resumed"))
    assert a["global_step"] == b["global_step"] == 12  # 6 batches, G and D steps
    assert int(b["state_dict"]["batches_seen"]) == 6
    for key in a["state_dict"]:  # generator, its EMA, discriminator, counters
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert _same(a["optimizer_states"], b["optimizer_states"])  # both Adams
    assert _same(a["lr_schedulers"], b["lr_schedulers"]) and a["lr_schedulers"][0]["_last_lr"] == [5e-5]
    assert _same(a["loops"], b["loops"])
    assert _same(_callback_state(a, "RNGState"), _callback_state(b, "RNGState"))
    assert _same(_callback_state(a, "EarlyStopping"), _callback_state(b, "EarlyStopping"))
    best = [_callback_state(c, "AtomicCheckpoint{'monitor': 'val/psnr'")["best_model_score"] for c in (a, b)]
    assert _same(best[0], best[1])
    # the run it resumed from is left as it was
    assert safe_torch_load(first)["global_step"] == 6


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(drawn[0], again[0]) and np.array_equal(drawn[1], again[1]) and drawn[2] == again[2]


def test_best_score_survives_a_resume_into_a_new_run_folder(tmp_path):
    """Lightning drops the best score when dirpath changes; the next epoch would become "best" whatever it scored."""
    from types import SimpleNamespace

    old = AtomicCheckpoint(dirpath=str(tmp_path / "old"), monitor="val/psnr", mode="max")
    best = str(tmp_path / "old" / "best.ckpt")
    old.best_model_score = old.kth_value = torch.tensor(30.0)
    old.best_model_path = old.kth_best_model_path = best
    old.best_k_models = {best: torch.tensor(30.0)}
    new = AtomicCheckpoint(dirpath=str(tmp_path / "new"), monitor="val/psnr", mode="max")
    new.load_state_dict(old.state_dict())
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision))
    assert new.best_model_path == best and float(new.best_model_score) == 30.0
    assert not new.check_monitor_top_k(trainer, torch.tensor(29.0))
    assert new.check_monitor_top_k(trainer, torch.tensor(31.0))
    last = LastCheckpoint(dirpath=str(tmp_path / "new"))
    last.load_state_dict({**old.state_dict(), "last_model_path": str(tmp_path / "old" / "last.ckpt")})
    assert last.last_model_path == ""  # the earlier folder's last.ckpt is never touched


# ----------------------------------------------------------------- last.ckpt: when and how it is written
def test_last_checkpoint_counts_batches_not_optimizer_steps(tmp_path, monkeypatch):
    saves = []
    real = ckpt_mod.atomic_save_checkpoint

    def spy(trainer, filepath, weights_only=False):
        progress = trainer.fit_loop.epoch_loop.batch_progress
        saves.append((Path(filepath).name, progress.total.processed, trainer.global_step,
                      "val/psnr" in trainer.callback_metrics))
        real(trainer, filepath, weights_only)

    monkeypatch.setattr(ckpt_mod, "atomic_save_checkpoint", spy)
    cfg = compose_config(tmp_path / "run", [*GAN, *LEAN, "trainer.limit_train_batches=3", "data.samples_per_epoch=6",
                                            "callbacks.model_checkpoint_last.every_n_batches=1"])
    run(cfg)
    last = [s for s in saves if s[0] == "last.ckpt"]
    # after batches 1 and 2 (GAN: 2 optimizer steps each); batch 3 is left to the epoch-end save after validation
    assert last == [("last.ckpt", 1, 2, False), ("last.ckpt", 2, 4, False), ("last.ckpt", 3, 6, True)]
    assert not list((tmp_path / "run" / "checkpoints").glob(".*partial"))


def _die_mid_copy(monkeypatch):
    """Make the next checkpoint write behave like a process killed halfway through a cross-device move."""

    class Killed(BaseException):
        pass

    def rename(src, dst, *a, **k):  # what os.rename does when /tmp is another filesystem
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def copyfile(src, dst, *a, **k):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        raise Killed()

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    return Killed


def test_last_ckpt_survives_a_kill_during_its_write_but_lightnings_plain_save_does_not(tmp_path, monkeypatch):
    cfg = compose_config(tmp_path / "run", QUICK)
    from srlab.train import build_model

    model, datamodule = build_model(cfg), hydra.utils.instantiate(cfg.data, _convert_="all")
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    trainer.fit(model, datamodule=datamodule)
    ours, plain = tmp_path / "ours" / "last.ckpt", tmp_path / "plain" / "last.ckpt"
    ckpt_mod.atomic_save_checkpoint(trainer, ours)
    trainer.save_checkpoint(plain)  # Lightning 2.6.6: fsspec temp file in $TMPDIR, then shutil.move
    good = _sha(ours)

    with monkeypatch.context() as m:
        killed = _die_mid_copy(m)
        with pytest.raises(killed):
            ckpt_mod.atomic_save_checkpoint(trainer, ours)
        with pytest.raises(killed):
            trainer.save_checkpoint(plain)
    assert _sha(ours) == good and safe_torch_load(ours)["global_step"] == trainer.global_step
    with pytest.raises(SRLabError, match="not a readable torch checkpoint"):
        safe_torch_load(plain)  # truncated in place: the move fell back to copying into the final name


# ----------------------------------------------------------------- a NaN model never replaces a good checkpoint
class _PoisonAtEpoch(L.Callback):
    """At the start of ``epoch``: remember last.ckpt's hash, then break the run (NaN weights or gradients)."""

    def __init__(self, last: Path, epoch: int, kind: str) -> None:
        self.last, self.epoch, self.kind, self.sha = last, epoch, kind, None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch:
            return
        self.sha = _sha(self.last)
        param = next(pl_module.generator.parameters())
        if self.kind == "weights":
            with torch.no_grad():
                param.fill_(float("nan"))
        else:
            param.register_hook(lambda g: g * float("nan"))


@pytest.mark.parametrize("kind", ["weights", "gradients"])
def test_nan_model_never_overwrites_the_last_good_checkpoint(tmp_path, kind, caplog):
    mode = "skip" if kind == "weights" else "stop"
    cfg = compose_config(tmp_path / "run", [*QUICK, *LEAN, "trainer.max_epochs=2", f"++model.on_nonfinite={mode}"])
    from srlab.train import build

    datamodule, model, trainer = build(cfg)
    poison = _PoisonAtEpoch(_last(tmp_path / "run"), epoch=1, kind=kind)
    trainer.callbacks.insert(0, poison)
    if kind == "weights":  # every loss of epoch 2 is NaN and skipped; the epoch-end save is refused
        trainer.fit(model, datamodule=datamodule)
        assert int(model.batches_skipped) == 2
        assert "not writing" in caplog.text and "non-finite weights (generator.conv_first.weight)" in caplog.text
    else:  # the first NaN gradient norm stops the run before the optimizer step
        with pytest.raises(SRLabError, match=r"non-finite generator gradient norm at batch 2 \(epoch 1\)"):
            trainer.fit(model, datamodule=datamodule)
    last = _last(tmp_path / "run")
    assert poison.sha is not None and _sha(last) == poison.sha
    saved = safe_torch_load(last)
    assert saved["epoch"] == 0 and all(torch.isfinite(v).all() for v in saved["state_dict"].values()
                                       if v.is_floating_point() and v.dim())


@pytest.mark.parametrize("net", ["generator", "discriminator"])
@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_gan_nonfinite_gradients_stop_or_skip(tmp_path, net, mode):
    cfg = compose_config(tmp_path / "run", [*GAN, f"model.on_nonfinite={mode}", "callbacks=none"])
    from srlab.train import build_model

    model = build_model(cfg)
    # parameters only: D's BatchNorm statistics move in every forward, stepped or not
    before = {k: v.detach().clone() for k, v in getattr(model, net).named_parameters()}
    next(getattr(model, net).parameters()).register_hook(lambda g: g * float("nan"))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    if mode == "stop":
        with pytest.raises(SRLabError, match=f"non-finite {net} gradient norm at batch 0"):
            trainer.fit(model, datamodule=datamodule)
    else:
        trainer.fit(model, datamodule=datamodule)
        assert int(model.batches_skipped) == 2
    assert all(torch.equal(before[k], v) for k, v in getattr(model, net).named_parameters())


def test_restoration_nonfinite_loss_skip_and_stop(tmp_path):
    from srlab.train import build_model

    for mode in ("skip", "stop"):
        cfg = compose_config(tmp_path / mode, [*QUICK, f"++model.on_nonfinite={mode}", "callbacks=none"])
        model = build_model(cfg)
        before = {k: v.clone() for k, v in model.generator.state_dict().items()}
        model.pixel_loss.forward = lambda sr, gt: (sr * float("nan")).mean()
        trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        if mode == "stop":
            with pytest.raises(SRLabError, match=r"non-finite loss at batch 0 \(epoch 0\)"):
                trainer.fit(model, datamodule=datamodule)
        else:
            trainer.fit(model, datamodule=datamodule)
            assert int(model.batches_skipped) == 2
        assert all(torch.equal(before[k], v) for k, v in model.generator.state_dict().items())


# ----------------------------------------------------------------- resume=auto and checkpoint checks
def _fake_run(root: Path, name: str, cfg, mtime: float) -> Path:
    run_dir = root / name
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    last = _last(run_dir)
    last.write_bytes(b"not read by the search")
    os.utime(last, (mtime, mtime))
    return last


def test_resume_auto_picks_the_newest_run_of_the_same_task_and_model(tmp_path):
    cfg = compose_config(tmp_path / "new", QUICK)
    other_model = compose_config(tmp_path / "x", [*QUICK, "model.generator.num_feat=16"])
    other_task = compose_config(tmp_path / "y", [*QUICK, "task_name=other"])
    strip = lambda c: OmegaConf.masked_copy(c, [k for k in c if k != "hydra"])  # noqa: E731
    root = tmp_path / "outputs"
    old = _fake_run(root, "2024-01-01/10-00-00", strip(cfg), 1000)
    new = _fake_run(root, "2024-01-02/10-00-00", strip(cfg), 2000)
    _fake_run(root, "2024-01-03/10-00-00", strip(other_model), 3000)
    _fake_run(root, "2024-01-04/10-00-00", strip(other_task), 4000)
    (root / "2024-01-05" / "no_config" / "checkpoints").mkdir(parents=True)
    _last(root / "2024-01-05" / "no_config").write_bytes(b"x")
    os.symlink(root, root / "loop")  # a link loop is not followed
    assert find_resume_checkpoint(root, cfg) == new
    os.utime(old, (5000, 5000))
    assert find_resume_checkpoint(root, cfg) == old
    assert find_resume_checkpoint(tmp_path / "nothing_here", cfg) is None


def test_resume_auto_without_earlier_runs_starts_fresh_and_bad_values_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_ckpt_path(compose_config(tmp_path / "a", [*QUICK, "resume=auto"])) is None
    with pytest.raises(ConfigError, match="resume=/no/such/folder: use auto"):
        resolve_ckpt_path(compose_config(tmp_path / "a", [*QUICK, "resume=/no/such/folder"]))


def test_ckpt_path_is_checked_before_training(tmp_path):
    cfg = compose_config(tmp_path / "a", QUICK)
    net_config = OmegaConf.to_container(cfg.model.generator, resolve=True)
    weights_only = tmp_path / "weights.pth"
    torch.save({"params": {"w": torch.zeros(1)}}, weights_only)
    with pytest.raises(SRLabError, match=f"ckpt_path={weights_only}: not a training checkpoint.*generator_init="):
        run(compose_config(tmp_path / "a", [*QUICK, f"ckpt_path={weights_only}"]))
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "loops": {}, "hyper_parameters": {"net_config": {**net_config, "num_feat": 16}}},
               other)
    with pytest.raises(ConfigError, match=r"its generator differs from model.generator \(num_feat: checkpoint 16 vs"):
        run(compose_config(tmp_path / "a", [*QUICK, f"ckpt_path={other}"]))
    with pytest.raises(SRLabError, match="no such checkpoint"):
        run(compose_config(tmp_path / "a", [*QUICK, f"ckpt_path={tmp_path / 'missing.ckpt'}"]))
    gan = tmp_path / "gan.ckpt"
    torch.save({"state_dict": {"discriminator.conv0_0.weight": torch.zeros(1)}, "loops": {}}, gan)
    with pytest.raises(ConfigError, match=r"a GAN's \(it has a discriminator\) checkpoint, but the configured model has"):
        run(compose_config(tmp_path / "a", [*QUICK, f"ckpt_path={gan}"]))
    data = OmegaConf.to_container(cfg.data, resolve=True)
    other_data = tmp_path / "other_data.ckpt"
    torch.save({"state_dict": {}, "loops": {}, "datamodule_hyper_parameters": {**data, "batch_size": 7}}, other_data)
    with pytest.raises(ConfigError, match=r"trained with other data \(data.batch_size: checkpoint 7 vs config 2\)"):
        run(compose_config(tmp_path / "a", [*QUICK, f"ckpt_path={other_data}"]))
    assert not (tmp_path / "a" / "checkpoints").exists()  # nothing trained


# ----------------------------------------------------------------- a real kill
def _train_cli(*args: str, cwd: Path, throttle: bool = False, model: list[str] = GAN) -> subprocess.Popen:
    env = subprocess_env()
    extra = ["+callbacks.throttle._target_=tests.runs.test_resume.Throttle"] if throttle else []
    return subprocess.Popen([sys.executable, "-m", "srlab.train", *model, *args, *extra], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_after_first_checkpoint(proc: subprocess.Popen, last: Path) -> dict:
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, output[-3000:]
    return safe_torch_load(last)


@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_last_checkpoint_to_the_expected_step(tmp_path):
    args = ["trainer.limit_train_batches=6", "data.samples_per_epoch=12", "trainer.max_epochs=2",
            "callbacks.model_checkpoint_last.every_n_batches=2"]
    proc = _train_cli(*args, "hydra.run.dir=outputs/first", cwd=tmp_path, throttle=True)
    last = _last(tmp_path / "outputs" / "first")
    killed_at = _kill_after_first_checkpoint(proc, last)
    assert killed_at["global_step"] < 24, "the run finished before it was killed"
    assert int(killed_at["state_dict"]["batches_seen"]) % 2 == 0  # a batch-interval checkpoint

    # resume=auto finds it (same task and model under ./outputs) ...
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        auto = resolve_ckpt_path(compose_config(tmp_path / "outputs" / "x", [*GAN, *args, "resume=auto"]))
    finally:
        os.chdir(cwd)
    assert Path(auto).resolve() == last.resolve()
    # ... and ckpt_path continues it in a new run folder to the planned end: 12 batches, 24 optimizer steps
    proc = _train_cli(*args, f"ckpt_path={last}", "hydra.run.dir=outputs/second", cwd=tmp_path)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output[-3000:]
    assert "Restoring states from the checkpoint path" in output
    done = safe_torch_load(_last(tmp_path / "outputs" / "second"))
    assert done["global_step"] == 24 and int(done["state_dict"]["batches_seen"]) == 12
    assert done["epoch"] == 1 and _callback_state(done, "RNGState")["torch"].dtype == torch.uint8


def kill_mid_epoch_then_resume(tmp_path: Path, model: list[str], args: list[str]) -> tuple[dict, dict]:
    """kill -9 a CLI run (4 batches an epoch) after its first mid-epoch last.ckpt, resume it in-process with
    ckpt_path, run the same config straight; returns the last checkpoints (straight, resumed)."""
    proc = _train_cli(*args, "hydra.run.dir=killed", cwd=tmp_path, throttle=True, model=model)
    killed_at = _kill_after_first_checkpoint(proc, _last(tmp_path / "killed"))
    done = killed_at["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"]
    assert killed_at["epoch"] == 0 and 0 < done < 4, "not killed in the middle of the first epoch"

    run(compose_config(tmp_path / "resumed", [*model, *args, f"ckpt_path={_last(tmp_path / 'killed')}"]))
    run(compose_config(tmp_path / "straight", [*model, *args]))
    return safe_torch_load(_last(tmp_path / "straight")), safe_torch_load(_last(tmp_path / "resumed"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["psnr", "gan"])
def test_sigkill_mid_epoch_then_resume_equals_the_uninterrupted_run_bit_for_bit(tmp_path, model):
    """kill -9 after a mid-epoch last.ckpt, resume with ckpt_path: the same weights as a run never stopped."""
    base = {"psnr": QUICK, "gan": [*GAN, "model.ema_decay=0.9", "model.scheduler_g.milestones=[5]"]}[model]
    args = [*LEAN, "trainer.deterministic=true", "data.num_workers=0", "data.samples_per_epoch=8",
            "trainer.limit_train_batches=4", "trainer.max_epochs=2", "callbacks.model_checkpoint_last.every_n_batches=1"]
    a, b = kill_mid_epoch_then_resume(tmp_path, base, args)
    assert a["global_step"] == b["global_step"] == (16 if model == "gan" else 8)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:  # generator, EMA, discriminator, batch counters
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert _same(a["optimizer_states"], b["optimizer_states"]) and _same(a["lr_schedulers"], b["lr_schedulers"])
    assert _same(_callback_state(a, "RNGState"), _callback_state(b, "RNGState"))
