"""Invalid training configs fail before any work, in one line that names the key."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from srlab.errors import ConfigError, SRLabError
from srlab.nets.discriminators import VGGStyleDiscriminator
from srlab.nets.rrdbnet import RRDBNet
from srlab.runs.checks import validate_config
from tests.conftest import TINY_NETS, compose_config

MODELS = ["quickstart", "autoencoder", "rrdbnet", "vanilla_gan", "srgan", "esrgan", "realesrnet", "realesrgan"]


def _cfg(tmp_path, model="quickstart", extra=()):
    return compose_config(tmp_path / "run", [f"model={model}", "debug=smoke", *TINY_NETS[model], *extra])


@pytest.mark.parametrize("model", MODELS)
def test_every_shipped_model_config_passes(tmp_path, model):
    validate_config(_cfg(tmp_path, model))
    validate_config(compose_config(tmp_path / "default", [f"model={model}"]))  # full-size nets: meta device, no memory


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("quickstart", ["model.optimizer.lr=0"], "model.optimizer.lr=0 must be positive"),
    ("esrgan", ["model.optimizer_d.lr=-1e-4"], "model.optimizer_d.lr=-0.0001 must be positive"),
    ("quickstart", ["data.patch_size=30"], "data.patch_size=30 must be a positive multiple of data.scale=4"),
    ("quickstart", ["data.val_patch_size=30"], "data.val_patch_size=30 must be a positive multiple of data.scale=4"),
    ("quickstart", ["data.val_fraction=1.5"], "data.val_fraction=1.5 must be in (0, 1), or set data.val_dir"),
    ("quickstart", ["data.val_fraction=0"], "data.val_fraction=0 must be in (0, 1), or set data.val_dir (0 holds nothing out: then give data.val_sets)"),
    ("quickstart", ["data.scale=3", "data.patch_size=48", "data.val_patch_size=48"],
     "data.scale=3 is not supported by RRDBNet (model.generator.scale=3: RRDBNet supports scale 1, 2, 4, 8"),
    ("autoencoder", ["data.scale=2"], "data.scale=2 is not supported by Autoencoder"),
    ("srgan", ["data.scale=1", "data.patch_size=32"], "data.scale=1 is not supported by SRResNet"),
    ("esrgan", ["data.patch_size=8", "data.val_patch_size=8"],
     "data.patch_size=8 is too small for VGGStyleDiscriminator, which needs patches of at least 16 px"),
    ("quickstart", ["++model.on_nonfinite=ignore"], "model.on_nonfinite='ignore': use 'stop' or 'skip'"),
    ("quickstart", ["trainer.accelerator=cpu", "trainer.devices=4096"],
     f"trainer.devices=4096 but this machine has {os.cpu_count()} CPU core(s)"),
    ("quickstart", ["trainer.accelerator=cpu", "trainer.devices=0"], "trainer.devices=0 must be >= 1"),
    ("quickstart", ["+model.generator.no_such_option=1"], "model.generator: cannot build srlab.nets.rrdbnet.RRDBNet"),
    ("realesrgan", ["data.patch_size=36", "data.val_patch_size=36"],
     "data.patch_size=36 must be a multiple of 8 for UNetDiscriminatorSN"),
    ("realesrnet", ["data/degradation=realesrgan", "data.degradation.jpeg_range=[0,95]"],
     "data.degradation.jpeg_range=[0.0, 95.0] must lie within [1, 100]"),
    ("realesrnet", ["data/degradation=realesrgan", "data.degradation.kernel_prob2=[0.5,0.4,0,0,0,0]"],
     "data.degradation.kernel_prob2=[0.5, 0.4, 0.0, 0.0, 0.0, 0.0] sums to 0.9, not 1"),
    ("quickstart", ["data/degradation=realesrgan", "data.degradation.crop_size=40"],
     "data.degradation.crop_size=40 must be a multiple of data.scale=4 and at least 76"),
    ("quickstart", ["data.degradation=none"], "data.degradation=none means the LQ images are given; use data=paired"),
    ("quickstart", ["data.degradation=jpeg"], "data.degradation='jpeg': no such preset"),
])
def test_invalid_values_are_named(tmp_path, model, extra, message):
    with pytest.raises(ConfigError) as info:
        validate_config(_cfg(tmp_path, model, extra))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_more_gpus_than_the_machine_has(tmp_path):
    gpus = torch.cuda.device_count()
    accelerator = ["trainer.accelerator=gpu", f"trainer.devices={gpus + 1}"]
    expected = (f"trainer.devices={gpus + 1} but this machine has {gpus} CUDA GPU(s)" if gpus
                else "trainer.accelerator=gpu but torch sees no CUDA GPU on this machine")
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        validate_config(_cfg(tmp_path, extra=accelerator))


def test_generator_init_that_is_not_this_generator_fails_before_training(tmp_path):
    disc = tmp_path / "disc.pth"
    torch.save({"params": {f"discriminator.{k}": v for k, v in VGGStyleDiscriminator(num_feat=8).state_dict().items()}},
               disc)
    with pytest.raises(SRLabError, match=r"^model.generator_init: .*disc.pth: holds only discriminator weights"):
        validate_config(_cfg(tmp_path, extra=[f"+model.generator_init={disc}"]))
    wider = tmp_path / "wider.pth"
    torch.save(RRDBNet(num_feat=16, num_block=1, num_grow_ch=4).state_dict(), wider)
    with pytest.raises(SRLabError, match=r"weights do not fit RRDBNet .*num_feat=16") as info:
        validate_config(_cfg(tmp_path, extra=[f"+model.generator_init={wider}"]))
    assert "\n" not in str(info.value)
    good = tmp_path / "good.pth"
    torch.save(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict(), good)
    validate_config(_cfg(tmp_path, extra=[f"+model.generator_init={good}"]))


def test_cli_prints_one_error_line_and_exits_2(tmp_path, monkeypatch, capsys):
    """``python -m srlab.train`` run in-process (Hydra's real main): the user sees one line, no traceback."""
    from srlab.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["srlab.train", "debug=smoke", "data.scale=3", "data.patch_size=48",
                                      "data.val_patch_size=48", "hydra.run.dir=run"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: data.scale=3 is not supported by RRDBNet")


LAUNCH_ENV = ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK",
              "LOCAL_RANK")


def test_several_nodes_need_a_launcher_that_agrees(tmp_path, monkeypatch):
    for name in LAUNCH_ENV:
        monkeypatch.delenv(name, raising=False)
    nodes = ["trainer.accelerator=cpu", "trainer.num_nodes=2"]
    with pytest.raises(ConfigError, match=r"^trainer.num_nodes=2 needs one process per node started by a launcher: "
                                          r"torchrun --nnodes 2"):
        validate_config(_cfg(tmp_path, extra=nodes))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match=r"= 2 processes, but the launcher started WORLD_SIZE=3"):
        validate_config(_cfg(tmp_path, extra=nodes))
    monkeypatch.setenv("WORLD_SIZE", "2")
    validate_config(_cfg(tmp_path, extra=nodes))


def test_a_master_port_in_use_is_named(tmp_path, monkeypatch):
    import socket

    for name in LAUNCH_ENV:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("MASTER_PORT", str(port))
        with pytest.raises(ConfigError, match=f"^MASTER_PORT={port} is in use on this machine"):
            validate_config(_cfg(tmp_path, extra=["trainer.accelerator=cpu", "trainer.devices=2"]))
        # Lightning's ddp launcher re-runs srlab.train for local rank 1 while rank 0 holds the port
        monkeypatch.setenv("LOCAL_RANK", "1")
        validate_config(_cfg(tmp_path, extra=["trainer.accelerator=cpu", "trainer.devices=2"]))
        monkeypatch.delenv("LOCAL_RANK")
    validate_config(_cfg(tmp_path, extra=["trainer.accelerator=cpu", "trainer.devices=2"]))  # free again
