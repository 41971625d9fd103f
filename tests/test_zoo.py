"""Shipped models: export --to-zoo, the registry read from the folder, upscale/evaluate by name, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab import zoo
from srlab.infer.efficiency import count_macs
from srlab.weights.card import describe_efficiency
from srlab.evaluate import main as evaluate_main
from srlab.export import main as export_main
from srlab.upscale import main as upscale_main
from tests.test_evaluate import smooth_image
from tests.infer.test_generator import rand_image, save_ckpt, tiny_net


def card(name: str, blur: float) -> dict:
    return {"card_version": 1, "name": name, "scale": 4, "generator": {"class": "RRDBNet", "params": 14083},
            "degradation": {"lq": "made on the fly", "settings": {"kind": "bicubic", "blur_radius": blur}},
            "data": {"source": "hq_folder", "folder": "photos", "images": 3},
            "validation": {"monitor": "val/psnr", "mode": "max", "best": 21.5}}


def carded_ckpt(path: Path, card_: dict | None) -> Path:
    save_ckpt(path)
    obj = torch.load(path, weights_only=True)
    if card_ is not None:
        obj["hyper_parameters"]["card"] = card_
    torch.save(obj, path)
    return path


@pytest.fixture
def shelf(tmp_path, monkeypatch):
    """An empty zoo folder the registry reads instead of srlab/zoo."""
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    return tmp_path / "zoo"


@pytest.fixture
def results(tmp_path):
    """results.json of a real srlab.evaluate run of the bicubic-trained checkpoint on a tiny Set5."""
    hr = tmp_path / "Set5" / "HR"
    hr.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(smooth_image(32, 40, i)).save(hr / f"{i}.png")
    ckpt = carded_ckpt(tmp_path / "sharp.ckpt", card("sharp", 0))
    out = tmp_path / "eval"
    evaluate_main([f"weights={ckpt}", f"benchmarks=[{tmp_path / 'Set5'}]", f"out={out}", "lpips=false",
                   "figures.count=0"])
    return out / "results.json"


def test_to_zoo_then_upscale_and_evaluate_by_name(tmp_path, shelf, results, capsys):
    ckpt = carded_ckpt(tmp_path / "sharp.ckpt", card("sharp", 0))
    about = "conf/experiment/x.yaml at abc1234"
    assert export_main([str(ckpt), "--to-zoo", "sharp_x4", "--benchmarks", str(results), "--default",
                        "--about", about]) == 0
    assert sorted(p.name for p in shelf.iterdir()) == ["default.txt", "sharp_x4.card.json", "sharp_x4.safetensors"]
    row = json.loads(results.read_text())["results"]
    model_row = next(r for r in row if r["method"] == "sharp")
    shipped = json.loads((shelf / "sharp_x4.card.json").read_text())
    assert shipped["benchmarks"][0]["psnr_y"] == model_row["psnr_y"] and shipped["benchmarks"][0]["resize"] == "pil"
    assert shipped["benchmarks"][0]["blur_radius"] == 0  # evaluate's blur_radius key only counts for degradation=blur
    assert shipped["about"] == about
    capsys.readouterr()

    assert upscale_main(["--list-models"]) == 0
    listing = capsys.readouterr().out
    assert "sharp_x4 (default): sharp x4 (RRDBNet" in listing and "trained for bicubic on photos" in listing
    assert f"Set5, LR by pil bicubic: {model_row['psnr_y']:.2f} dB / {model_row['ssim_y']:.4f} (Y), bicubic " in listing
    assert f"about: {about}" in listing
    # its cost, measured by the export on this CPU, under its card line
    assert f"\n      cost: {describe_efficiency(shipped['efficiency'])}\n" in listing
    assert shipped["efficiency"]["macs_256"] == count_macs(tiny_net(1))[0] and " ms/MP fp32" in listing

    # no --weights: the default shipped model, the same pixels as its checkpoint
    Image.fromarray(rand_image(9, 7)).save(tmp_path / "a.png")
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "default"), "-q"]) == 0
    assert "model sharp_x4 (the default shipped model): sharp x4" in capsys.readouterr().out
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "byname"), "--weights", "sharp_x4", "-q"]) == 0
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "ckpt"), "--weights", str(ckpt), "-q"]) == 0
    images = [np.asarray(Image.open(tmp_path / d / "a.png")) for d in ("default", "byname", "ckpt")]
    assert np.array_equal(images[0], images[2]) and np.array_equal(images[1], images[2])

    # evaluate takes the name too, and measures what the checkpoint measured
    capsys.readouterr()
    evaluate_main(["weights=sharp_x4", f"benchmarks=[{tmp_path / 'Set5'}]", f"out={tmp_path / 'e2'}", "lpips=false",
                   "figures.count=0"])
    assert "model sharp_x4: sharp x4" in capsys.readouterr().out
    again = json.loads((tmp_path / "e2" / "results.json").read_text())
    assert next(r for r in again["results"] if r["method"] == "sharp_x4")["psnr_y"] == model_row["psnr_y"]
    assert again["models"]["sharp_x4"]["benchmarks"]

    # shipped again from its own name (to measure its cost anew): the rows and the note stay
    assert export_main(["sharp_x4", "--to-zoo", "sharp_x4"]) == 0
    reshipped = json.loads((shelf / "sharp_x4.card.json").read_text())
    assert reshipped["benchmarks"] == shipped["benchmarks"] and reshipped["about"] == about


def test_blur_model_warning_names_the_shipped_sharp_model(tmp_path, shelf, capsys):
    assert export_main([str(carded_ckpt(tmp_path / "s.ckpt", card("s", 0))), "--to-zoo", "sharp_x4"]) == 0
    assert export_main([str(carded_ckpt(tmp_path / "b.ckpt", card("b", 1.5))), "--to-zoo", "blur_x4"]) == 0
    Image.fromarray(rand_image(6, 6)).save(tmp_path / "a.png")
    capsys.readouterr()
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", "blur_x4", "-q"]) == 0
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert "blurred inputs (blur 1.5)" in warning and "use --weights sharp_x4 (bicubic)" in warning
    # a real-world model ("a_real", first by name) is named for noisy photos, never for sharp ones
    real = card("r", 0) | {"degradation": {"lq": "made on the fly", "settings": {"kind": "realesrgan"}}}
    assert export_main([str(carded_ckpt(tmp_path / "r.ckpt", real)), "--to-zoo", "a_real"]) == 0
    capsys.readouterr()
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", "blur_x4", "-q"]) == 0
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert "for sharp photos use --weights sharp_x4" in warning and "noisy or compressed ones --weights a_real" in warning
    # of two sharp models, the scale's default is named (not the first by name)
    assert export_main([str(carded_ckpt(tmp_path / "s2.ckpt", card("s2", 0))), "--to-zoo", "sharp_x4_v2", "--default"]) == 0
    capsys.readouterr()
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", "blur_x4", "-q"]) == 0
    assert "for sharp photos use --weights sharp_x4_v2" in capsys.readouterr().err
    (shelf / "default.txt").unlink()  # several models, no default.txt: upscale without --weights names them
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-q"]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("error: no weights given") and "a_real, blur_x4, sharp_x4, sharp_x4_v2" in err


def test_unknown_name_and_empty_zoo_are_one_line(tmp_path, shelf, capsys):
    Image.fromarray(rand_image(6, 6)).save(tmp_path / "a.png")
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-q"]) == 2
    assert upscale_main(["--list-models"]) == 0
    out, err = capsys.readouterr()
    assert "ships no models" in err and len(err.strip().splitlines()) == 1 and "no shipped models" in out
    assert export_main([str(carded_ckpt(tmp_path / "s.ckpt", card("s", 0))), "--to-zoo", "sharp_x4"]) == 0
    capsys.readouterr()
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", "nosuch", "-q"]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err == "error: weights=nosuch: no such file and no shipped model of that name (shipped models: sharp_x4)"
    with pytest.raises(SystemExit) as exc:
        evaluate_main(["weights=nosuch", f"benchmarks=[{tmp_path}]", f"out={tmp_path / 'e'}"])
    assert exc.value.code == 2 and "shipped models: sharp_x4" in capsys.readouterr().err


def test_to_zoo_refuses_cardless_checkpoints_and_bad_names(tmp_path, shelf, capsys):
    bare = carded_ckpt(tmp_path / "old.ckpt", None)
    assert export_main([str(bare), "--to-zoo", "old"]) == 2
    assert export_main([str(bare), "--to-zoo", "../escape"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no model card" in err[0] and "--to-zoo '../escape'" in err[1]
    assert not shelf.exists() or not any(shelf.iterdir())


def test_a_card_from_before_costs_were_measured_is_listed_as_such(tmp_path, shelf, capsys, monkeypatch):
    monkeypatch.setattr("srlab.export.measured_card", lambda net, card: card)  # as export wrote cards before
    assert export_main([str(carded_ckpt(tmp_path / "s.ckpt", card("s", 0))), "--to-zoo", "old_x4"]) == 0
    capsys.readouterr()
    assert upscale_main(["--list-models"]) == 0
    assert "      cost: not recorded (a card written before srlab measured it; srlab.export adds it)" in \
        capsys.readouterr().out


def test_every_shipped_model_lists_its_cost():
    lines = zoo.listing()
    for name in zoo.names():
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  {name}"))
        assert lines[at + 1].startswith("      cost: ") and " MACs per 256x256 LR, " in lines[at + 1], lines[at + 1]
        assert " ms/MP fp32 on " in lines[at + 1]


def _srvgg_ckpt(path: Path, scale: int) -> Path:
    """A carded checkpoint of a tiny SRVGGNetCompact at ``scale``, as srlab.train writes one."""
    from srlab.nets.srvgg import SRVGGNetCompact

    net_config = {"_target_": "srlab.nets.srvgg.SRVGGNetCompact", "num_feat": 4, "num_conv": 1, "upscale": scale}
    torch.manual_seed(scale)
    net = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=scale)
    sd = {f"generator.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": sd, "hyper_parameters": {"net_config": net_config, "scale": scale,
                                                       "card": card(f"m{scale}", 0) | {"scale": scale}}}, path)
    return path


def test_one_default_per_scale_and_upscale_scale_picks_it(tmp_path, shelf, capsys):
    for scale in (4, 2):
        assert export_main([str(_srvgg_ckpt(tmp_path / f"x{scale}.ckpt", scale)), "--to-zoo", f"m_x{scale}",
                            "--default"]) == 0
    # the x2 default joined the x4 one; the x4 stays first: upscale's default without --scale
    assert (shelf / "default.txt").read_text().split() == ["m_x4", "m_x2"]
    assert zoo.default_name() == "m_x4" and zoo.default_name(2) == "m_x2" and zoo.default_name(3) is None
    capsys.readouterr()
    assert upscale_main(["--list-models"]) == 0
    listing = capsys.readouterr().out
    assert "  m_x4 (default): m4 x4" in listing and "  m_x2 (default for --scale 2): m2 x2" in listing

    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "--scale", "2", "-q"]) == 0
    assert "model m_x2: m2 x2" in capsys.readouterr().out
    assert Image.open(tmp_path / "o2" / "a.png").size == (10, 12)
    # --outscale still resizes after the net
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o3"), "--scale", "2", "--outscale", "3",
                         "-q"]) == 0
    assert Image.open(tmp_path / "o3" / "a.png").size == (15, 18)
    capsys.readouterr()
    # no x3 model shipped; a x4 model asked to work at x2: one line each
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--scale", "3", "-q"]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("error: no shipped x3 model (x2: m_x2, x4: m_x4)")
    assert upscale_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", "m_x4", "--scale", "2",
                         "-q"]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert "m_x4 is a x4 model, not x2" in err and "--outscale" in err
    # shipped again as the x2 default: still one line per scale
    assert export_main([str(_srvgg_ckpt(tmp_path / "y2.ckpt", 2)), "--to-zoo", "n_x2", "--default"]) == 0
    assert (shelf / "default.txt").read_text().split() == ["m_x4", "n_x2"]
