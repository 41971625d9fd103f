"""A non-editable install carries its Hydra configs and shipped models: build the wheel, install it, use it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_installed_wheel_runs_the_smoke_training_from_another_folder(tmp_path, monkeypatch):
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    src = tmp_path / "src"
    for name in ("srlab", "conf"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    # the checkout's shipped models, and a tiny one added to the copy's zoo as `srlab.export --to-zoo` writes it
    from srlab import zoo
    from srlab.export import main as export_main
    from tests.test_zoo import card, carded_ckpt

    shipped, default = zoo.names(), zoo.default_name()
    monkeypatch.setattr(zoo, "ZOO_DIR", src / "srlab" / "zoo")
    assert export_main([str(carded_ckpt(tmp_path / "m.ckpt", card("m", 0))), "--to-zoo", "tiny_x4"]) == 0
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    wheel = next((tmp_path / "dist").glob("srlab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"srlab/conf/train.yaml", "srlab/conf/model/esrgan.yaml", "srlab/conf/debug/smoke.yaml"} <= names
    assert not any(n.startswith("conf/") for n in names)  # nothing lands in site-packages/conf
    assert {"srlab/zoo/tiny_x4.safetensors", "srlab/zoo/tiny_x4.card.json", "srlab/zoo/default.txt"} <= names
    assert {f"srlab/zoo/{n}{suffix}" for n in shipped for suffix in (".safetensors", ".card.json")} <= names

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, text=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "NO_ALBUMENTATIONS_UPDATE": "1"}
    where = subprocess.run([sys.executable, "-c", "import srlab.config as c; print(c.__file__); print(c.CONFIG_DIR)"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert where == [str(site / "srlab" / "config.py"), str(site / "srlab" / "conf")]
    smoke = subprocess.run([sys.executable, "-m", "srlab.train", "debug=smoke", "hydra.run.dir=run"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert (elsewhere / "run" / "checkpoints" / "last.ckpt").is_file()
    listed = subprocess.run([sys.executable, "-m", "srlab.upscale", "--list-models"], cwd=elsewhere, env=env,
                            check=True, capture_output=True, text=True).stdout
    assert "  tiny_x4: m x4" in listed
    assert default is None or f"  {default} (default): " in listed
