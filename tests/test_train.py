"""End-to-end training: every model config trains a couple of steps in-process; the CLI from a subprocess."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import numpy as np

from srlab.config import model_names
from srlab.export import export_generator
from srlab.infer import load_generator, upscale_array
from srlab.errors import ConfigError
from srlab.train import run
from srlab.weights import safe_torch_load
from tests.conftest import subprocess_env

MODELS = model_names()  # every model config trains


@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_and_writes_outputs(smoke_cfg, model):
    cfg = smoke_cfg(model)
    psnr = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert psnr is not None and psnr == psnr  # a real, finite-or-not number came back
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "csv" / "metrics.csv").is_file()
    assert list((out / "images").glob("val_epoch*.png")), "comparison grid missing"
    assert (out / "plots" / "curves.png").is_file()
    # checkpoints hold only plain data: they load without allowing pickled code
    ckpt = safe_torch_load(out / "checkpoints" / "last.ckpt")
    assert ckpt["hyper_parameters"]["net_config"]["_target_"] == cfg.model.generator._target_
    # through the one door and back: the export upscales exactly as the checkpoint does
    exported = export_generator(out / "checkpoints" / "last.ckpt", out / "export")["safetensors"]
    lq = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    from_ckpt = upscale_array(load_generator(out / "checkpoints" / "last.ckpt"), lq)
    shipped = load_generator(exported)
    from_export = upscale_array(shipped, lq)
    if hasattr(shipped.net, "reparameterize"):  # SPAN, EFDN: exported fused, the same up to rounding
        assert shipped.net_config["deploy"] is True and np.abs(from_export.astype(int) - from_ckpt).max() <= 1
    else:
        np.testing.assert_array_equal(from_export, from_ckpt)


@pytest.mark.parametrize("model", ["realesrnet", "realesrgan"])
def test_real_world_models_train_on_the_realesrgan_degradation(smoke_cfg, model):
    cfg = smoke_cfg(model, ["data.degradation=realesrgan"])
    psnr = run(cfg)
    assert psnr is not None and math.isfinite(psnr)
    ckpt = safe_torch_load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    if model == "realesrgan":  # the U-Net discriminator's spectral-norm buffers are checkpointed
        assert "discriminator.conv1.weight_u" in ckpt["state_dict"]


def test_a_run_that_stops_before_its_first_validation_ends_cleanly(smoke_cfg, tmp_path):
    """trainer.max_steps inside the first epoch: no validation ran, early stopping has nothing to read."""
    cfg = smoke_cfg(extra=["trainer.max_steps=1", "callbacks.model_checkpoint_last.every_n_batches=1"])
    run(cfg)
    assert safe_torch_load(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 1


def test_patch_not_divisible_by_scale_is_rejected(smoke_cfg):
    cfg = smoke_cfg(extra=["data.patch_size=30"])
    with pytest.raises(ConfigError, match="data.patch_size"):
        run(cfg)


def test_nonpositive_lr_is_rejected(smoke_cfg):
    cfg = smoke_cfg(extra=["model.optimizer.lr=0"])
    with pytest.raises(ConfigError, match="model.optimizer.lr"):
        run(cfg)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "srlab.train", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_smoke_run_from_subprocess(tmp_path):
    result = _cli("debug=smoke", *[f"{o}" for o in ("model.generator.num_block=1",)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1
    assert (runs[0] / ".hydra" / "config.yaml").is_file()
    assert (runs[0] / "checkpoints" / "last.ckpt").is_file()
    # trainer.precision=auto (the default) is resolved, logged, and saved as resolved in the run's config
    saved = OmegaConf.load(runs[0] / ".hydra" / "config.yaml").trainer.precision
    assert saved in ("32-true", "bf16-mixed") and f"trainer.precision=auto -> {saved}" in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_bad_inputs_give_one_line_errors(tmp_path):
    missing = tmp_path / "nope"
    result = _cli("debug=smoke", "data=hq_folder", f"data.train_dir={missing}", cwd=tmp_path)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    unknown = _cli("debug=smoke", "model.generator.no_such_key=1", cwd=tmp_path)
    assert unknown.returncode != 0 and "no_such_key" in unknown.stderr and "Traceback" not in unknown.stderr
    probs = _cli("debug=smoke", "data/degradation=realesrgan", "data.degradation.kernel_prob=[0.5,0.5]", cwd=tmp_path)
    assert probs.returncode == 2 and "Traceback" not in probs.stderr
    assert "error: data.degradation.kernel_prob=[0.5, 0.5] must be 6 non-negative probabilities" in probs.stderr
