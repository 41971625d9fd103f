"""Export a Lightning-style checkpoint and load it back everywhere: identical outputs."""

from __future__ import annotations

import json

import numpy as np
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file

from srlab.export import main
from srlab.infer import load_generator, upscale_array
from tests.infer.test_generator import NET_CONFIG, rand_image, save_ckpt, save_evil


def test_round_trip_identical_outputs(tmp_path):
    save_ckpt(tmp_path / "last.ckpt")
    assert main([str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "exp")]) == 0
    exp = tmp_path / "exp"
    img = rand_image(11, 9)
    reference = upscale_array(load_generator(tmp_path / "last.ckpt"), img)
    for name in ("generator.safetensors", "generator.pth"):
        assert np.array_equal(upscale_array(load_generator(exp / name), img), reference), name
    # the json alone rebuilds the net (other tools), and the .pth has BasicSR's keys, loadable weights_only
    net = instantiate(json.loads((exp / "generator.json").read_text()))
    net.load_state_dict(load_file(str(exp / "generator.safetensors")))
    pth = torch.load(exp / "generator.pth", weights_only=True)
    assert set(pth) >= {"params", "params_ema"}
    net.load_state_dict(pth["params_ema"])
    # the safetensors file alone (no json beside it) still carries its config
    (exp / "generator.json").unlink()
    assert load_generator(exp / "generator.safetensors").net_config == NET_CONFIG


def test_without_ema_exports_trained_weights(tmp_path):
    net, _ = save_ckpt(tmp_path / "a.ckpt", ema=False)
    assert main([str(tmp_path / "a.ckpt"), "-o", str(tmp_path / "exp")]) == 0
    sd = load_file(str(tmp_path / "exp" / "generator.safetensors"))
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())
    assert "params_ema" not in torch.load(tmp_path / "exp" / "generator.pth", weights_only=True)


def test_errors_are_one_line(tmp_path, capsys):
    torch.save({"state_dict": {"generator.w": torch.zeros(1)}, "hyper_parameters": {}}, tmp_path / "nocfg.ckpt")
    assert main([str(tmp_path / "nocfg.ckpt"), "-o", str(tmp_path / "exp")]) == 2
    assert main([str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown generator layout" in err[0] and "missing.ckpt" in err[1]
    assert not (tmp_path / "exp").exists()


def test_unsafe_pickle_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    save_evil(tmp_path / "evil.ckpt", marker)
    assert main([str(tmp_path / "evil.ckpt"), "-o", str(tmp_path / "exp")]) == 2
    assert not marker.exists()
    assert "refused" in capsys.readouterr().err


def test_a_shipped_model_exports_by_name(tmp_path):
    from srlab.weights import read_card
    from srlab.zoo import default_name, path_of

    name = default_name()
    assert main([name, "-o", str(tmp_path / "exp")]) == 0
    exported, shipped = read_card(tmp_path / "exp" / "generator.safetensors"), read_card(path_of(name))
    assert (exported["name"], exported["generator"]) == (shipped["name"], shipped["generator"])
