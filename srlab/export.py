"""Export a generator for other tools: ``python -m srlab.export WEIGHTS_OR_CKPT -o OUT_DIR [--onnx [--fp16]]``.

Writes ``generator.safetensors`` (the EMA weights when the checkpoint has them, else the trained
ones; the net config and input normalization in its header), ``generator.pth`` in BasicSR's layout
(``{"params": ..., "params_ema": ...}``, which BasicSR and Real-ESRGAN load, EMA preferred) and
``generator.json``, the generator's Hydra config (``hydra.utils.instantiate`` builds the net from
it). The input is a ``.ckpt`` of ``srlab.train`` or any weights file ``srlab.upscale`` reads
(published layouts are recognised, ``--model`` names one). ``--onnx`` adds ``generator.onnx``
(dynamic batch, height and width; ``--fp16`` for half precision) and checks it at once against
PyTorch with onnxruntime on a real photograph, failing above ``srlab.deploy.TOLERANCE``.
``srlab.upscale --weights OUT_DIR/generator.safetensors`` (or ``generator.onnx``) and
``srlab.evaluate`` read them back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from srlab.data.images import load_rgb
from srlab.data.samples import skimage_data_dir
from srlab.deploy import EXTRA, TOLERANCE, check_parity, export_onnx, require
from srlab.errors import SRLabError, user_errors
from srlab.inference import build_net, load_generator
from srlab.weights import export_metadata, load_generator_weights, safe_torch_load, stored_net_config


def _prefixed(state_dict: dict, prefix: str) -> dict[str, torch.Tensor]:
    # contiguous, cloned tensors: safetensors refuses shared or strided storage
    n = len(prefix)
    return {k[n:]: v.detach().cpu().contiguous().clone() for k, v in state_dict.items() if k.startswith(prefix)}


def _checkpoint_weights(obj: object, ckpt: Path) -> tuple[dict, dict, dict, bool] | None:
    """(net_config, params, params_ema, normalized) of an srlab.train checkpoint, else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        return None
    net_config, normalized = stored_net_config(obj, str(ckpt))
    if not isinstance(net_config, dict) or "_target_" not in net_config:
        return None
    params = _prefixed(obj["state_dict"], "generator.")
    if not params:
        raise SRLabError(f"{ckpt}: its state_dict has no 'generator.' weights")
    return dict(net_config), params, _prefixed(obj["state_dict"], "generator_ema."), normalized


def export_generator(source: str | Path, out_dir: str | Path, model: str | None = None) -> dict[str, Path]:
    """Write a generator as safetensors, BasicSR .pth and json.

    Args:
        source: a ``.ckpt`` written by ``srlab.train`` (``state_dict`` with ``generator.``/
            ``generator_ema.`` keys, ``hyper_parameters["net_config"]``), or any weights file
            ``srlab.inference.load_generator`` reads.
        out_dir: folder to write into (created).
        model: ``conf/model`` name for weights that carry no config (default: detected).

    Returns:
        the written paths by kind: ``safetensors``, ``pth``, ``json``.
    """
    source = Path(source).expanduser()
    found = _checkpoint_weights(safe_torch_load(source), source) if source.suffix != ".safetensors" else None
    if found:
        net_config, params, params_ema, normalized = found
        # build and load now, so a broken checkpoint fails here and not in someone else's tool
        load_generator_weights(build_net(net_config, str(source)), params_ema or params, strict=True)
    else:
        gen = load_generator(source, model=model)
        net_config, normalized = dict(gen.net_config), gen.normalized_input
        params, params_ema = _prefixed(gen.net.state_dict(), ""), {}
    chosen = params_ema or params

    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"generator.{k}" for k in ("safetensors", "pth", "json")}
    header, pth_meta = export_metadata(net_config, normalized)
    save_file(chosen, str(paths["safetensors"]), metadata={**header, "format": "pt"})
    basicsr = {"params": params, **({"params_ema": params_ema} if params_ema else {}), **pth_meta}
    torch.save(basicsr, paths["pth"])
    paths["json"].write_text(json.dumps(net_config, indent=2) + "\n")
    return paths


def check_image(path: str | None, size: int = 128) -> tuple[np.ndarray, str]:
    """The photograph the ONNX parity check runs on: ``path``, or a crop of scikit-image's astronaut.

    A ``size`` x ``size`` centre crop keeps the check to seconds on a CPU for any net.
    """
    if path:
        img, name = np.asarray(load_rgb(path)), str(path)
    else:
        img, name = np.asarray(load_rgb(skimage_data_dir() / "astronaut.png")), "scikit-image's astronaut.png"
    h, w = img.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(img[y : y + size, x : x + size]), name


def export_and_check_onnx(weights: Path, out_dir: Path, fp16: bool, image_path: str | None) -> tuple[Path, float]:
    """Write ``generator.onnx`` from exported weights and compare it with PyTorch; remove it if off.

    Returns:
        the ONNX path and the max abs difference on the check image.

    Raises:
        SRLabError: the difference exceeds ``TOLERANCE[fp16]`` (the file is deleted).
    """
    gen = load_generator(weights)
    image, name = check_image(image_path)
    path = export_onnx(gen, out_dir / "generator.onnx", fp16=fp16)
    diff, limit = check_parity(gen, path, image), TOLERANCE[fp16]
    h, w = image.shape[:2]
    precision = "fp16" if fp16 else "fp32"
    print(f"onnx parity ({precision}) on {name} ({w}x{h} crop): max abs diff {diff:.2e}, limit {limit:.0e}")
    if not diff <= limit:  # NaN fails too
        path.unlink()
        raise SRLabError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {limit:.0e}); not written")
    return path, diff


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry; one-line ``error:`` and exit 2 on user errors."""
    p = argparse.ArgumentParser(prog="python -m srlab.export", description=__doc__.splitlines()[0])
    p.add_argument("weights", help="checkpoint of srlab.train, or any weights file srlab.upscale reads")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", help="conf/model name for weights without a config (default: detected)")
    p.add_argument("--onnx", action="store_true", help=f"also write generator.onnx, checked by onnxruntime ({EXTRA})")
    p.add_argument("--fp16", action="store_true", help="half-precision ONNX (with --onnx)")
    p.add_argument("--check-image", help="photo for the ONNX parity check (default: scikit-image's astronaut)")
    args = p.parse_args(argv)
    if args.fp16 and not args.onnx:
        raise SRLabError("--fp16 applies to the ONNX graph; add --onnx")
    if args.onnx:
        require("export --onnx")  # before anything is written
    paths = export_generator(args.weights, args.output, args.model)
    if args.onnx:
        out = Path(args.output).expanduser()
        paths["onnx"], _ = export_and_check_onnx(paths["safetensors"], out, args.fp16, args.check_image)
    for path in paths.values():
        print(f"wrote {path}")
    print(f"use: python -m srlab.upscale IMAGES -o OUT --weights {paths.get('onnx', paths['safetensors'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
