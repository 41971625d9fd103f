"""Shared fixtures: compose the real Hydra config and shrink it for fast in-process runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
# sample photos are materialised here, not in the user's ~/.cache (subprocess tests inherit it)
os.environ.setdefault("SRLAB_DATA_DIR", tempfile.mkdtemp(prefix="srlab-tests-"))

import pytest  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, open_dict, read_write  # noqa: E402

from srlab.config import compose_train  # noqa: E402

# small nets that keep each model's structure; appended to the overrides of model tests
TINY_NETS = {
    "quickstart": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.generator.num_grow_ch=4"],
    "autoencoder": ["model.generator.num_feat=8"],
    "rrdbnet": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.generator.num_grow_ch=4"],
    "vanilla_gan": ["model.generator.num_feat=8", "model.discriminator.num_feat=8"],
    "srgan": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.discriminator.num_feat=8",
              "vgg_weights=random"],
    "esrgan": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.generator.num_grow_ch=4",
               "model.discriminator.num_feat=8", "vgg_weights=random"],
    "srvgg": ["model.generator.num_feat=8", "model.generator.num_conv=2"],
    "srvgg_gan": ["model.generator.num_feat=8", "model.generator.num_conv=2", "model.discriminator.num_feat=8",
                  "vgg_weights=random"],
    "edsr": ["model.generator.num_feat=8", "model.generator.num_block=1"],
    "msrresnet": ["model.generator.num_feat=8", "model.generator.num_block=1"],
    **{name: ["model.generator.embed_dim=8", "model.generator.depths=[2]", "model.generator.num_heads=[2]",
              "model.generator.window_size=4", "model.generator.img_size=8"] + extra
       for name, extra in [("swinir", []), ("swinir_light", []),
                           ("swinir_gan", ["model.discriminator.num_feat=8", "vgg_weights=random"])]},
    "realesrnet": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.generator.num_grow_ch=4"],
    "realesrgan": ["model.generator.num_feat=8", "model.generator.num_block=1", "model.generator.num_grow_ch=4",
                   "model.discriminator.num_feat=8", "vgg_weights=random"],
    "span": ["model.generator.feature_channels=8"],
    "safmn": ["model.generator.dim=8", "model.generator.n_blocks=1"],
    "omnisr": ["model.generator.num_feat=16", "model.generator.res_num=1", "model.generator.window_size=4",
               "data.patch_size=64", "data.val_patch_size=64"],
    "realplksr": ["model.generator.dim=16", "model.generator.n_blocks=1", "model.generator.kernel_size=5"],
    "rcan": ["model.generator.n_resgroups=1", "model.generator.n_resblocks=1", "model.generator.n_feats=16"],
    "hat_s": ["model.generator.embed_dim=24", "model.generator.depths=[2]", "model.generator.num_heads=[2]",
              "model.generator.window_size=4", "model.generator.compress_ratio=3", "model.generator.squeeze_factor=3"],
    "dat_light": ["model.generator.embed_dim=16", "model.generator.depth=[2]", "model.generator.num_heads=[2]",
                  "model.generator.split_size=[2,4]"],
    "atd_light": ["model.generator.embed_dim=8", "model.generator.depths=[1]", "model.generator.num_heads=[2]",
                  "model.generator.window_size=4", "model.generator.category_size=16", "model.generator.num_tokens=8",
                  "model.generator.reducted_dim=2"],
    # RLFN's attention (ESA) pools a 2x-strided map by 7 with stride 3: LR patches of at least 15 px
    "rlfn": ["model.generator.feature_channels=8", "model.generator.num_blocks=1", "model.generator.esa_channels=4",
             "data.patch_size=64", "data.val_patch_size=64"],
    "imdn": ["model.generator.nf=16", "model.generator.num_modules=1"],
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bf16-probe", choices=("machine", "native", "none"), default="machine",
        help="what srlab.device.bf16_unit answers in every test: this machine's answer (default), a CPU/GPU "
             "with native bf16 (native: the paths an AMX Xeon takes, emulated here if need be), or one without")


def set_bf16_probe(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Make the capability probe answer as a machine with native bf16 (AMX CPU, Ampere GPU) or without."""
    from srlab import device

    units = {"cpu": "amx_bf16", "cuda": "Some GPU"}
    monkeypatch.setattr(device, "bf16_unit", lambda dev: units.get(dev.type) if native else None)
    monkeypatch.setattr(device, "_warned", set())  # the emulated-bf16 warning: once per test, not per process


@pytest.fixture(autouse=True)
def _bf16_probe_option(request, monkeypatch):
    """``pytest --bf16-probe=native|none``: the whole run as on a machine with (or without) native bf16."""
    answer = request.config.getoption("--bf16-probe")
    if answer != "machine":
        set_bf16_probe(monkeypatch, answer == "native")


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native_bf16(request, monkeypatch) -> bool:
    """Run the test twice, on "a machine with native bf16" and on "one without", whatever this machine is.

    Where it answers yes on a CPU without native bf16, bf16 runs emulated (about 9x slower than
    fp32): tests that take it keep their nets and images tiny.
    """
    set_bf16_probe(monkeypatch, request.param)
    return request.param


def compose_config(output_dir: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as ``python -m srlab.train`` would, writing into ``output_dir``."""
    cfg = compose_train(overrides, config_name, return_hydra_config=True)
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.paths.output_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    return cfg


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a ``python -m srlab...`` subprocess: this checkout's srlab first on PYTHONPATH.

    The editable install may point at another checkout; the subprocess's cwd is a temp folder.
    """
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])), **extra}


def write_hydra_record(run_dir: Path, task: list[str], mode: str = "MULTIRUN", model: str = "esrgan",
                       params: dict | None = None, launch: list[str] | None = None) -> Path:
    """Write what Hydra leaves of a job for naming it: ``.hydra/hydra.yaml`` (and the sweep's ``multirun.yaml``).

    Args:
        run_dir: the job's folder (``<sweep>/<N>`` in a multirun).
        task: the job's overrides.
        mode: ``RUN`` or ``MULTIRUN``.
        model: the model config chosen.
        params: ``hydra.sweeper.params``.
        launch: the multirun's command-line overrides, written to the parent's ``multirun.yaml``.
    """
    import yaml

    hydra = {"mode": mode, "job": {"name": "train", "num": int(run_dir.name) if run_dir.name.isdigit() else 0},
             "overrides": {"task": task}, "sweeper": {"params": params},
             "runtime": {"choices": {"model": model}, "output_dir": str(run_dir)}}
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": hydra}))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(task))
    if launch is not None:
        (run_dir.parent / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": launch}}}))
    return run_dir


@pytest.fixture
def ckpt(tmp_path):
    """A tiny generator checkpoint at ``<tmp>/w/last.ckpt`` (for the upscale tests)."""
    from tests.infer.test_generator import save_ckpt

    path = tmp_path / "w" / "last.ckpt"
    path.parent.mkdir()
    save_ckpt(path)
    return path


@pytest.fixture
def smoke_cfg(tmp_path):
    """Factory: a composed ``debug=smoke`` config for model NAME with tiny nets."""

    def make(model: str = "quickstart", extra: list[str] | None = None) -> DictConfig:
        overrides = [f"model={model}", "debug=smoke", *TINY_NETS.get(model, []), *(extra or [])]
        return compose_config(tmp_path / "run", overrides)

    return make


@pytest.fixture(autouse=True)
def _restore_logging():
    """In-process Hydra entry points reconfigure logging onto pytest's capture streams, which are
    closed after the test; put the previous handlers back so later tests log to live streams."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def perceptual_hub(tmp_path_factory) -> Path:
    """A torch.hub folder holding seeded random AlexNet and VGG16 backbones (LPIPS, LPIPS-VGG, DISTS)."""
    from tests.metrics.backbones import write_backbone

    hub = tmp_path_factory.mktemp("torch_home") / "hub"
    write_backbone(hub, "lpips")
    write_backbone(hub, "dists")
    return hub


@pytest.fixture
def no_hub(tmp_path, monkeypatch) -> Path:
    """torch.hub's folder is an empty temporary one and no download host answers: nothing is fetched."""
    import torch

    from srlab.metrics import perceptual

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(perceptual, "_unreachable", lambda url: "download.pytorch.org is unreachable (no network in tests)")
    return tmp_path / "torch_home" / "hub"
