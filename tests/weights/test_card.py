"""Model cards: written by training, carried by checkpoints and exports, read back and shown to the user."""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from safetensors import safe_open

from srlab.device import cpu_name
from srlab.infer.efficiency import count_macs
from srlab.weights.card import (
    UNKNOWN,
    benchmark_lines,
    benchmark_rows,
    describe_degradation,
    efficiency_line,
    summary,
)
from srlab.export import main as export_main
from srlab.infer import load_generator
from srlab.weights.run_card import REBUILT, make_card
from srlab.train import run
from srlab.upscale import main as upscale_main
from srlab.weights import read_card
from tests.conftest import TINY_NETS, compose_config
from tests.infer.test_generator import NET_CONFIG, rand_image, tiny_net


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quickstart smoke run (tiny net): its checkpoints folder."""
    out = tmp_path_factory.mktemp("card") / "run"
    run(compose_config(out, ["model=quickstart", "debug=smoke", *TINY_NETS["quickstart"]]))
    return out / "checkpoints"


def test_checkpoint_card_says_what_the_run_trained_for(trained):
    best = next(trained.glob("best-*.ckpt"))
    obj = torch.load(best, weights_only=True)
    card = read_card(best)
    assert card["name"] == "quickstart" and card["scale"] == 4
    net = instantiate(obj["hyper_parameters"]["net_config"])
    assert card["generator"]["class"] == "RRDBNet"
    assert card["generator"]["params"] == sum(p.numel() for p in net.parameters())
    assert card["degradation"]["settings"]["blur_radius"] == 1.5
    assert card["data"] == {"source": "samples", "folder": "samples", "train_images": 6, "val_images": 2, "images": 8}
    # the best value is the one the best checkpoint was chosen by
    [state] = [s for k, s in obj["callbacks"].items() if k.startswith("AtomicCheckpoint") and s.get("monitor")]
    assert card["validation"]["monitor"] == "val/psnr"
    assert card["validation"]["best"] == pytest.approx(float(state["best_model_score"]), abs=1e-4)
    assert card["trained"]["batches"] == 2 and card["srlab"]["version"] == version("srlab")
    if (Path(__file__).resolve().parents[2] / ".git").exists():  # run from a checkout: its commit is known
        assert card["srlab"]["commit"]
    # never a machine path: the data folder by name only
    text = json.dumps(card)
    assert os.environ["SRLAB_DATA_DIR"] not in text and str(trained.parent) not in text
    assert read_card(trained / "last.ckpt")["validation"]["best"] == card["validation"]["best"]
    assert summary(card).startswith("quickstart x4 (RRDBNet, ") and "trained for bicubic + blur 1.5 (report) on " \
        "samples (8 images), best val/psnr " in summary(card)
    # the cost, counted without arithmetic at set-up; the speed is left to the export
    assert card["efficiency"] == {"params": card["generator"]["params"], "macs_256": count_macs(net)[0],
                                  "macs_counted": "meta"}
    assert efficiency_line(card) == ("cost: 14.1k params, 2.6G MACs per 256x256 LR "
                                     "(ms/MP not measured: srlab.export measures it)")


def without_efficiency(card: dict) -> dict:
    return {k: v for k, v in card.items() if k != "efficiency"}


def test_exports_carry_the_card(trained, tmp_path, capsys):
    ckpt = trained / "last.ckpt"
    assert export_main([str(ckpt), "-o", str(tmp_path / "exp")]) == 0
    exp = tmp_path / "exp"
    card = json.loads((exp / "generator.card.json").read_text())
    # the checkpoint's card, its efficiency completed with the CPU speed measured at export
    assert without_efficiency(card) == without_efficiency(read_card(ckpt))
    eff = card["efficiency"]
    counted = read_card(ckpt)["efficiency"]
    assert (eff["params"], eff["macs_256"]) == (counted["params"], counted["macs_256"])
    assert eff["ms_per_mp"]["fp32"] > 0 and eff["cpu"] == cpu_name() and eff["measured"] == "at export"
    with safe_open(str(exp / "generator.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["srlab_card"]) == card
    pth = torch.load(exp / "generator.pth", weights_only=True)
    assert json.loads(pth["srlab"]["card_json"]) == card
    for name in ("generator.safetensors", "generator.pth"):
        assert read_card(exp / name) == card and load_generator(exp / name).card == card
    out = capsys.readouterr().out
    assert f"card: {summary(card)}" in out and f"{efficiency_line(card)}\n" in out and " ms/MP fp32 on " in out


def test_onnx_export_carries_the_card(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from srlab.infer.onnx import OnnxGenerator

    assert export_main([str(trained / "last.ckpt"), "-o", str(tmp_path / "exp"), "--onnx"]) == 0
    card = read_card(tmp_path / "exp" / "generator.safetensors")
    assert OnnxGenerator(tmp_path / "exp" / "generator.onnx").card == card
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a.png")
    onnx = tmp_path / "exp" / "generator.onnx"
    capsys.readouterr()
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(onnx), "-q"]) == 0
    assert f"model {onnx}: {summary(card)}" in capsys.readouterr().out


def test_upscale_prints_the_card_and_warns_about_blur(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("srlab.zoo.ZOO_DIR", tmp_path / "empty_zoo")
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a.png")
    assert export_main([str(trained / "last.ckpt"), "-o", str(tmp_path / "exp")]) == 0
    capsys.readouterr()
    for weights in (trained / "last.ckpt", tmp_path / "exp" / "generator.safetensors"):
        args = [str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(weights), "-q"]
        assert upscale_main(args) == 0
        captured = capsys.readouterr()
        assert f"model {weights}: {summary(read_card(trained / 'last.ckpt'))}" in captured.out.splitlines()
        [warning] = captured.err.strip().splitlines()
        assert warning.startswith("warning:") and "blurred inputs (blur 1.5)" in warning and "over-sharpens" in warning


def test_checkpoint_from_before_cards_gets_one_from_its_run_folder(trained, tmp_path, capsys):
    """A checkpoint saved before srlab wrote cards: export rebuilds the card from <run>/.hydra."""
    run = tmp_path / "old_run"
    (run / "checkpoints").mkdir(parents=True)
    obj = torch.load(trained / "last.ckpt", weights_only=True)
    card = obj["hyper_parameters"].pop("card")
    torch.save(obj, run / "checkpoints" / "last.ckpt")
    assert read_card(run / "checkpoints" / "last.ckpt") is None
    cfg = compose_config(tmp_path / "cfg", ["model=quickstart", "debug=smoke", *TINY_NETS["quickstart"]])
    (run / ".hydra").mkdir()  # what Hydra writes: the job's config, and its own (with the group choices)
    OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), run / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.masked_copy(cfg, ["hydra"]), run / ".hydra" / "hydra.yaml")
    assert export_main([str(run / "checkpoints" / "last.ckpt"), "-o", str(tmp_path / "exp")]) == 0
    rebuilt = read_card(tmp_path / "exp" / "generator.safetensors")
    for key in ("name", "scale", "generator", "degradation", "validation"):
        assert rebuilt[key] == card[key], key
    assert rebuilt["data"]["folder"] == "samples" and rebuilt["written"] == REBUILT
    assert rebuilt["efficiency"]["macs_256"] == card["efficiency"]["macs_256"]  # the export measures it again
    # upscale and evaluate read the old checkpoint itself the same way (no cost: nothing was measured)
    assert load_generator(run / "checkpoints" / "last.ckpt").card == without_efficiency(rebuilt)
    # without the run folder: exported without a card, and said so
    shutil.rmtree(run / ".hydra")
    capsys.readouterr()
    assert export_main([str(run / "checkpoints" / "last.ckpt"), "-o", str(tmp_path / "exp2")]) == 0
    assert f"card: {UNKNOWN}" in capsys.readouterr().out and not (tmp_path / "exp2" / "generator.card.json").exists()
    assert read_card(tmp_path / "exp2" / "generator.pth") is None  # its BasicSR-layout .pth too: upscale says so
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a.png")
    pth = tmp_path / "exp2" / "generator.pth"
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(pth), "-q"]) == 0
    assert f"model {pth}: {UNKNOWN}" in capsys.readouterr().out


def test_basicsr_pth_without_card_says_unknown(tmp_path, capsys):
    torch.save({"params_ema": tiny_net().state_dict()}, tmp_path / "published.pth")
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a.png")
    assert read_card(tmp_path / "published.pth") is None
    (tmp_path / "published.json").write_text(json.dumps(NET_CONFIG))  # its architecture, as a user would give it
    args = [str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(tmp_path / "published.pth"), "-q"]
    assert upscale_main(args) == 0
    captured = capsys.readouterr()
    assert f"model {tmp_path / 'published.pth'}: {UNKNOWN}" in captured.out and "unknown training data" in UNKNOWN
    assert "warning" not in captured.err
    # a card written by hand beside published weights is read
    (tmp_path / "published.card.json").write_text(json.dumps({"scale": 4, "name": "mine"}))
    assert read_card(tmp_path / "published.pth")["name"] == "mine"


def test_paired_data_card_reads_the_prepare_settings(tmp_path):
    root = tmp_path / "machine" / "path" / "pairs_bicubic"
    root.mkdir(parents=True)
    settings = {"scale": 4, "blur_radius": 0.0, "order": "resize_then_blur", "bicubic": "matlab", "hq_scales": [1, 0.5]}
    (root / "prepare_summary.json").write_text(json.dumps({"images_used": 80, "settings": settings}))
    cfg = compose_config(tmp_path / "run", ["data=paired", f"data.root={root}", *TINY_NETS["quickstart"]])
    card = make_card(cfg)
    assert card["data"]["folder"] == "pairs_bicubic" and card["data"]["source_images"] == 80
    assert card["degradation"]["lq"] == "prepared by srlab.prepare"
    assert describe_degradation(card) == "bicubic (matlab), prepared pairs"
    assert "machine" not in json.dumps(card)


@pytest.mark.parametrize(("settings", "text"), [
    ({"blur_radius": 1.5, "order": "resize_then_blur"}, "bicubic + blur 1.5 (report)"),
    ({"kind": "bicubic", "blur_radius": 0, "resize": "matlab"}, "bicubic (matlab)"),
    ({"kind": "bicubic", "blur_radius": 0.8, "order": "blur_then_resize"}, "bicubic + blur 0.8"),
    ({"kind": "realesrgan", "sinc_prob": 0.1, "noise_range": [1, 30], "noise_range2": [1, 25]},
     "real-world degradations (Real-ESRGAN: noise 1-30 then 1-25)"),
    (None, "unknown degradation"),
])
def test_degradation_descriptions(settings, text):
    assert describe_degradation({"degradation": {"settings": settings}}).startswith(text)


@pytest.mark.parametrize(("overrides", "choices", "jpeg"), [
    (["data.degradation=realesrgan"], {}, "30-95"),  # a preset named by value
    (["data/degradation=realesrgan", "data.degradation.jpeg_range=[50,95]"], {"data/degradation": "realesrgan"},
     "50-95 then 30-95"),  # the config group, with a key changed
])
def test_realesrgan_card_carries_its_settings(tmp_path, overrides, choices, jpeg):
    """The card copies every key of the composed degradation (a user's change too) and names the hard ones."""
    card = make_card(compose_config(tmp_path / "run", [*overrides, *TINY_NETS["quickstart"]]), choices=choices)
    deg = card["degradation"]
    assert deg["preset"] == "realesrgan" and deg["settings"]["kind"] == "realesrgan"
    assert deg["settings"]["sinc_prob"] == 0.1 and deg["settings"]["resize_prob2"] == [0.3, 0.4, 0.3]
    assert describe_degradation(card) == ("real-world degradations (Real-ESRGAN: blur sigma 0.2-3 then 0.2-1.5, "
                                          f"noise 1-30 then 1-25, JPEG quality {jpeg}, sharpened targets)")


def test_benchmark_lines_say_how_the_lr_was_made():
    rows = [{"benchmark": "Set5", "resize": "matlab", "degradation": "bicubic", "psnr_y": 30.123, "ssim_y": 0.86,
             "bicubic_psnr_y": 28.42},
            {"benchmark": "Set14", "resize": "pil", "degradation": "blur", "blur_radius": 1.5, "psnr_y": 22.34,
             "ssim_y": 0.6},
            {"benchmark": "Set5", "resize": "pil", "degradation": "realesrgan", "seed": 3, "psnr_y": 24.5,
             "ssim_y": 0.7}]
    assert benchmark_lines({"benchmarks": rows}) == [
        "Set5, LR by matlab bicubic: 30.12 dB / 0.8600 (Y), bicubic 28.42 dB",
        "Set14, LR by pil bicubic + blur 1.5: 22.34 dB / 0.6000 (Y)",
        "Set5, LR by Real-ESRGAN's degradation (seed 3): 24.50 dB / 0.7000 (Y)",
    ]


def test_benchmark_rows_tell_a_model_labelled_bicubic_from_the_bicubic_row(tmp_path):
    """A model may be labelled ``bicubic-trained``: only evaluate's ``bicubic (<resize>)`` row is the baseline."""
    rows = [{"method": "bicubic (pil)", "benchmark": "Set5", "psnr_y": 28.4, "ssim_y": 0.81},
            {"method": "realworld", "benchmark": "Set5", "psnr_y": 26.9, "ssim_y": 0.77},
            {"method": "bicubic-trained", "benchmark": "Set5", "psnr_y": 30.7, "ssim_y": 0.87}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"config": {"resize": "pil", "degradation": "bicubic"}, "results": rows}))
    (row,) = benchmark_rows(path, "realworld")
    assert (row["psnr_y"], row["bicubic_psnr_y"]) == (26.9, 28.4)
    assert benchmark_rows(path, "bicubic-trained")[0]["bicubic_psnr_y"] == 28.4
