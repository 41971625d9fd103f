"""Adversarial training behaviour: one G forward per batch, warm-up by batches, NaN handling, bf16, DDP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hydra
import pandas as pd
import pytest
import torch
from omegaconf import open_dict

from srlab.errors import SRLabError
from srlab.train import build_model, run
from tests.conftest import subprocess_env


def test_generator_runs_once_per_batch_and_d_trains_on_detached_output(smoke_cfg):
    cfg = smoke_cfg("esrgan", extra=["trainer.limit_train_batches=3", "data.samples_per_epoch=6",
                                     "trainer.limit_val_batches=0"])
    model = build_model(cfg)
    calls = {"g": 0}
    model.generator.register_forward_hook(lambda *_: calls.__setitem__("g", calls["g"] + 1))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    assert calls["g"] == 3
    assert int(model.batches_seen) == 3
    # two optimizer steps per batch: global_step counts both G and D
    assert trainer.global_step == 6


def test_warmup_counts_batches_not_optimizer_steps(smoke_cfg):
    cfg = smoke_cfg("esrgan", extra=["model.generator_warmup_batches=2", "trainer.limit_train_batches=3",
                                     "data.samples_per_epoch=6"])
    run(cfg)
    metrics = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")
    d_rows = metrics["train/d_loss_step"].dropna() if "train/d_loss_step" in metrics else []
    # batches 0 and 1 are generator-only; only batch 2 trains D
    assert len(d_rows) == 1


def test_nan_loss_stops_with_the_loss_named(smoke_cfg):
    cfg = smoke_cfg("esrgan")
    model = build_model(cfg)
    model.pixel_loss.forward = lambda sr, gt: torch.tensor(float("nan"))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    with pytest.raises(SRLabError, match=r"non-finite l_pix at batch 0"):
        trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))


def test_nan_loss_skip_mode_counts_and_keeps_weights(smoke_cfg):
    cfg = smoke_cfg("esrgan", extra=["model.on_nonfinite=skip"])
    model = build_model(cfg)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    model.pixel_loss.forward = lambda sr, gt: torch.tensor(float("nan"))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    assert int(model.batches_skipped) == 2
    assert all(torch.equal(before[k], v) for k, v in model.generator.state_dict().items())


@pytest.mark.parametrize("model", ["esrgan", "srgan"])
def test_bf16_mixed_precision_trains_with_manual_optimization(smoke_cfg, model):
    cfg = smoke_cfg(model, extra=["trainer.precision=bf16-mixed"])
    assert run(cfg) is not None


# auto: NHWC on CUDA and in bf16 (oneDNN's bf16 convolutions are NHWC), NCHW in fp32 on a CPU. The precision is
# stated: under trainer.precision=auto it would be this machine's (test_precision runs auto both ways)
@pytest.mark.parametrize(("setting", "precision", "nhwc"), [("true", "32-true", True), ("auto", "32-true", False),
                                                            ("auto", "bf16-mixed", True)])
def test_channels_last_puts_every_net_and_batch_in_nhwc(smoke_cfg, setting, precision, nhwc):
    cfg = smoke_cfg("esrgan", extra=[f"model.channels_last={setting}", f"trainer.precision={precision}",
                                     "trainer.limit_train_batches=2", "data.samples_per_epoch=4",
                                     "trainer.limit_val_batches=0"])
    model = build_model(cfg)
    seen = []
    model.generator.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    convs = [p for p in model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) == nhwc for p in convs)
    assert len(seen) == 2 and all(x.is_contiguous(memory_format=torch.channels_last) == nhwc for x in seen)


def test_channels_last_rejects_other_values(smoke_cfg):
    with pytest.raises(SRLabError, match="model.channels_last='sometimes'"):
        build_model(smoke_cfg("esrgan", extra=["model.channels_last=sometimes"]))


@pytest.mark.slow
def test_esrgan_pixel_loss_goes_down_on_sample_photos(smoke_cfg):
    """A short real run (tens of steps) on the bundled photos: the generator learns."""
    cfg = smoke_cfg("esrgan", extra=[
        "trainer.limit_train_batches=40", "data.patch_size=48", "data.batch_size=4", "data.samples_per_epoch=160",
        "model.generator.num_feat=16", "model.generator.num_block=2", "model.generator.num_grow_ch=8",
        "model.optimizer_g.lr=1e-3",
    ])
    with open_dict(cfg):
        cfg.trainer.log_every_n_steps = 1
    run(cfg)
    metrics = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")
    pix = metrics["train/l_pix_step"].dropna().to_numpy()
    assert len(pix) >= 30
    assert pix[-10:].mean() < 0.7 * pix[:5].mean(), pix


@pytest.mark.slow
def test_ddp_two_cpu_processes_from_subprocess(tmp_path):
    """`trainer.devices=2` on CPU (gloo): both ranks train, one output folder, one checkpoint."""
    env = subprocess_env()
    cmd = [sys.executable, "-m", "srlab.train", "model=esrgan", "debug=smoke", "trainer.accelerator=cpu",
           "trainer.devices=2", "vgg_weights=random", "model.generator.num_feat=8",
           "model.generator.num_block=1", "model.generator.num_grow_ch=4", "model.discriminator.num_feat=8",
           "hydra.run.dir=run"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    metrics = pd.read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    assert metrics["val/psnr"].notna().any()


def test_realesrgan_starts_from_both_published_networks(smoke_cfg, tmp_path):
    """model.generator_init + model.discriminator_init: fine-tuning from RealESRGAN_x4plus(_netD).pth layouts."""
    donor = build_model(smoke_cfg("realesrgan"))
    torch.nn.init.normal_(donor.discriminator.conv0.weight)
    torch.save({"params_ema": donor.generator.state_dict()}, tmp_path / "RealESRGAN_x4plus.pth")
    torch.save({"params": donor.discriminator.state_dict()}, tmp_path / "RealESRGAN_x4plus_netD.pth")
    cfg = smoke_cfg("realesrgan", extra=[f"model.generator_init={tmp_path / 'RealESRGAN_x4plus.pth'}",
                                         f"model.discriminator_init={tmp_path / 'RealESRGAN_x4plus_netD.pth'}"])
    model = build_model(cfg)
    for net in ("generator", "discriminator"):
        ours, theirs = getattr(model, net).state_dict(), getattr(donor, net).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    bad = smoke_cfg("realesrgan", extra=[f"model.discriminator_init={tmp_path / 'RealESRGAN_x4plus.pth'}"])
    with pytest.raises(SRLabError, match=r"RealESRGAN_x4plus.pth: holds no discriminator weights \(top-level keys: \['params_ema'\]\)"):
        build_model(bad)
