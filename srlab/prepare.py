"""Make HQ/LQ training pairs from a folder of HQ images, as the origin report did (and a little more).

    python -m srlab.prepare INPUT_DIR -o OUT_DIR [--scale 4] [--blur-radius 1.5] [--bicubic pil|matlab]
        [--hq-scales 1,0.5] [--augment-copies 3] [--subimage-size 480 --subimage-step 240] [--fixed-size 640]
        [--workers N] [--seed 0] [--format png|litdata]

Writes ``OUT/HQ/00000.png`` and ``OUT/LQ/00000.png`` (same names) -- or, with ``--format litdata``,
litdata shards of the full-size sub-images as uint8 arrays for ``data=streaming`` -- then a summary on stdout and in
``OUT/prepare_summary.json`` with every skipped file and its reason and the source of every pair.
Per image: [augmented copies] -> [HQ scales] -> [fixed resize] -> [sub-images] -> modcrop -> degrade.
``--hq-scales 1,0.5`` also shrinks every HQ (and augmented copy) by each factor with Pillow's
antialiased Lanczos before pairs are cut (BasicSR's multiscale DF2K trick: more scene scales, and a
JPEG's 8 px blocking mostly averages away). The standard benchmark protocol is
``--blur-radius 0 --bicubic matlab`` (or ``pil``): plain bicubic 1/scale.
Bad files are skipped and named; the run never stops for them. Exit code 0 when at least one pair
was written, 2 (with ``error: ...``) when there was nothing usable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from srlab.data import transforms as T
from srlab.data.degradations import ORDERS, check_degradation, make_pair
from srlab.data.images import (DEFAULT_MAX_IMAGE_PIXELS, ImageReadError, list_images, load_rgb, scan_images,
                               set_max_image_pixels)
from srlab.data.resize import RESIZE_METHODS
from srlab.errors import SRLabError, report_bad_input, user_errors


def positions(length: int, size: int, step: int) -> list[int]:
    """Crop starts along one axis: every ``step``, plus one flush with the end so edges are covered."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def variants(hq: Image.Image, args: argparse.Namespace, rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    """The original image plus ``augment_copies`` warped copies (the report's Keras settings)."""
    out = [("original", hq)]
    cfg = T.augment_config(T.REPORT_AUGMENT)
    for k in range(args.augment_copies):
        params = T.draw_augment(cfg, rng)
        out.append((f"augment{k + 1}", Image.fromarray(T.augment_hq(np.asarray(hq), params))))
    return out


def hq_scaled(variant: str, img: Image.Image, factors: list[float], scale: int) -> list[tuple[str, Image.Image]]:
    """``img`` shrunk by each factor (Lanczos, antialiased; 1 = as is); copies smaller than ``scale`` are left out."""
    out = []
    for f in factors:
        if f == 1:
            out.append((variant, img))
            continue
        size = (round(img.width * f), round(img.height * f))
        if min(size) >= scale:
            out.append((f"{variant}@{f:g}", img.resize(size, Image.LANCZOS)))
    return out


def cut_pairs(index: int, path: str, args: argparse.Namespace):
    """Every ``(variant, box, hq, lq)`` of one source image, as PIL images; raises ImageReadError when unusable."""
    set_max_image_pixels(args.max_image_pixels)  # spawned workers start with Pillow's default
    hq = load_rgb(path)
    if min(hq.size) < args.scale:
        raise ImageReadError(path, f"{hq.width}x{hq.height} is smaller than the scale {args.scale}")
    rng = np.random.default_rng([args.seed, index])  # same copies whatever the worker count
    scaled = [v for variant, img in variants(hq, args, rng) for v in hq_scaled(variant, img, args.hq_scales, args.scale)]
    for variant, img in scaled:
        if args.fixed_size:
            img = img.resize((args.fixed_size, args.fixed_size), Image.BICUBIC)
        boxes = [(0, 0, img.width, img.height)]
        if args.subimage_size:
            size = args.subimage_size
            boxes = [(x, y, min(x + size, img.width), min(y + size, img.height))
                     for y in positions(img.height, size, args.subimage_step)
                     for x in positions(img.width, size, args.subimage_step)]
        for box in boxes:
            gt, lq = make_pair(img.crop(box), args.scale, args.blur_radius, args.order, args.bicubic)
            yield variant, box, gt, lq


def process_one(job: tuple[int, str, argparse.Namespace]) -> dict:
    """Make every pair of one source image under temporary names; return what was written or why not."""
    index, path, args = job
    written = []
    try:
        for variant, box, gt, lq in cut_pairs(index, path, args):
            tmp = f".tmp_{index:06d}_{len(written):05d}.png"
            gt.save(Path(args.output) / "HQ" / tmp)
            lq.save(Path(args.output) / "LQ" / tmp)
            written.append({"tmp": tmp, "source": path, "variant": variant, "box": list(box)})
    except ImageReadError as exc:
        return {"index": index, "path": path, "error": exc.reason}
    return {"index": index, "path": path, "pairs": written}


def shard_items(job: tuple[int, str, argparse.Namespace]):
    """The shard items of one source image: full-size sub-images as uint8 arrays (litdata's ``fn``)."""
    index, path, args = job
    try:
        for _variant, _box, gt, lq in cut_pairs(index, path, args):
            if min(gt.size) == args.subimage_size:  # an image smaller than a sub-image gives none
                yield {"gt": np.asarray(gt), "lq": np.asarray(lq)}
    except ImageReadError:
        return  # named by the scan before writing


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srlab.prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="folder of HQ images (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder; HQ/ and LQ/ are created inside")
    p.add_argument("--scale", type=int, default=4, help="downscaling factor (default 4)")
    p.add_argument("--blur-radius", type=float, default=1.5, help="Gaussian blur radius, 0 = none (default 1.5)")
    p.add_argument("--order", choices=ORDERS, default="resize_then_blur", help="degradation order")
    p.add_argument("--bicubic", choices=RESIZE_METHODS, default="pil",
                   help="LQ bicubic: pil (Image.resize, the report) or matlab (imresize, published tables); default pil")
    p.add_argument("--hq-scales", type=_factors, default=[1.0], metavar="F[,F...]",
                   help="also shrink each HQ by these factors (antialiased) before cutting, e.g. 1,0.5 (default 1)")
    p.add_argument("--augment-copies", type=int, default=0, help="extra warped copies per image (the report: 3)")
    p.add_argument("--subimage-size", type=int, default=None, help="cut HQ into overlapping crops of this size")
    p.add_argument("--subimage-step", type=int, default=None, help="step between crops (default size / 2)")
    p.add_argument("--fixed-size", type=int, default=None, help="resize HQ to SIZE x SIZE first (the report: 640)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmented copies")
    p.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS,
                   help="refuse larger images (decompression-bomb guard)")
    p.add_argument("--overwrite", action="store_true", help="delete existing PNGs in OUT/HQ and OUT/LQ first")
    p.add_argument("--format", choices=("png", "litdata"), default="png",
                   help="png: OUT/HQ and OUT/LQ folders (default); litdata: shards of uint8 sub-images for "
                        "data=streaming (needs --subimage-size)")
    args = p.parse_args(argv)
    args.subimage_step = args.subimage_step or (args.subimage_size // 2 if args.subimage_size else None)
    return args


def _factors(text: str) -> list[float]:
    """``"1,0.5"`` -> ``[1.0, 0.5]``; each factor in (0, 1], none twice."""
    try:
        factors = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 1,0.5") from None
    if not all(0 < f <= 1 for f in factors) or len(set(factors)) != len(factors):
        raise argparse.ArgumentTypeError(f"{text!r}: each factor must lie in (0, 1] and appear once, e.g. 1,0.5")
    return factors


def _check_args(args: argparse.Namespace) -> None:
    check_degradation(args.scale, args.blur_radius, args.order, args.bicubic)
    if args.fixed_size and args.hq_scales != [1.0]:
        raise SRLabError("--hq-scales and --fixed-size both set the HQ size; use one of them")
    for name in ("subimage_size", "fixed_size"):
        value = getattr(args, name)
        if value is not None and (value < args.scale or value % args.scale):
            raise SRLabError(f"--{name.replace('_', '-')} {value} must be a positive multiple of --scale {args.scale}")
    if args.subimage_step is not None and (args.subimage_step < 1 or not args.subimage_size):
        raise SRLabError("--subimage-step needs --subimage-size and must be >= 1")
    if args.format == "litdata" and not args.subimage_size:
        raise SRLabError("--format litdata stores sub-images of one size: give --subimage-size (e.g. 480)")
    if args.augment_copies < 0 or args.workers < 1:
        raise SRLabError("--augment-copies must be >= 0 and --workers >= 1")


def _prepare_output(out: Path, overwrite: bool) -> None:
    for sub in ("HQ", "LQ"):
        existing = sorted((out / sub).glob("*.png")) if (out / sub).is_dir() else []
        if existing and not overwrite:
            raise SRLabError(f"{out / sub} already holds {len(existing)} PNG files; choose an empty -o folder or pass --overwrite")
        for f in existing:
            f.unlink()
        (out / sub).mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> dict:
    """Prepare the pairs and return the summary dict (also written to ``OUT/prepare_summary.json``)."""
    _check_args(args)
    set_max_image_pixels(args.max_image_pixels)
    files = list_images(args.input)
    if not files:
        raise SRLabError(f"{args.input}: no images found (png, jpg, jpeg, webp, bmp, tif); nothing to prepare")
    out = Path(args.output)
    jobs = [(i, str(p), args) for i, p in enumerate(files)]
    if args.format == "litdata":
        return _run_shards(args, files, jobs)
    _prepare_output(out, args.overwrite)
    pairs, skipped = [], []
    pool = get_context("spawn").Pool(args.workers) if args.workers > 1 else None
    try:
        results = pool.imap(process_one, jobs) if pool else map(process_one, jobs)
        for res in tqdm(results, total=len(jobs), desc="prepare", unit="img", file=sys.stderr):
            if "error" in res:
                skipped.append({"path": res["path"], "reason": res["error"]})
                continue
            for pair in res["pairs"]:  # results arrive in input order, so numbering is deterministic
                name = f"{len(pairs):05d}.png"
                tmp = pair.pop("tmp")
                os.replace(out / "HQ" / tmp, out / "HQ" / name)
                os.replace(out / "LQ" / tmp, out / "LQ" / name)
                pairs.append({"name": name, **pair})
    finally:
        if pool:
            pool.close()
            pool.join()
    used = len({p["source"] for p in pairs})
    settings = {k: v for k, v in vars(args).items() if k not in ("input", "output")}
    summary = {"input": str(args.input), "output": str(out), "pairs_written": len(pairs), "images_used": used,
               "images_found": len(files), "skipped": skipped, "settings": settings, "pairs": pairs}
    (out / "prepare_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _run_shards(args: argparse.Namespace, files: list[Path], jobs: list) -> dict:
    """Shards of sub-images (``--format litdata``); unreadable images are named first, by a header scan."""
    from srlab.data.shards import srlab_version, write_shards

    sizes, bad = scan_images(files, args.max_image_pixels)
    settings = {k: v for k, v in vars(args).items() if k not in ("input", "output")}
    meta = {"srlab": srlab_version(), "scale": args.scale, "subimage_size": args.subimage_size, "pairs": True,
            "settings": settings}
    good = [job for job, p in zip(jobs, files) if p in sizes]
    count = write_shards(shard_items, good, Path(args.output), meta, args.workers) if good else 0
    skipped = [{"path": str(p), "reason": reason} for p, reason in bad]
    summary = {"input": str(args.input), "output": str(args.output), "pairs_written": count,
               "images_used": len(good), "images_found": len(files), "skipped": skipped, "settings": settings}
    if good:
        (Path(args.output) / "prepare_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    args = parse_args(argv)
    summary = run(args)
    skipped = summary["skipped"]
    print(f"wrote {summary['pairs_written']} pairs from {summary['images_used']} images to {summary['output']}, "
          f"{len(skipped)} skipped")
    for item in skipped:
        report_bad_input(item["path"], f"skipped, {item['reason']}")
    print(f"summary: {Path(summary['output']) / 'prepare_summary.json'}")
    if not summary["pairs_written"]:
        raise SRLabError(f"no usable image in {args.input} ({len(skipped)} skipped, see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
