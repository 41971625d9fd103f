"""ONNX export with its parity check, and the onnxruntime backend of srlab.upscale (deploy extra)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.images import read_image
from srlab.export import main as export_main
from srlab.infer import load_generator
from srlab.upscale import main as upscale_main
from tests.infer.test_generator import rand_image, save_ckpt

pytest.importorskip("onnxruntime", reason="the deploy extra (make install) is not installed")

# largest difference (/255) between a test net (tests.infer.test_generator.tiny_net: 1 block, N(0, 0.15) weights, far
# rougher than a trained net) in bf16 and in fp32 on these images: 4-9 over 2 nets x 4 images on an AVX2 EPYC
# (bf16 emulated), 8 on an AMX Xeon (#24); trained nets stay far closer (experiments/benchmarks/README.md)
BF16_VS_FP32 = 12


def _export(tmp_path):
    save_ckpt(tmp_path / "last.ckpt")
    assert export_main([str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "exp"), "--onnx"]) == 0
    return tmp_path / "exp"


@pytest.fixture
def exported(tmp_path):
    """The folder of an srlab checkpoint exported with --onnx."""
    return _export(tmp_path)


def test_export_onnx_prints_parity_and_matches_torch(tmp_path, capsys):
    exported = _export(tmp_path)
    out = capsys.readouterr().out
    assert "onnx parity (fp32 graph vs torch fp32) on scikit-image's astronaut.png (128x128 crop): max abs diff" in out
    diff = float(out.split("max abs diff ")[1].split(",")[0])
    assert 0 <= diff <= 1e-4
    assert f"wrote {exported / 'generator.onnx'}" in out
    # dynamic batch, height and width: another shape than the export's runs and agrees
    from srlab.infer.onnx import OnnxGenerator

    ort_gen, torch_gen = OnnxGenerator(exported / "generator.onnx"), load_generator(exported / "generator.safetensors")
    x = torch.rand(2, 3, 13, 21)
    with torch.inference_mode():
        torch.testing.assert_close(ort_gen(x), torch_gen(x), atol=1e-4, rtol=0)
    assert ort_gen.scale == 4 and ort_gen.net_config["_target_"].endswith("RRDBNet")


def test_fp16_published_swinir_export(tmp_path, capsys, caplog):
    from srlab.nets.swinir import SwinIR

    net = SwinIR(img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2], upscale=2)
    torch.save({"params": net.state_dict()}, tmp_path / "swinir.pth")  # detected: no model name
    Image.fromarray(rand_image(30, 22)).save(tmp_path / "photo.png")
    args = [str(tmp_path / "swinir.pth"), "-o", str(tmp_path / "exp"), "--onnx", "--fp16",
            "--check-image", str(tmp_path / "photo.png")]  # fmt: skip
    assert export_main(args) == 0
    out = capsys.readouterr().out
    assert "onnx parity (fp16 graph vs torch fp32) on" in out and "(22x30 crop)" in out
    warned = [r.getMessage() for r in caplog.records if r.name == "srlab.device"]
    assert len(warned) == 1 and warned[0].startswith("--fp16: SwinIR overflows in fp16 (NaN or black images")
    assert float(out.split("max abs diff ")[1].split(",")[0]) <= 1e-2


def test_parity_failure_removes_the_file(tmp_path, monkeypatch, capsys):
    import srlab.export

    save_ckpt(tmp_path / "last.ckpt")
    monkeypatch.setattr(srlab.export, "check_parity", lambda *a: 0.5)
    assert export_main([str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "exp"), "--onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from PyTorch by 5.00e-01 (> 1e-04)" in err[0]
    assert not (tmp_path / "exp" / "generator.onnx").exists()


def _run(weights, out, *inputs, extra=()):
    return upscale_main([*map(str, inputs), "-o", str(out), "--weights", str(weights), "-q", *extra])


# onnxruntime computes in fp32: the torch side is pinned to fp32 to compare like with like (under
# --precision auto it would be bf16 on a machine with native bf16); BF16_VS_FP32 is the bf16 comparison
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_onnx_weights_select_onnxruntime_and_match_torch(tmp_path, exported, precision):
    img16 = rand_image(19, 23, np.uint16)  # 16-bit in, 16-bit out, tiled, on both backends
    Image.fromarray(rand_image(19, 23)).save(tmp_path / "a.png")
    import cv2

    cv2.imwrite(str(tmp_path / "deep.png"), img16[..., ::-1])
    tiling = ["--tile", "8", "--tile-pad", "4"]
    assert _run(exported / "generator.safetensors", tmp_path / "torch", tmp_path / "a.png", tmp_path / "deep.png",
                extra=[*tiling, "--precision", precision]) == 0  # fmt: skip
    assert _run(exported / "generator.onnx", tmp_path / "ort", tmp_path / "a.png", tmp_path / "deep.png",
                extra=tiling) == 0  # fmt: skip
    limit = 1 if precision == "fp32" else BF16_VS_FP32
    for name, peak in (("a.png", 255), ("deep.png", 65535)):
        ref, got = read_image(tmp_path / "torch" / name), read_image(tmp_path / "ort" / name)
        assert got.dtype == ref.dtype and got.shape == ref.shape == (76, 92, 3)
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= limit * peak / 255


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_backend_onnxruntime_on_a_checkpoint(tmp_path, precision):
    save_ckpt(tmp_path / "last.ckpt")
    rgba = np.dstack([rand_image(9, 7), np.full((9, 7), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    rgba_png = tmp_path / "rgba.png"
    assert _run(tmp_path / "last.ckpt", tmp_path / "ort", rgba_png, extra=["--backend", "onnxruntime"]) == 0
    assert _run(tmp_path / "last.ckpt", tmp_path / "torch", rgba_png, extra=["--precision", precision]) == 0
    got, ref = (np.asarray(Image.open(tmp_path / side / "rgba.png")) for side in ("ort", "torch"))
    limit = 1 if precision == "fp32" else BF16_VS_FP32
    assert got.shape == ref.shape == (36, 28, 4) and np.abs(got.astype(int) - ref.astype(int)).max() <= limit


def test_bad_inputs_are_one_line(tmp_path, exported, capsys):
    Image.fromarray(rand_image(6, 6)).save(tmp_path / "a.png")
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf")
    assert _run(tmp_path / "broken.onnx", tmp_path / "o1", tmp_path / "a.png") == 2
    assert _run(exported / "generator.onnx", tmp_path / "o2", tmp_path / "a.png", extra=["--backend", "torch"]) == 2
    assert _run(exported / "generator.onnx", tmp_path / "o3", tmp_path / "a.png", extra=["--precision", "fp16"]) == 2
    assert export_main([str(exported / "generator.safetensors"), "-o", str(tmp_path / "e"), "--fp16"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 4, err
    assert "broken.onnx: not a loadable ONNX model" in err[0]
    assert "runs with --backend onnxruntime, not torch" in err[1]
    assert "--precision applies to --backend torch" in err[2]
    assert "--fp16 applies to the ONNX graph; add --onnx" in err[3]


def test_without_the_extra_say_which_to_install(tmp_path, exported, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    Image.fromarray(rand_image(6, 6)).save(tmp_path / "a.png")
    assert _run(exported / "generator.safetensors", tmp_path / "o", tmp_path / "a.png",
                extra=["--backend", "onnxruntime"]) == 2  # fmt: skip
    assert export_main([str(exported / "generator.safetensors"), "-o", str(tmp_path / "e"), "--onnx"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and all("pip install 'srlab[deploy]'" in line for line in err)
    assert err[0].startswith("error: --backend onnxruntime needs onnxruntime") and "export --onnx" in err[1]
    assert not (tmp_path / "e").exists()  # nothing written before the check
