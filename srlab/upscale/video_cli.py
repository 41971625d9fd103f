"""The video part of ``srlab.upscale``: its options, and one upscaled file per input video.

A video runs through the same generator, tiling (``--tile``/``--tile-pad``), precision, backend and
``--outscale`` as an image; :mod:`srlab.upscale.video` does the decoding, encoding and copying.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from srlab.errors import SRLabError, int_at_least
from srlab.infer import upscale_array
from srlab.infer.progress import TileProgress
from srlab.upscale.video import CODECS, PRESETS, VideoOptions, transcode

# a video predicted longer than a minute gets one line with the estimate and what is faster
FASTER = "faster: try a few seconds first (--start/--duration), a smaller model, or a GPU (--device cuda)"


def add_video_args(p: argparse.ArgumentParser) -> None:
    """The options that apply to video inputs only."""
    g = p.add_argument_group("video inputs (.mp4, .mkv, .mov, .webm, .avi...; needs the video extra)")
    g.add_argument("--codec", choices=tuple(CODECS), default="h264",
                   help="h264 (default), h265, or lossless (FFV1 RGB in .mkv, the net's output bit for bit)")
    g.add_argument("--crf", type=int, default=None, metavar="N",
                   help="x264/x265 constant rate factor 0..51, lower is better and larger (default h264 18, h265 22)")
    g.add_argument("--preset", choices=PRESETS, default="veryfast",
                   help="x264/x265 speed preset (default veryfast; medium: smaller files, twice the encoding time)")
    g.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start this far into each video")
    g.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="upscale only this many seconds (try a few first)")
    g.add_argument("--batch", type=int_at_least(1), default=None, metavar="N",
                   help="frames per forward pass (default: 1 on a CPU, where 4 measured slower; 4 on a GPU)")


def check_video_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors in the video options (argparse's exit 2)."""
    if args.crf is not None and not 0 <= args.crf <= 51:
        p.error(f"--crf {args.crf}: use 0..51")
    if args.crf is not None and args.codec == "lossless":
        p.error("--crf applies to h264 and h265; lossless has no quality setting")
    if args.start < 0 or (args.duration is not None and args.duration <= 0):
        p.error("--start must be >= 0 and --duration > 0")


def frame_upscaler(gen, args: argparse.Namespace) -> Callable[[np.ndarray], np.ndarray]:
    """(N, H, W, 3) frames -> upscaled frames, through ``upscale_array`` as images go, then ``--outscale``."""

    def upscale(frames: np.ndarray) -> np.ndarray:
        sr = upscale_array(gen, frames, args.tile, args.tile_pad)
        if not args.outscale or abs(args.outscale - gen.scale) < 1e-9:
            return sr
        h, w = frames.shape[1:3]
        size = (max(1, round(w * args.outscale)), max(1, round(h * args.outscale)))
        interp = cv2.INTER_AREA if args.outscale < gen.scale else cv2.INTER_LANCZOS4
        return np.stack([cv2.resize(f, size, interpolation=interp) for f in sr])

    return upscale


def _batch_size(gen, args: argparse.Namespace) -> int:
    if args.batch:
        return args.batch
    param = next(gen.parameters(), None)
    # CPU: one 640x360 frame at a time ran faster than 2 or 4 in a batch (experiments/benchmarks/video.md)
    return 4 if param is not None and param.device.type != "cpu" else 1


def upscale_videos(gen, videos: list[Path], args: argparse.Namespace,
                   name: Callable[[Path, str], Path]) -> list[tuple[str, str]]:  # fmt: skip
    """Upscale each video into ``args.output``; returns ``[(video, reason)]`` for those that failed.

    Args:
        gen: the generator (torch or onnxruntime) that images use.
        videos: the input files.
        args: the CLI options.
        name: ``name(src, ext)`` -> a free output path in the output folder for ``src``.
    """
    opts = VideoOptions(codec=args.codec, crf=args.crf, preset=args.preset, start=args.start,
                        duration=args.duration, batch=_batch_size(gen, args))  # fmt: skip
    bad = []
    for src in videos:
        faster = FASTER.replace("try a few seconds first (--start/--duration), ", "") if args.duration else FASTER
        progress = TileProgress(0, src.name[:30], quiet=args.quiet, faster=faster, unit="frame")
        try:
            stats = transcode(src, lambda ext, src=src: name(src, ext), frame_upscaler(gen, args), opts,
                              on_frames=progress, on_total=progress.add)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the others
            progress.close()
            reason = str(exc) if isinstance(exc, SRLabError) else f"{type(exc).__name__}: {exc}"
            tqdm.write(f"error: {src}: {reason}", file=sys.stderr)
            bad.append((str(src), reason))
            continue
        progress.close()
        for note in stats.notes:
            print(f"note: {src.name}: {note}", file=sys.stderr)
        print(f"{src} -> {stats.dst}: {stats.summary()}")
    return bad
