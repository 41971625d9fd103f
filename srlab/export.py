"""Export a generator for other tools: ``python -m srlab.export WEIGHTS_OR_CKPT -o OUT_DIR [--onnx [--fp16]]``.

Writes ``generator.safetensors`` (the EMA weights when the checkpoint has them, else the trained
ones; the net config, input normalization and model card in its header), ``generator.pth`` in
BasicSR's layout (``{"params": ..., "params_ema": ...}``, which BasicSR and Real-ESRGAN load, EMA
preferred; config and card under ``srlab``), ``generator.json``, the generator's Hydra config
(``hydra.utils.instantiate`` builds the net from it), and ``generator.card.json``, the model card
(:mod:`srlab.weights.card`, when the source has one). The input is a ``.ckpt`` of ``srlab.train`` or any
weights file ``srlab.upscale`` reads (published layouts are recognised, ``--model`` names one).
``--onnx`` adds ``generator.onnx`` (dynamic batch, height and width; ``--fp16`` for half precision;
the card in its metadata) and checks it at once against PyTorch in fp32 with onnxruntime on a real
photograph, failing above ``srlab.infer.onnx.TOLERANCE``.
``srlab.upscale --weights OUT_DIR/generator.safetensors`` (or ``generator.onnx``) and
``srlab.evaluate`` read them back.

``--to-zoo NAME`` ships the generator inside srlab instead (:mod:`srlab.zoo`):
``srlab/zoo/NAME.safetensors`` and ``NAME.card.json``, the card completed with the benchmark rows of
``--benchmarks results.json``.
"""

from __future__ import annotations

import argparse
import os
import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from safetensors.torch import save_file

from srlab.data.images import load_rgb
from srlab.data.samples import skimage_data_dir
from srlab.infer.onnx import EXTRA, TOLERANCE, check_parity, export_onnx, require
from srlab import zoo
from srlab.weights.card import benchmark_rows, efficiency_line, summary
from srlab.errors import SRLabError, user_errors
from srlab.infer import load_generator, open_stored
from srlab.infer.efficiency import efficiency
from srlab.device import arch_name, warn_if_unsafe
from srlab.weights import card_path, export_metadata

_ZOO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ZOO_MAX_MB = 5  # what a model shipped inside the package may weigh (issue 11)


class Generator(NamedTuple):
    """A generator read for export: its weights, config, input scaling and model card."""

    params: dict[str, torch.Tensor]
    params_ema: dict[str, torch.Tensor]
    net_config: dict
    normalized: bool
    card: dict | None

    @property
    def chosen(self) -> dict[str, torch.Tensor]:
        """The weights to ship: EMA when trained with it."""
        return self.params_ema or self.params


def _contiguous(state_dict: dict) -> dict[str, torch.Tensor]:
    # contiguous, cloned tensors: safetensors refuses shared or strided storage
    return {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}


def read_generator(source: str | Path, model: str | None = None, input_range: float | None = None) -> Generator:
    """The generator of a ``.ckpt`` of ``srlab.train`` or of any stored generator, through the one door.

    Built and loaded strictly here, so a broken checkpoint fails now and not in someone else's tool.

    Args:
        source: the file, or a shipped model's name.
        model: ``conf/model`` name for weights that carry no config (default: detected).
        input_range: 1 or 255 for families published both ways (default: decided by a probe).
    """
    stored = open_stored(source, model=model, input_range=input_range)
    fuse = getattr(stored.net, "reparameterize", None)
    if fuse is not None and not stored.net_config.get("deploy", False):
        # a re-parameterisable net (SPAN, EFDN) ships its inference form: each branch sum one 3x3 conv
        fused, config = fuse().eval(), {**stored.net_config, "deploy": True}
        card = measured_card(fused, stored.card)
        return Generator(_contiguous(fused.state_dict()), {}, config, stored.normalized_input, card)
    loaded = _contiguous(stored.net.state_dict())
    card = measured_card(stored.net, stored.card)
    training = stored.weights.training_weights()
    if training is None:
        return Generator(loaded, {}, dict(stored.net_config), stored.normalized_input, card)
    return Generator(_contiguous(training), loaded, dict(stored.net_config), stored.normalized_input, card)


def measured_card(net: torch.nn.Module, card: dict | None) -> dict | None:
    """``card`` with the ``efficiency`` of ``net`` measured now, on this machine's CPU (None stays None).

    Training records parameters and MACs only; the export is where the CPU speed (ms per output
    megapixel) is timed, and the card says on which CPU, with how many threads (a few seconds;
    :func:`srlab.infer.efficiency.efficiency`).
    """
    if card is None:
        return None
    scale = getattr(net, "scale", None)
    scale = scale if isinstance(scale, int) else int(card.get("scale") or 1)
    return {**card, "efficiency": {**efficiency(net, scale), "measured": "at export"}}


def write_safetensors(path: Path, gen: Generator) -> None:
    """The chosen weights with net config, input scaling and card in the header."""
    header, _ = export_metadata(gen.net_config, gen.normalized, gen.card)
    save_file(gen.chosen, str(path), metadata={**header, "format": "pt"})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # safetensors writes 0600; an export is for other users and tools too


def write_card(weights: Path, card: dict | None) -> Path | None:
    """``<stem>.card.json`` beside ``weights`` (None, and nothing written, without a card)."""
    if card is None:
        return None
    path = card_path(weights)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def export_generator(
    source: str | Path, out_dir: str | Path, model: str | None = None, input_range: float | None = None
) -> dict[str, Path]:
    """Write a generator as safetensors, BasicSR .pth, json and its card.

    Args:
        source: a ``.ckpt`` written by ``srlab.train`` (``state_dict`` with ``generator.``/
            ``generator_ema.`` keys, ``hyper_parameters["net_config"]``), or any weights file (or
            shipped model's name) ``srlab.infer.load_generator`` reads.
        out_dir: folder to write into (created).
        model: ``conf/model`` name for weights that carry no config (default: detected).
        input_range: 1 or 255 for published families shipped both ways (default: decided by a probe).

    Returns:
        the written paths by kind: ``safetensors``, ``pth``, ``json``, and ``card`` when the source has one.
    """
    gen = read_generator(source, model, input_range)
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"generator.{k}" for k in ("safetensors", "pth", "json")}
    write_safetensors(paths["safetensors"], gen)
    _, pth_meta = export_metadata(gen.net_config, gen.normalized, gen.card)
    basicsr = {"params": gen.params, **({"params_ema": gen.params_ema} if gen.params_ema else {}), **pth_meta}
    torch.save(basicsr, paths["pth"])
    paths["json"].write_text(json.dumps(gen.net_config, indent=2) + "\n")
    card = write_card(paths["safetensors"], gen.card)
    return {**paths, "card": card} if card else paths


def add_to_zoo(source: str | Path, name: str, benchmarks: list[str] = (), method: str | None = None,
               default: bool = False, about: str | None = None) -> dict[str, Path]:
    """Ship a generator as ``srlab/zoo/NAME.safetensors`` + ``NAME.card.json``.

    Args:
        source: a ``.ckpt`` of ``srlab.train`` or an export of it (it must carry a model card).
        name: the shipped model's name (``--weights NAME``).
        benchmarks: ``results.json`` files of ``srlab.evaluate`` (e.g. ``resize=pil`` and
            ``resize=matlab``) whose rows go into the card; none: the source card's rows stay.
        method: the model's label in those files, when they measured several.
        default: make it the model ``upscale`` uses without ``--weights`` (for its scale: ``--scale N``).
        about: a note for the card (the recipe, the commit it was trained at, where the study is),
            most useful for a checkpoint whose card was rebuilt at export.
    """
    if not _ZOO_NAME.fullmatch(name):
        raise SRLabError(f"--to-zoo {name!r}: use letters, digits, '_', '.', '-' (at most 64), e.g. srvgg_bicubic_x4")
    gen = read_generator(source)
    if gen.card is None:
        raise SRLabError(f"{source}: has no model card (written before srlab wrote cards); a shipped model must "
                         "say what it was trained for: retrain, or export it with -o instead")
    # rows given replace the card's; none given keep those it has (a shipped model shipped again)
    rows = [row for file in benchmarks for row in benchmark_rows(file, method)] or gen.card.get("benchmarks") or []
    gen = gen._replace(card={**gen.card, "benchmarks": rows, **({"about": about} if about else {})})
    zoo.ZOO_DIR.mkdir(parents=True, exist_ok=True)
    weights = zoo.path_of(name)
    write_safetensors(weights, gen)
    paths = {"safetensors": weights, "card": write_card(weights, gen.card)}
    if default:
        paths["default"] = zoo.make_default(name)
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
    """Write ``generator.onnx`` from exported weights and compare it with PyTorch in fp32; remove it if off.

    The fp32 graph is compared like with like; the fp16 graph against fp32 too, so its limit is
    fp16's rounding (the printed line names both sides).

    Returns:
        the ONNX path and the max abs difference on the check image.

    Raises:
        SRLabError: the difference exceeds ``TOLERANCE[fp16]`` (the file is deleted).
    """
    gen = load_generator(weights, precision="fp32")  # the reference side, whatever --precision auto would pick
    if fp16:
        warn_if_unsafe("fp16", arch_name(gen.net), "--fp16")  # onnxruntime's GPU provider computes in fp16
    image, name = check_image(image_path)
    path = export_onnx(gen, out_dir / "generator.onnx", fp16=fp16)
    diff, limit = check_parity(gen, path, image), TOLERANCE[fp16]
    h, w = image.shape[:2]
    print(f"onnx parity ({'fp16' if fp16 else 'fp32'} graph vs torch fp32) on {name} ({w}x{h} crop): "
          f"max abs diff {diff:.2e}, limit {limit:.0e}")
    if not diff <= limit:  # NaN fails too
        path.unlink()
        raise SRLabError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {limit:.0e}); not written")
    return path, diff


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry; one-line ``error:`` and exit 2 on user errors."""
    p = argparse.ArgumentParser(prog="python -m srlab.export", description=__doc__.splitlines()[0])
    p.add_argument("weights", help="checkpoint of srlab.train, a shipped model's name (srlab.upscale --list-models), "
                                   "or any weights file srlab.upscale reads")
    p.add_argument("-o", "--output", help="output folder")
    p.add_argument("--to-zoo", metavar="NAME", help="ship it inside srlab as NAME (srlab/zoo/) instead of -o")
    p.add_argument("--benchmarks", nargs="+", default=[], metavar="RESULTS_JSON",
                   help="with --to-zoo: results.json files of srlab.evaluate whose rows go into the card")
    p.add_argument("--method", help="with --benchmarks: the model's label there, when they measured several")
    p.add_argument("--default", action="store_true", help="with --to-zoo: upscale uses it when no --weights is given")
    p.add_argument("--about", help="with --to-zoo: a note for the card (recipe, training commit, study)")
    p.add_argument("--model", help="conf/model name for weights without a config (default: detected)")
    p.add_argument("--input-range", type=float, choices=(1.0, 255.0), default=None, metavar="1|255",
                   help="input range of published weights of families shipped both ways (default: decided by a probe)")
    p.add_argument("--onnx", action="store_true", help=f"also write generator.onnx, checked by onnxruntime ({EXTRA})")
    p.add_argument("--fp16", action="store_true", help="half-precision ONNX (with --onnx)")
    p.add_argument("--check-image", help="photo for the ONNX parity check (default: scikit-image's astronaut)")
    args = p.parse_args(argv)
    if bool(args.output) == bool(args.to_zoo):
        p.error("give either -o OUT_DIR or --to-zoo NAME")
    if not args.to_zoo and (args.benchmarks or args.default or args.method or args.about):
        p.error("--benchmarks, --method, --default and --about go with --to-zoo")
    if args.to_zoo:
        return _to_zoo(args)
    if args.fp16 and not args.onnx:
        raise SRLabError("--fp16 applies to the ONNX graph; add --onnx")
    if args.onnx:
        require("export --onnx")  # before anything is written
    paths = export_generator(args.weights, args.output, args.model, args.input_range)
    if args.onnx:
        out = Path(args.output).expanduser()
        paths["onnx"], _ = export_and_check_onnx(paths["safetensors"], out, args.fp16, args.check_image)
    for path in paths.values():
        print(f"wrote {path}")
    card = json.loads(paths["card"].read_text()) if "card" in paths else None
    print(f"card: {summary(card)}")
    if card is not None:
        print(efficiency_line(card))
    print(f"use: python -m srlab.upscale IMAGES -o OUT --weights {paths.get('onnx', paths['safetensors'])}")
    return 0


def _to_zoo(args: argparse.Namespace) -> int:
    if args.onnx or args.model:
        raise SRLabError("--to-zoo ships a checkpoint or export with its card as .safetensors; drop --onnx/--model")
    paths = add_to_zoo(args.weights, args.to_zoo, args.benchmarks, args.method, args.default, args.about)
    for path in paths.values():
        print(f"wrote {path}")
    card = json.loads(paths["card"].read_text())
    print(f"card: {summary(card)}")
    print(efficiency_line(card))
    size_mb = paths["safetensors"].stat().st_size / 2**20
    print(f"shipped {args.to_zoo} ({size_mb:.2f} MB); check: python -m srlab.upscale --list-models")
    if size_mb > ZOO_MAX_MB:
        print(f"warning: {size_mb:.1f} MB is over the {ZOO_MAX_MB} MB a model shipped in the package should weigh "
              "(every install downloads it)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
