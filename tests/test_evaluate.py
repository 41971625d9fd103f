"""The evaluate CLI in-process on tiny made-up benchmarks: tables, files, layouts, errors."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.resize import resize_uint8
from srlab.evaluate import main
from srlab.metrics import psnr
from srlab.device import cpu_name
from srlab.infer.efficiency import count_macs
from tests.infer.test_generator import save_ckpt, save_evil, tiny_net


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.fixture
def bench(tmp_path):
    hr = tmp_path / "Tiny" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(smooth_image(50, 42, 0)).save(hr / "a.png")  # not a multiple of 4: modcropped
    Image.fromarray(smooth_image(48, 48, 1)[..., 0], "L").save(hr / "gray.png")  # converted to RGB
    return tmp_path / "Tiny"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bicubic_only(tmp_path, bench, capsys):
    out = tmp_path / "out"
    main([f"benchmarks=[{bench}]", f"out={out}", "lpips=false"])
    rows = read_csv(out / "results.csv")
    assert [r["method"] for r in rows] == ["bicubic (pil)"] and rows[0]["images"] == "2"
    assert list(rows[0]) == ["method", "benchmark", "images", "psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"]
    assert all(math.isfinite(float(rows[0][k])) for k in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"))
    # the row is BasicSR's protocol: modcrop, Pillow bicubic down and up, crop 4, mean over images
    hr = np.asarray(Image.open(bench / "HR" / "a.png"))[:48, :40]
    sr = resize_uint8(resize_uint8(hr, (12, 10)), (48, 40))
    per = read_csv(out / "per_image.csv")
    assert float(per[0]["psnr_y"]) == pytest.approx(psnr(sr, hr, 4, y_channel=True))
    assert json.loads((out / "results.json").read_text())["results"][0]["benchmark"] == "Tiny"
    assert "| bicubic (pil) |" in capsys.readouterr().out and (out / "results.md").is_file()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["Tiny_a.png", "Tiny_gray.png"]


def test_models_and_matlab_resize(tmp_path, bench, native_bf16):
    save_ckpt(tmp_path / "last.ckpt")
    out = tmp_path / "matlab"
    weights = f"weights=[{tmp_path / 'last.ckpt'},{tmp_path / 'last.ckpt'}]"
    main([f"benchmarks=[{bench / 'HR'}]", weights, "labels=[one,two]", f"out={out}", "lpips=false", "resize=matlab",
          "precision=auto"])
    rows = read_csv(out / "results.csv")
    assert [r["method"] for r in rows] == ["bicubic (matlab)", "one", "two"] and rows[0]["benchmark"] == "Tiny"
    assert rows[1]["psnr_y"] == rows[2]["psnr_y"] and math.isfinite(float(rows[1]["psnr_y"]))
    # the precision auto resolved to is reported in both the table's protocol line and results.json
    used = json.loads((out / "results.json").read_text())["precision"]
    assert used.split()[0] == ("bf16" if native_bf16 else "fp32") and "(auto: " in used
    assert f"Generators ran in {used}." in (out / "results.md").read_text()
    assert (out / "figures" / "Tiny_a.png").is_file()


def test_cost_columns_beside_the_scores(tmp_path, bench, capsys):
    save_ckpt(tmp_path / "last.ckpt")
    out = tmp_path / "cost"
    main([f"benchmarks=[{bench}]", f"weights={tmp_path / 'last.ckpt'}", "labels=[tiny]", f"out={out}", "lpips=false",
          "figures.count=0"])
    macs = count_macs(tiny_net())[0]
    rows = read_csv(out / "results.csv")
    assert list(rows[0])[-3:] == ["params", "macs_256", "ms_per_mp"]
    assert [r["params"] for r in rows] == ["", str(sum(p.numel() for p in tiny_net().parameters()))]
    assert rows[1]["macs_256"] == str(macs) and float(rows[1]["ms_per_mp"]) > 0 and rows[0]["ms_per_mp"] == ""
    report = json.loads((out / "results.json").read_text())
    assert report["results"][1]["macs_256"] == macs and report["efficiency"]["tiny"]["cpu"] == cpu_name()
    assert report["efficiency"]["tiny"]["ms_per_mp"].keys() == {"fp32"}  # the precision it ran in
    table = capsys.readouterr().out
    assert "| method | PSNR RGB | SSIM RGB | PSNR Y | SSIM Y | params | MACs (256² LR) | ms/MP |" in table  # lpips=false
    assert f"| 0.01M | {macs / 1e9:.2f}G | {float(rows[1]['ms_per_mp']):.0f} |" in table
    assert "| bicubic (pil) |" in table and " | — | — | — |" in table
    assert "Cost: params; MACs of one forward on a 256x256 LR input" in table and f"on {cpu_name()}, " in table
    # speed=false: params and MACs only, and the table says so
    main([f"benchmarks=[{bench}]", f"weights={tmp_path / 'last.ckpt'}", f"out={tmp_path / 'fast'}", "lpips=false",
          "figures.count=0", "speed=false"])
    assert read_csv(tmp_path / "fast" / "results.csv")[1]["ms_per_mp"] == ""
    assert "ms/MP not measured (speed=false)" in (tmp_path / "fast" / "results.md").read_text()


def test_blur_degradation(tmp_path, bench):
    out = tmp_path / "blur"
    main([f"benchmarks=[{bench}]", f"out={out}", "lpips=false", "degradation=blur", "figures.count=0"])
    blur = float(read_csv(out / "results.csv")[0]["psnr_y"])
    main([f"benchmarks=[{bench}]", f"out={tmp_path / 'plain'}", "lpips=false", "figures.count=0"])
    assert blur < float(read_csv(tmp_path / "plain" / "results.csv")[0]["psnr_y"])
    assert not (out / "figures").exists()
    assert "Gaussian blur radius 1.5" in (out / "results.md").read_text()


def test_published_weights_with_model_name(tmp_path, bench, native_bf16):
    from srlab.nets.rrdbnet import RRDBNet

    torch.save({"params_ema": RRDBNet(num_feat=32, num_block=2, num_grow_ch=16).state_dict()}, tmp_path / "pub.pth")
    out = tmp_path / "out"
    main([f"benchmarks=[{bench}]", f"weights={tmp_path / 'pub.pth'}", "model=quickstart", f"out={out}", "lpips=false",
          "figures.count=0"])
    assert [r["method"] for r in read_csv(out / "results.csv")] == ["bicubic (pil)", "pub"]
    # evaluate's default is fp32 on every machine, so benchmark rows compare across machines
    assert json.loads((out / "results.json").read_text())["precision"] == "fp32 (set explicitly)"


def test_published_weights_detected_without_model_name(tmp_path, bench):
    from srlab.nets.edsr import EDSR

    torch.save({"params": EDSR(num_feat=8, num_block=2, upscale=2).state_dict()}, tmp_path / "edsr_x2.pth")
    out = tmp_path / "out"
    main([f"benchmarks=[{bench}]", f"weights={tmp_path / 'edsr_x2.pth'}", "scale=2", f"out={out}", "lpips=false",
          "figures.count=0"])  # fmt: skip
    assert [r["method"] for r in read_csv(out / "results.csv")] == ["bicubic (pil)", "edsr_x2"]


def test_paired_layout_uses_lq_files(tmp_path):
    root = tmp_path / "Pairs"
    (root / "HR").mkdir(parents=True)
    (root / "LQ").mkdir()
    hr = smooth_image(32, 32, 3)
    lq = np.full((8, 8, 3), 128, np.uint8)  # deliberately unrelated to HR
    Image.fromarray(hr).save(root / "HR" / "img.png")
    Image.fromarray(lq).save(root / "LQ" / "imgx4.png")
    main([f"benchmarks=[{root}]", f"out={tmp_path / 'out'}", "lpips=false", "figures.count=0"])
    row = read_csv(tmp_path / "out" / "results.csv")[0]
    assert float(row["psnr_rgb"]) == pytest.approx(psnr(np.full_like(hr, 128), hr, 4), abs=1e-3)


@pytest.mark.timeout(60)
def test_perceptual_columns_offline_name_the_file_to_place(tmp_path, bench, no_hub):
    main([f"benchmarks=[{bench}]", f"out={tmp_path / 'out'}", "figures.count=0", "metrics=[psnr,ssim,lpips,dists]"])
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| method | PSNR RGB | SSIM RGB | PSNR Y | SSIM Y | LPIPS ↓ | DISTS ↓ |" in text
    assert " | n/a | n/a |" in text
    assert (f"LPIPS: n/a (lpips needs alexnet-owt-7be5be79.pth: place it in {no_hub / 'checkpoints'}/ (from "
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth); download.pytorch.org is unreachable") in text
    assert "DISTS: n/a (dists needs vgg16-397923af.pth: place it in" in text
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["perceptual"]["lpips"].startswith("lpips needs alexnet-owt-7be5be79.pth")
    assert "lpips" not in read_csv(tmp_path / "out" / "results.csv")[0]


def _perceptual_run(tmp_path, bench, hub, names: list[str]) -> tuple[dict, list[dict]]:
    from srlab.metrics import PerceptualMetric

    out = tmp_path / "out"
    main([f"benchmarks=[{bench}]", f"out={out}", "figures.count=0", f"metrics=[psnr,ssim,{','.join(names)}]",
          f"hub_dir={hub}"])
    row, per = read_csv(out / "results.csv")[0], read_csv(out / "per_image.csv")
    hr = np.asarray(Image.open(bench / "HR" / "a.png"))[:48, :40]
    sr = resize_uint8(resize_uint8(hr, (12, 10)), (48, 40))
    for name in names:  # each image's value is the metric on that image pair; the table their mean
        assert float(per[0][name]) == pytest.approx(PerceptualMetric(name, hub)(sr, hr, 4), rel=1e-5)
        assert float(row[name]) == pytest.approx(np.mean([float(r[name]) for r in per]), rel=1e-6)
        assert float(row[name]) > 0
    assert json.loads((out / "results.json").read_text())["perceptual"] == {n: "ok" for n in names}
    return row, per


def test_perceptual_columns_with_weights(tmp_path, bench, perceptual_hub, no_hub):
    _perceptual_run(tmp_path, bench, perceptual_hub, ["lpips"])
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| SSIM Y | LPIPS ↓ |" in text and "n/a" not in text and "lower is better" in text


@pytest.mark.slow
def test_every_perceptual_metric_with_weights(tmp_path, bench, perceptual_hub, no_hub):
    _perceptual_run(tmp_path, bench, perceptual_hub, ["lpips", "lpips_vgg", "dists"])
    assert "| LPIPS ↓ | LPIPS-VGG ↓ | DISTS ↓ |" in (tmp_path / "out" / "results.md").read_text()


def test_unknown_metric_is_one_line(tmp_path, bench, capsys):
    code, err = exit_code_and_error(capsys, [f"benchmarks=[{bench}]", f"out={tmp_path / 'o'}", "metrics=[psnr,niqe]"])
    assert code == 2 and len(err) == 1 and "metrics: unknown metric 'niqe'; known: psnr, ssim, lpips, lpips_vgg, dists" in err[0]


def exit_code_and_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    return exc.value.code, err


def test_errors_exit_2_with_one_line(tmp_path, bench, capsys):
    out = f"out={tmp_path / 'out'}"
    code, err = exit_code_and_error(capsys, [f"benchmarks=[{tmp_path / 'nope'}]", out])
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]
    (tmp_path / "empty").mkdir()
    code, err = exit_code_and_error(capsys, [f"benchmarks=[{tmp_path / 'empty'}]", out])
    assert code == 2 and "holds no images" in err[0]
    (tmp_path / "bad.pth").write_bytes(b"junk")
    code, err = exit_code_and_error(capsys, [f"benchmarks=[{bench}]", f"weights={tmp_path / 'bad.pth'}", out])
    assert code == 2 and "bad.pth" in err[0]
    code, err = exit_code_and_error(capsys, [f"benchmarks=[{bench}]", "resize=cv2", out])
    assert code == 2 and err == ["error: resize=cv2: use pil or matlab"]


def test_unsafe_weights_refused(tmp_path, bench, capsys):
    marker = tmp_path / "pwned"
    save_evil(tmp_path / "evil.ckpt", marker)
    argv = [f"benchmarks=[{bench}]", f"weights={tmp_path / 'evil.ckpt'}", f"out={tmp_path / 'o'}"]
    code, err = exit_code_and_error(capsys, argv)
    assert code == 2 and "refused" in err[0]
    assert not marker.exists()


def test_a_runs_checkpoint_is_labelled_by_the_run_name(tmp_path):
    from srlab.evaluate import method_labels
    from tests.conftest import write_hydra_record

    sweep = tmp_path / "multirun" / "2026-01-02" / "10-20-30"
    write_hydra_record(sweep / "0", ["model=srgan", "seed=1"], launch=["model=srgan,esrgan", "seed=1"])
    weights = [str(sweep / "0" / "checkpoints" / "last.ckpt"), str(sweep / "0" / "checkpoints" / "best.ckpt"),
               str(tmp_path / "other" / "checkpoints" / "last.ckpt"), str(tmp_path / "RealESRGAN_x4plus.pth")]
    # the name W&B and srlab.compare give that run; a folder without Hydra record keeps the file's name
    assert method_labels(weights, []) == [
        "model=srgan (last)", "model=srgan (best)", "checkpoints/last.ckpt", "RealESRGAN_x4plus"]
