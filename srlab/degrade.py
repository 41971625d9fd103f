"""Preview what the model will train on: ``python -m srlab.degrade INPUT... -o OUT [--degradation realesrgan]``.

For every input image it degrades the centre crop (``--crop``, 256 px by default so a person can see
the artifacts; never smaller than the crop training degrades) ``-n`` times with the same code as
training, and writes to OUT:

- ``<stem>/lq_NN.png``: the degraded images (LQ size);
- ``<stem>/params.json``: every sampled parameter of each (kernels, resize, noise, JPEG, order);
- ``<stem>_grid.png``: the HQ crop beside the n degraded samples, all shown at the same size.

It composes the training config, so ``--set`` takes the same keys as ``python -m srlab.train``, e.g.
``--set data.degradation.noise_range=[1,10] --set data.patch_size=256``. Sample k is drawn from seed
``(--seed, k)``: the same command gives the same images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image, ImageDraw

from srlab.config import compose_train
from srlab.data.degradations import build_degradation, modcrop
from srlab.data.images import ImageReadError, load_rgb
from srlab.data.inputs import expand_inputs
from srlab.errors import ConfigError, SRLabError, first_line, int_at_least, report_bad_input, user_errors

GRID_COLUMNS = 6
PREVIEW_CROP = 256  # HQ px: a training patch (96) degraded to 24 LQ px is too small to judge by eye


def data_config(degradation: str, sets: list[str]) -> dict:
    """``cfg.data`` of the training config composed with ``data/degradation=<degradation>`` and ``sets``."""
    try:
        cfg = compose_train([f"data/degradation={degradation}", *sets])
        return OmegaConf.to_container(cfg.data, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"--degradation {degradation} / --set {' '.join(sets)}: "
                          f"{first_line(exc, limit=None)}") from None
    finally:
        GlobalHydra.instance().clear()


def _tile(img: np.ndarray, size: int, label: str) -> Image.Image:
    tile = Image.fromarray(img).resize((size, size), Image.NEAREST)  # nearest: every LQ pixel stays visible
    ImageDraw.Draw(tile).text((3, 2), label, fill=(255, 255, 0), stroke_width=2, stroke_fill=(0, 0, 0))
    return tile


def grid(hq: np.ndarray, lqs: list[np.ndarray], labels: list[str]) -> Image.Image:
    """HQ crop first, then every LQ, each shown at the HQ crop's size, ``GRID_COLUMNS`` per row."""
    size = hq.shape[0]
    tiles = [_tile(hq, size, "HQ")] + [_tile(lq, size, label) for lq, label in zip(lqs, labels)]
    cols = min(GRID_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * size + (cols - 1) * 2, rows * size + (rows - 1) * 2), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * (size + 2), (i // cols) * (size + 2)))
    return sheet


def preview(path: Path, deg, crop: int, n: int, seed: int, out: Path) -> Path:
    """Degrade the centre ``crop`` of one image ``n`` times; write LQ PNGs, params JSON and the grid."""
    hq = modcrop(np.asarray(load_rgb(path)), deg.scale)
    h, w = hq.shape[:2]
    side = min(crop, h, w) // deg.scale * deg.scale
    if side < deg.min_size:
        raise SRLabError(f"{path}: {w}x{h} is smaller than the {deg.min_size} px this degradation needs")
    y, x = (h - side) // 2 // deg.scale * deg.scale, (w - side) // 2 // deg.scale * deg.scale
    hq = np.ascontiguousarray(hq[y : y + side, x : x + side])
    folder = out / path.stem
    folder.mkdir(parents=True, exist_ok=True)
    lqs, records = [], []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        if deg.kind == "realesrgan":
            draw = deg.draw(rng, side, None, train=False)
            lq, params = deg.apply(hq, draw, torch.float32), draw.to_json()  # float32, as in training
        else:
            lq = deg.sample(hq, rng, None, train=False)["lq"]
            params = {"kind": deg.kind, "blur_radius": deg.blur_radius, "order": deg.order, "resize": deg.resize}
        name = f"lq_{k:02d}.png"
        Image.fromarray(lq).save(folder / name)
        lqs.append(lq)
        records.append({"sample": k, "file": name, "seed": [seed, k], "params": params})
    (folder / "params.json").write_text(json.dumps({"input": str(path), "hq_crop": [y, x, side], "scale": deg.scale,
                                                    "samples": records}, indent=1))
    sheet = out / f"{path.stem}_grid.png"
    grid(hq, lqs, [f"#{k}" for k in range(n)]).save(sheet)
    return sheet


def run(args: argparse.Namespace) -> int:
    """Preview every input; returns the exit code (0 all written, 1 some inputs failed)."""
    data = data_config(args.degradation, args.set)
    deg = build_degradation(data["degradation"], int(data["scale"]))
    if deg is None:
        raise ConfigError("--degradation none makes no LQ (the LQ images are given); pick report, bicubic or realesrgan")
    crop = max(args.crop, deg.crop_for(int(data["patch_size"])))
    files, bad = expand_inputs(args.inputs)
    for item, reason in bad:
        report_bad_input(item, reason)
    if not files:
        raise SRLabError("no input images found (give files, folders or glob patterns)")
    args.output.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            print(f"{path} -> {preview(path, deg, crop, args.n, args.seed, args.output)}")
        except (ImageReadError, SRLabError) as exc:
            reason = exc.reason if isinstance(exc, ImageReadError) else str(exc)
            report_bad_input(path, reason)
            bad.append((str(path), reason))
    return 1 if bad else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srlab.degrade", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created)")
    p.add_argument("--degradation", default="realesrgan", help="conf/data/degradation preset: realesrgan (default), "
                   "report or bicubic")
    p.add_argument("-n", type=int_at_least(1), default=16, help="degraded samples per input (default 16)")
    p.add_argument("--crop", type=int_at_least(1), default=PREVIEW_CROP, metavar="PX",
                   help=f"side of the HQ centre crop to degrade (default {PREVIEW_CROP}; at least the training crop)")
    p.add_argument("--seed", type=int, default=0, help="sample k uses seed (SEED, k)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="training-config override, e.g. data.degradation.second_blur_prob=0.5 (repeatable)")
    return p.parse_args(argv)


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry: one-line ``error:`` messages, exit 2 for usage errors, 1 when some inputs failed."""
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
