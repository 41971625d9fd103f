"""Upscale image files with a trained or published generator: ``python -m srlab.upscale IN... -o OUT``.

Images keep their kind: grayscale stays single-channel (the net runs on a 3-channel copy, the
result is converted back with BT.601 luma), an alpha channel is upscaled separately (bicubic by
default, ``--alpha net`` runs it through the net as a gray image) and reattached, palette images
become RGB(A), 16-bit PNG/TIFF are fed to the net as floats from 16 bits and written back as
16-bit, and EXIF orientation is applied (outputs carry no EXIF). ``--ext auto`` keeps the input's
format, PNG for alpha or 16 bits; ``--quality`` sets JPEG/WebP quality (WebP is lossless without
it). Outputs are written flat into OUT under a sanitized name; an input is never overwritten. A bad
file (corrupt, truncated, a symlink loop, more pixels than ``--max-image-pixels``) is reported and
skipped; the exit code is 1 then. Video files (``.mp4``, ``.mkv``...) go to :mod:`srlab.upscale.video_cli`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from srlab.config import TILE_PAD
from srlab.data.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageReadError,
    get_max_image_pixels,
    image_size,
    read_image,
    set_max_image_pixels,
    write_image,
)
from srlab.data.inputs import expand_inputs, resolve_path
from srlab.errors import SRLabError, int_at_least, report_bad_input, user_errors
from srlab.infer import PRECISIONS, SRGenerator, open_generator, tile_count, upscale_array
from srlab.infer.onnx import EXTRA, OnnxGenerator
from srlab.infer.progress import TileProgress
from srlab.infer.stored import INPUT_RANGES
from srlab.upscale.output import EXTS, output_ext
from srlab.upscale.page import ComparePage
from srlab.upscale.video import is_video
from srlab.upscale.video_cli import add_video_args, check_video_args, upscale_videos
from srlab.zoo import listing, model_notes, resolve_weights

_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601, as Pillow's convert("L")


def upscale_image(
    gen: SRGenerator, img: np.ndarray, args: argparse.Namespace, on_tile: Callable[[], None] | None = None
) -> np.ndarray:
    """Upscale (H, W, C) ``img`` keeping its channels and dtype; see the module docstring.

    Args:
        gen: the generator.
        img: (H, W, C) uint8/uint16 as :func:`read_image` returns it.
        args: the CLI options (tile, tile_pad, alpha, outscale).
        on_tile: called after each tile, alpha tiles of ``--alpha net`` included.
    """
    c = img.shape[2]
    color = img[..., :3] if c >= 3 else np.repeat(img[..., :1], 3, axis=2)
    sr = upscale_array(gen, color, args.tile, args.tile_pad, on_tile)
    if c < 3:
        sr = _luma(sr)
    if c in (2, 4):
        alpha = img[..., -1]
        if args.alpha == "net":
            a = _luma(upscale_array(gen, np.repeat(alpha[..., None], 3, axis=2), args.tile, args.tile_pad, on_tile))
        else:
            a = cv2.resize(alpha, (sr.shape[1], sr.shape[0]), interpolation=cv2.INTER_CUBIC)[..., None]
        sr = np.concatenate([sr, a.astype(sr.dtype)], axis=2)
    if args.outscale and abs(args.outscale - gen.scale) > 1e-9:
        h, w = img.shape[:2]
        size = (max(1, round(w * args.outscale)), max(1, round(h * args.outscale)))
        interp = cv2.INTER_AREA if args.outscale < gen.scale else cv2.INTER_LANCZOS4
        sr = cv2.resize(sr, size, interpolation=interp).reshape(size[1], size[0], -1)
    return sr


def _luma(rgb: np.ndarray) -> np.ndarray:
    peak = 255 if rgb.dtype == np.uint8 else 65535
    return np.clip(np.round(rgb @ _LUMA), 0, peak).astype(rgb.dtype)[..., None]


def safe_name(text: str) -> str:
    """A file name part that cannot leave its folder: no separators, no leading dots, no control chars."""
    name = re.sub(r"[^\w.\-+=@,]+", "_", text).lstrip(".")
    return name[:150] or "image"


def output_path(src: Path, img: np.ndarray | None, args: argparse.Namespace, taken: set[Path], inputs: set[Path],
                ext: str | None = None) -> Path:  # fmt: skip
    """``OUT/<stem><suffix><ext>``: unique within this run and never one of the inputs (``ext``: a video's)."""
    ext = ext or output_ext(src, img, args.ext)
    base = safe_name(src.stem) + (safe_name(args.suffix) if args.suffix else "")
    out_dir = resolve_path(args.output) or args.output.absolute()
    for i in range(1, 10_000):
        cand = out_dir / f"{base}{'' if i == 1 else f'_{i}'}{ext}"
        # a looping link at cand is no input (those were refused) and write_image replaces, not follows, it
        if cand.parent == out_dir and cand not in taken and resolve_path(cand) not in inputs and cand not in inputs:
            taken.add(cand)
            return cand
    raise SRLabError(f"{src}: cannot find a free output name in {out_dir}")


def run(args: argparse.Namespace) -> int:
    """Upscale every input; returns the exit code (0 all written, 1 some failed)."""
    if args.list_models:
        print("\n".join(listing()))
        return 0
    previous = get_max_image_pixels()
    set_max_image_pixels(args.max_image_pixels)
    try:  # the limit is process-wide: leave it as found for in-process callers (tests, notebooks)
        return _run(args)
    finally:
        set_max_image_pixels(previous)


def _run(args: argparse.Namespace) -> int:
    files, bad = expand_inputs(args.inputs)
    for item, reason in bad:
        report_bad_input(item, reason)
    if not files:
        raise SRLabError("no input images found (give files, folders or glob patterns)")
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file there, a symlink loop, no permission
        raise SRLabError(f"{args.output}: cannot create the output folder ({exc.strerror or exc}); pick another -o")
    weights = args.weights
    if weights is None and args.scale:  # the default shipped model of that scale, by its name
        weights = resolve_weights(None, args.scale).stem
    gen = open_generator(weights, args.model, args.device, args.precision, args.backend, args.input_range)
    if args.scale and gen.scale != args.scale:
        raise SRLabError(f"--weights {gen.label} is a x{gen.scale} model, not x{args.scale}: drop --scale, or pick a "
                         f"x{args.scale} model (--list-models); --outscale resizes the net's output to any scale")
    # what the model is for, before it surprises: one card line, and a warning for blur-trained models
    card_line, warning = model_notes(gen.label, getattr(gen, "card", None), gen.scale, gen.notes)
    print(card_line)
    if warning:
        print(warning, file=sys.stderr)
    inputs = {r for r in map(resolve_path, files) if r is not None} | {f.absolute() for f in files}
    taken: set[Path] = set()
    videos, files = [f for f in files if is_video(f)], [f for f in files if not is_video(f)]
    if videos:  # srlab.upscale.video_cli: a bar and a line per video
        bad += upscale_videos(gen, videos, args, lambda src, ext: output_path(src, None, args, taken, inputs, ext))
        if not files:
            return 1 if bad else 0
    done, megapixels, start = 0, 0.0, time.perf_counter()
    planned = [_planned_tiles(src, args.tile) for src in files]
    progress = TileProgress(sum(planned), "upscale", quiet=args.quiet)
    page = ComparePage(args.output, model_name(gen)) if args.compare else None
    for src, plan in zip(files, planned):
        t0, before, expected = time.perf_counter(), progress.bar.n, plan
        try:
            img = read_image(src)
            alpha_too = args.alpha == "net" and img.shape[2] in (2, 4)
            expected = tile_count(*img.shape[:2], args.tile) * (2 if alpha_too else 1)
            progress.add(expected - plan)  # the header cannot tell alpha through the net
            dst = output_path(src, img, args, taken, inputs)  # before the net: --ext jpg refuses alpha here
            sr = upscale_image(gen, img, args, progress)
            write_image(dst, sr, args.quality)
            if page is not None:
                page.add(src, dst, img, sr, time.perf_counter() - t0, args.quality)
        except Exception as exc:  # noqa: BLE001 - one bad image (or an out-of-memory tile) must not stop the batch
            reason = exc.reason if isinstance(exc, ImageReadError) else f"{type(exc).__name__}: {exc}"
            reason = str(exc) if type(exc) is SRLabError else reason  # ours: already a sentence
            progress.add(progress.bar.n - before - expected)  # drop the tiles this image will not run
            report_bad_input(src, reason, progress.write_err)
            bad.append((str(src), reason))
            continue
        done += 1
        megapixels += sr.shape[0] * sr.shape[1] / 1e6
        if len(files) > 1:  # a line per image for folders; one image has the bar alone
            progress.write(f"{src} -> {dst.name} ({time.perf_counter() - t0:.1f} s)")
    progress.close()
    if page is not None and page.entries:
        print(f"before/after page: {page.write()}")
    secs = max(time.perf_counter() - start, 1e-9)
    print(
        f"upscaled {done}/{done + len(bad)} inputs into {args.output} in {secs:.1f} s: "
        f"{done / secs:.2f} images/s, {megapixels / secs:.2f} output MP/s"
        + (f", {gen.precision} ({gen.precision_why})" if hasattr(gen, "precision") else ", onnxruntime")
        + (f"; {len(bad)} failed (named above)" if bad else "")
    )
    return 1 if bad else 0


def model_name(gen: SRGenerator | OnnxGenerator) -> str:
    """What the compare page calls the model: the weights file (or shipped name) and, where known, the architecture."""
    net = getattr(gen, "net", None)
    arch = f" ({type(net).__name__} x{gen.scale})" if net is not None else f" (x{gen.scale})"
    return f"{Path(gen.label).name}{arch}"


def _planned_tiles(src: Path, tile: int) -> int:
    """Tiles for ``src`` from its header (cheap), so the bar's total and ETA hold from the first tile."""
    try:
        w, h = image_size(src, verify=False)
    except ImageReadError:
        return 0  # reported when it is read
    return tile_count(h, w, tile)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srlab.upscale", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", help="image files, folders or glob patterns; video files")
    p.add_argument("-o", "--output", type=Path, help="output folder (created)")
    p.add_argument("--weights", help="a shipped model's name (--list-models), .ckpt, exported .safetensors/.pth/.onnx, "
                                     "or published weights (default: the default shipped model)")
    p.add_argument("--list-models", action="store_true", help="list the shipped models and exit")
    p.add_argument("--scale", type=int_at_least(2), default=None,
                   help="the net's scale: without --weights, the default shipped model of that scale")
    p.add_argument(
        "--model", help="conf/model name for weights without a config (default: detected from the weights)"
    )
    p.add_argument("--input-range", type=float, choices=INPUT_RANGES, default=None, metavar="1|255",
                   help="input range of published weights of families shipped both ways (default: decided by a probe)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="inference runtime (default: onnxruntime for an .onnx file, else torch); onnxruntime "
                        f"needs the deploy extra ({EXTRA})")
    p.add_argument("--tile", type=int_at_least(0), default=512,
                   help="tile size in input pixels; 0 = whole image at once")
    p.add_argument("--tile-pad", type=int_at_least(0), default=TILE_PAD,
                   help=f"context pixels around each tile (default {TILE_PAD})")
    p.add_argument("--outscale", type=float, default=None, help="final scale, resized after the net")
    p.add_argument("--ext", choices=EXTS, default="auto",
                   help="output format; auto = the input's, PNG for alpha or 16 bits (JPEG/WebP are 8-bit)")
    p.add_argument("--quality", type=int, default=None, metavar="N",
                   help="JPEG/WebP quality 1..100 (default: JPEG 95, WebP lossless)")
    p.add_argument("--suffix", default="", help="added to each output stem, e.g. _x4")
    p.add_argument("--alpha", choices=("bicubic", "net"), default="bicubic", help="how alpha is upscaled")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                   help="auto (default): bf16 where the device computes it natively, else fp32")
    p.add_argument("--max-image-pixels", type=int_at_least(1), default=DEFAULT_MAX_IMAGE_PIXELS, metavar="N",
                   help=f"refuse inputs with more pixels (w*h) than N (default {DEFAULT_MAX_IMAGE_PIXELS}, "
                        "as training); raise it only for files you trust")
    p.add_argument("--compare", action="store_true",
                   help="also write OUT/index.html: a before/after slider per image (bicubic vs the model)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_video_args(p)
    args = p.parse_args(argv)
    check_video_args(p, args)
    if not args.list_models and (not args.inputs or args.output is None):
        p.error("give input images and -o OUTPUT (or --list-models)")
    if args.outscale is not None and args.outscale <= 0:
        p.error("--outscale must be > 0")
    if args.quality is not None and not 1 <= args.quality <= 100:
        p.error(f"--quality {args.quality}: use 1..100")
    if args.quality is not None and args.ext == "png":
        p.error("--quality applies to JPEG and WebP outputs; PNG is lossless (drop --quality or pick --ext jpg/webp)")
    return args


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry: one-line ``error:`` messages, exit 2 for usage errors, 1 when some images failed."""
    return run(parse_args(argv))

