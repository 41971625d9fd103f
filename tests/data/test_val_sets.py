"""data.val_sets: whole-image benchmark validation while training, equal to what evaluate reports."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srlab.errors import SRLabError
from srlab.evaluate import main as evaluate_main
from srlab.train import run
from tests.conftest import TINY_NETS, compose_config, subprocess_env

TINY = ["model=quickstart", "debug=smoke", *TINY_NETS["quickstart"], "~callbacks.curves"]
NAMES = {"psnr_rgb": "psnr", "ssim_rgb": "ssim", "psnr_y": "psnr_y", "ssim_y": "ssim_y"}


def make_benchmark(root: Path, sizes=((48, 40), (36, 44), (41, 50))) -> Path:
    """A tiny benchmark folder ``root/HR`` of smooth photos-like images (one not a multiple of 4)."""
    (root / "HR").mkdir(parents=True)
    for i, (w, h) in enumerate(sizes):
        small = np.random.default_rng(i).integers(0, 256, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(root / "HR" / f"img{i}.png")
    return root


def val_sets(*entries: str) -> str:
    return f"data.val_sets=[{','.join(entries)}]"


def evaluate_rows(tmp_path: Path, ckpt: Path, bench: Path, *extra: str) -> dict[str, dict]:
    out = tmp_path / "eval"
    evaluate_main([f"weights={ckpt}", f"benchmarks=[{bench}]", f"out={out}", "lpips=false", "figures.count=0",
                   "labels=[model]", *extra])
    with open(out / "results.csv", newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def last_values(metrics: pd.DataFrame, prefix: str) -> dict[str, float]:
    return {m: float(metrics[f"{prefix}{NAMES[m]}"].dropna().iloc[-1]) for m in NAMES}


def test_logged_benchmark_scores_equal_evaluate_on_the_same_checkpoint(tmp_path):
    bench = make_benchmark(tmp_path / "Tiny")
    cfg = compose_config(tmp_path / "run", [
        *TINY, "trainer.max_epochs=2", "trainer.limit_val_batches=1.0", "model.ema_decay=0.5",
        val_sets(f"{{name: Tiny, dir: '{bench}', resize: matlab}}"), "monitor=val/Tiny/psnr_y"])
    run(cfg)
    out = Path(cfg.paths.output_dir)
    metrics = pd.read_csv(out / "csv" / "metrics.csv")
    assert metrics["val/Tiny/psnr_y"].notna().sum() == 2 and metrics["val/psnr"].notna().sum() == 2  # crops too
    assert metrics["val/Tiny/psnr_y_bicubic"].notna().sum() == 1  # measured and logged once
    rows = evaluate_rows(tmp_path, out / "checkpoints" / "last.ckpt", bench, "resize=matlab")
    for metric, value in last_values(metrics, "val/Tiny/").items():
        assert value == pytest.approx(float(rows["model"][metric]), abs=1e-3 if "psnr" in metric else 1e-5), metric
    bicubic = {m: float(metrics[f"val/Tiny/{NAMES[m]}_bicubic"].dropna().iloc[0]) for m in NAMES}
    assert bicubic["psnr_y"] == pytest.approx(float(rows["bicubic (matlab)"]["psnr_y"]), abs=1e-3)
    assert bicubic["psnr_y"] != pytest.approx(last_values(metrics, "val/Tiny/")["psnr_y"], abs=1e-6)
    # the best checkpoint is chosen and named by the monitored benchmark metric; one grid per set
    (best,) = (out / "checkpoints").glob("best-*.ckpt")
    assert f"{metrics['val/Tiny/psnr_y'].dropna().max():.2f}" in best.name
    assert sorted(p.name for p in (out / "images" / "Tiny").glob("*.png")) == ["val_epoch000.png", "val_epoch001.png"]


def test_benchmarks_alone_without_held_out_crops(tmp_path):
    bench = make_benchmark(tmp_path / "B")
    cfg = compose_config(tmp_path / "run", [*TINY, "trainer.limit_val_batches=1.0", "data.val_fraction=0",
                                            val_sets(f"{{name: B, dir: '{bench}'}}"), "monitor=val/B/ssim_y"])
    run(cfg)
    metrics = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")
    assert "val/psnr" not in metrics and metrics["val/B/ssim_y"].notna().any()
    assert list((Path(cfg.paths.output_dir) / "checkpoints").glob("best-*.ckpt"))


@pytest.mark.parametrize("case, expect", [
    ("missing", r"data.val_sets\[1\] \(Gone\).dir: .*Gone does not exist"),
    ("empty", r"data.val_sets\[1\] \(Empty\).dir: .*Empty holds no images"),
    ("small", r"data.val_sets\[1\] \(Small\): img0.png is 16x16, smaller than 20 px"),
    ("broken", r"data.val_sets\[1\] \(Broken\): .*img1.png: empty file"),
    ("no_dir", r"data.val_sets\[1\]: give a mapping with name and dir"),
    ("same_name", r"data.val_sets\[1\].name=Ok: two val_sets share this name"),
    ("bad_resize", r"data.val_sets\[1\] \(R\).resize=cv2: use pil or matlab"),
    ("monitor", r"monitor=val/Set6/psnr_y: no such validation metric in this run; it logs val/psnr, .*val/Ok/psnr_y"),
])
def test_bad_val_sets_stop_before_training_naming_the_entry(tmp_path, case, expect):
    ok = f"{{name: Ok, dir: '{make_benchmark(tmp_path / 'Ok')}'}}"
    second = {
        "missing": f"{{name: Gone, dir: '{tmp_path / 'Gone'}'}}",
        "empty": f"{{name: Empty, dir: '{(tmp_path / 'Empty').mkdir() or tmp_path / 'Empty'}'}}",
        "small": f"{{name: Small, dir: '{make_benchmark(tmp_path / 'Small', sizes=((16, 16),))}'}}",
        "broken": f"{{name: Broken, dir: '{make_benchmark(tmp_path / 'Broken', sizes=((32, 32), (32, 32)))}'}}",
        "no_dir": "{name: Nowhere}",
        "same_name": ok,
        "bad_resize": f"{{name: R, dir: '{tmp_path / 'Ok'}', resize: cv2}}",
        "monitor": ok.replace("Ok,", "Ok2,"),
    }[case]
    if case == "broken":
        (tmp_path / "Broken" / "HR" / "img1.png").write_bytes(b"")
    extra = ["monitor=val/Set6/psnr_y"] if case == "monitor" else []
    cfg = compose_config(tmp_path / "run", [*TINY, val_sets(ok, second), *extra])
    with pytest.raises(SRLabError, match=expect) as info:
        run(cfg)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_perceptual_metrics_logged_per_set_equal_evaluate(tmp_path, perceptual_hub, no_hub):
    bench = make_benchmark(tmp_path / "Tiny", sizes=((48, 40), (44, 48)))  # AlexNet takes >= 31 px after the crop
    cfg = compose_config(tmp_path / "run", [
        *TINY, "trainer.max_epochs=2", "trainer.limit_val_batches=1.0", "data.val_fraction=0",
        val_sets(f"{{name: Tiny, dir: '{bench}', metrics: [psnr, ssim, lpips], hub_dir: '{perceptual_hub}'}}"),
        "monitor=val/Tiny/lpips", "callbacks.model_checkpoint.mode=min", "callbacks.early_stopping.mode=min"])
    run(cfg)
    out = Path(cfg.paths.output_dir)
    metrics = pd.read_csv(out / "csv" / "metrics.csv")
    assert metrics["val/Tiny/lpips"].notna().sum() == 2 and metrics["val/Tiny/lpips_bicubic"].notna().sum() == 1
    rows = evaluate_rows(tmp_path, out / "checkpoints" / "last.ckpt", bench, "lpips=auto", "metrics=[psnr,ssim,lpips]",
                         f"hub_dir={perceptual_hub}")
    assert float(metrics["val/Tiny/lpips"].dropna().iloc[-1]) == pytest.approx(float(rows["model"]["lpips"]), rel=1e-5)
    bicubic = float(metrics["val/Tiny/lpips_bicubic"].dropna().iloc[0])
    assert bicubic == pytest.approx(float(rows["bicubic (pil)"]["lpips"]), rel=1e-5) and bicubic > 0
    # the best checkpoint is the lowest LPIPS (mode=min), named by it
    (best,) = (out / "checkpoints").glob("best-*.ckpt")
    assert f"{metrics['val/Tiny/lpips'].dropna().min():.2f}" in best.name


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case, expect", [
    ("offline", r"data.val_sets\[0\] \(B\).metrics: dists needs vgg16-397923af.pth: place it in .*/checkpoints/ "
                r"\(from https://download.pytorch.org/models/vgg16-397923af.pth\); download.pytorch.org is unreachable"),
    ("unknown", r"data.val_sets\[0\].metrics: unknown metric 'fid'"),
    ("small", r"data.val_sets\[0\] \(B\): img0.png is 36x44, smaller than 40 px, the least a whole-image "
              r"PSNR/SSIM/LPIPS needs"),
    ("mode", r"monitor=val/B/lpips is lower-is-better: set callbacks.model_checkpoint.mode=min "
             r"callbacks.early_stopping.mode=min"),
])
def test_perceptual_val_sets_stop_before_training_in_one_line(tmp_path, perceptual_hub, no_hub, case, expect):
    bench = make_benchmark(tmp_path / "B", sizes=((36, 44),) if case == "small" else ((48, 40),))
    metrics = {"offline": "[dists]", "unknown": "[fid]"}.get(case, "[lpips]")
    hub = "" if case == "offline" else f", hub_dir: '{perceptual_hub}'"
    extra = ["monitor=val/B/lpips"] if case == "mode" else []
    cfg = compose_config(tmp_path / "run", [*TINY, val_sets(f"{{name: B, dir: '{bench}', metrics: {metrics}{hub}}}"), *extra])
    start = time.perf_counter()
    with pytest.raises(SRLabError, match=expect) as info:
        run(cfg)
    assert time.perf_counter() - start < 5 or case != "offline"
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_ddp_two_processes_shard_and_reduce_like_evaluate(tmp_path):
    """`trainer.devices=2` on CPU (gloo): 3 images over 2 ranks (2 + 1, none repeated) give evaluate's means."""
    bench = make_benchmark(tmp_path / "Tiny")
    cmd = [sys.executable, "-m", "srlab.train", *TINY, "trainer.accelerator=cpu", "trainer.devices=2",
           "trainer.limit_val_batches=1.0", "model.ema_decay=0.5", "data.val_fraction=0",
           val_sets(f"{{name: Tiny, dir: '{bench}'}}"), "monitor=val/Tiny/psnr_y", "hydra.run.dir=run"]
    result = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    metrics = pd.read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    rows = evaluate_rows(tmp_path, tmp_path / "run" / "checkpoints" / "last.ckpt", bench)
    for metric, value in last_values(metrics, "val/Tiny/").items():
        assert value == pytest.approx(float(rows["model"][metric]), abs=1e-3 if "psnr" in metric else 1e-5), metric
