"""Upscale a video file: decode it with PyAV, upscale its frames in batches, encode them, copy audio and subtitles.

``python -m srlab.upscale clip.mp4 -o OUT`` comes here for a file with a video extension
(:data:`VIDEO_EXTS`). :func:`transcode` takes any callable that upscales a batch of RGB frames, so
it does not care how the model was loaded. Every frame keeps its own timestamp (a variable frame
rate stays variable) and the audio and subtitle packets are copied unchanged with theirs, so
duration and sync match the input. Rotation metadata (a multiple of 90 degrees) is applied to the
pixels, as EXIF orientation is for images; input of more than 8 bits is upscaled from 16-bit RGB
and encoded in 10 bits; an odd output size loses its last row or column for 4:2:0. The output is
written under a hidden temporary name in the output folder and renamed at the end: an interrupted
or failed run leaves nothing under the final name.

Needs the optional ``video`` extra (``pip install 'srlab[video]'``: PyAV, whose wheel ships FFmpeg).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from srlab.errors import SRLabError, first_line
from srlab.upscale.video_write import UpscaleBatch, Writer

EXTRA = "pip install 'srlab[video]'"
VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
                        ".m2ts", ".mts", ".3gp", ".ogv", ".y4m"})  # fmt: skip
# --codec -> (FFmpeg encoder, default --crf, pixel format for 8-bit input, for deeper input)
CODECS = {
    "h264": ("libx264", 18, "yuv420p", "yuv420p10le"),  # crf 18: visually lossless for x264
    "h265": ("libx265", 22, "yuv420p", "yuv420p10le"),  # about x264's 18 at ~2/3 of the size
    "lossless": ("ffv1", None, "bgr0", "gbrp16le"),  # the net's RGB output bit for bit, in .mkv
}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_KEPT = {".mp4", ".m4v", ".mov", ".mkv"}  # containers kept as they are; the rest become .mkv, which takes any stream
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_DISPLAY_MATRIX = {1: "itu709", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}  # AVColorSpace -> swscale

def require_av(what: str = "video input") -> Any:
    """PyAV, or one line saying how to install it."""
    try:
        import av
    except ImportError:
        raise SRLabError(f"{what} needs PyAV, part of srlab's video extra: {EXTRA}") from None
    av.logging.set_level(av.logging.ERROR)  # no per-packet decoder chatter on stderr
    return av


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


@dataclass
class VideoOptions:
    """What ``--codec``, ``--crf``, ``--preset``, ``--start``, ``--duration`` and ``--batch`` ask for."""

    codec: str = "h264"
    crf: int | None = None
    preset: str = "veryfast"  # x264 medium took ~2x the CPU: 15-20% of a CPU run (experiments/benchmarks/video.md)
    start: float = 0.0
    duration: float | None = None
    batch: int = 1


@dataclass
class VideoStats:
    """What one :func:`transcode` did; ``decode_s``/``upscale_s``/``encode_s`` split ``seconds``."""

    dst: Path | None = None
    frames: int = 0
    in_size: tuple[int, int] = (0, 0)  # (width, height) after rotation
    out_size: tuple[int, int] = (0, 0)
    copied: list[str] = field(default_factory=list)  # "audio aac", "subtitle subrip"
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    decode_s: float = 0.0
    upscale_s: float = 0.0
    encode_s: float = 0.0

    def summary(self) -> str:
        secs = max(self.seconds, 1e-9)
        share = ", ".join(f"{k} {v / secs:.0%}" for k, v in
                          (("decode", self.decode_s), ("upscale", self.upscale_s), ("encode", self.encode_s)))  # fmt: skip
        kept = ", ".join(self.copied) if self.copied else "no audio or subtitles"
        return (f"{self.frames} frames {self.in_size[0]}x{self.in_size[1]} -> {self.out_size[0]}x{self.out_size[1]} "
                f"in {secs:.1f} s: {self.frames / secs:.2f} frames/s ({share}); copied: {kept}")  # fmt: skip


def _video_stream(inp: Any) -> Any:
    """The first video stream that is not a cover picture; refuses files without one."""
    streams = [s for s in inp.streams.video if not s.disposition & 1024]  # 1024: AV_DISPOSITION_ATTACHED_PIC
    if not streams:
        raise SRLabError("has no video stream (only " + (", ".join(s.type for s in inp.streams) or "nothing") + ")")
    return streams[0]


def output_ext(src: Path, inp: Any, codec: str, notes: list[str]) -> str:
    """The input's container where it takes what is written into it, else ``.mkv`` (a note says why)."""
    own = src.suffix.lower()
    if codec == "lossless":
        return ".mkv" if own == ".mkv" else _note(notes, ".mkv", "--codec lossless (FFV1) is stored in .mkv")
    if own not in _KEPT:
        return _note(notes, ".mkv", f"{own or 'no extension'} is not kept (.mp4, .m4v, .mov, .mkv are): writing .mkv")
    subs = {s.codec_context.name for s in inp.streams.subtitles}
    if own != ".mkv" and subs - {"mov_text"}:
        return _note(notes, ".mkv", f"subtitles ({', '.join(sorted(subs))}) cannot be stored in {own} unchanged: "
                                    "writing .mkv")  # fmt: skip
    return own


def _note(notes: list[str], ext: str, why: str) -> str:
    notes.append(why)
    return ext


def transcode(
    src: Path,
    name: Callable[[str], Path],
    upscale: UpscaleBatch,
    opts: VideoOptions,
    on_frames: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> VideoStats:
    """Upscale the video of ``src`` into the file ``name(ext)`` returns, copying its audio and subtitles.

    Args:
        src: the input file (any container and codec FFmpeg decodes).
        name: the final output path for an extension (``.mp4``, ``.mkv``...); called once.
        upscale: upscales a (N, H, W, 3) uint8 (or uint16 for deep input) batch of RGB frames.
        opts: codec, quality, time window and batch size.
        on_frames: called with the number of frames after each batch is encoded (a progress bar).
        on_total: called once with the frames expected, when known.

    Raises:
        SRLabError: input that is no readable video, or that cannot be handled (one line).
    """
    av = require_av()
    stats, t0 = VideoStats(), time.perf_counter()
    try:
        inp = av.open(str(src), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise SRLabError(f"not a video that FFmpeg reads ({first_line(exc)})") from None
    writer, tmp = None, None
    try:
        vs = _video_stream(inp)
        vs.codec_context.thread_type = "AUTO"  # frame + slice threads: decoding stays a small share
        copied = [s for s in inp.streams if s.type in ("audio", "subtitle")]
        dropped = [s.type for s in inp.streams if s is not vs and s not in copied]
        if dropped:  # data (timecode, telemetry), attachments (fonts), more video (cover art, other angles)
            stats.notes.append(f"not copied: {', '.join(f'{s} stream' for s in dropped)}")
        stats.dst = dst = name(output_ext(src, inp, opts.codec, stats.notes))
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=".part")
        os.close(fd)
        window = _Window(inp, vs, opts)
        if on_total is not None and window.expected_frames:
            on_total(window.expected_frames)
        writer = Writer(av, Path(tmp), _MUXERS[dst.suffix], vs, copied, CODECS[opts.codec], opts, stats)
        batch: list[tuple[np.ndarray, int]] = []
        tick = time.perf_counter()
        for item in _items(inp, vs, copied, window, stats):
            if isinstance(item, av.Packet):
                t = time.perf_counter()
                writer.copy(item, window.offset)  # counted as encoding
                tick += time.perf_counter() - t
                continue
            batch.append(item)
            if len(batch) == opts.batch:
                stats.decode_s += time.perf_counter() - tick
                writer.write(batch, upscale, on_frames)
                batch, tick = [], time.perf_counter()
        stats.decode_s += time.perf_counter() - tick
        if batch:
            writer.write(batch, upscale, on_frames)
        if not stats.frames:
            raise SRLabError("no video frames decoded" + (" in the --start/--duration window" if opts.start else ""))
        tick = time.perf_counter()
        writer.close()
        stats.encode_s += time.perf_counter() - tick
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would make the output private
        os.replace(tmp, dst)
        tmp = None
    except av.error.FFmpegError as exc:
        raise SRLabError(f"FFmpeg failed ({first_line(exc)})") from None
    finally:
        inp.close()
        if tmp is not None:  # failed or interrupted: nothing under the final name, and no temp file left
            if writer is not None:
                writer.abort()
            Path(tmp).unlink(missing_ok=True)
    stats.seconds = time.perf_counter() - t0
    return stats


class _Window:
    """The ``--start``/``--duration`` window in the input's seconds, and the shift every timestamp gets."""

    def __init__(self, inp: Any, vs: Any, opts: VideoOptions) -> None:
        begin = (inp.start_time or 0) / 1e6 + opts.start  # --start counts from the container's start
        self.start = begin if opts.start else -float("inf")
        self.end = begin + opts.duration if opts.duration else float("inf")
        # a cut starts the output at 0; a whole file keeps its timestamps, as a remux would
        self.offset = begin if opts.start else 0.0
        if opts.start:
            inp.seek(int(begin * 1e6), backward=True)  # to the key frame before the start, AV_TIME_BASE units
        rate = vs.average_rate or vs.guessed_rate
        length = float(vs.duration * vs.time_base) if vs.duration else (inp.duration or 0) / 1e6
        length = max(0.0, length - opts.start)
        length = min(length, opts.duration) if opts.duration and length else (opts.duration or length)
        whole = not opts.start and not opts.duration
        self.expected_frames = vs.frames if whole and vs.frames else round(length * rate) if rate else 0

    def before(self, t: float) -> bool:
        return t < self.start - 1e-6

    def past(self, t: float) -> bool:
        return t >= self.end - 1e-6


class _SeekMissed(Exception):
    """Seeking a file without an index (MPEG-PS, MPEG-TS) landed after ``--start``."""


def _items(inp: Any, vs: Any, copied: list[Any], window: _Window, stats: VideoStats):
    """:func:`_demux`, read again from the file's start when a seek landed too late."""
    try:
        yield from _demux(inp, vs, copied, window, stats, seeked=window.start > -float("inf"))
    except _SeekMissed:  # nothing was yielded yet; decoding from the start costs seconds (~400 frames/s at 360p)
        inp.seek(0, backward=True)
        yield from _demux(inp, vs, copied, window, stats, seeked=False)


def _demux(inp: Any, vs: Any, copied: list[Any], window: _Window, stats: VideoStats, seeked: bool):
    """Yield packets to copy and ``(frame RGB array, output pts)`` in file order, inside the window.

    Packets are held back until the first video frame shows that a seek landed before the start.
    """
    rate = vs.average_rate or vs.guessed_rate
    step = round(1 / (rate * vs.time_base)) if rate else None
    shift = round(Fraction(window.offset) / vs.time_base) if window.offset else 0
    open_streams = {s.index for s in copied} | {vs.index}
    last_pts, rotation, matrix, checked, size, held = None, 0, None, False, None, []
    for packet in inp.demux(vs, *copied):
        index = packet.stream.index
        if index not in open_streams:
            continue
        if packet.stream is not vs:
            if packet.dts is None and packet.pts is None:
                continue  # demux's empty end-of-stream packet
            t = float((packet.pts if packet.pts is not None else packet.dts) * packet.stream.time_base)
            if window.past(t):
                open_streams.discard(index)
            elif not window.before(t):
                held.append(packet)
                if checked or not seeked:  # once a frame showed the seek good, or without a seek
                    yield from held
                    held.clear()
            continue
        for frame in packet.decode():
            if frame.pts is None:  # raw streams (.h264, some .avi): timestamps from the frame rate
                if step is None:
                    raise SRLabError("its frames carry no timestamps and it states no frame rate")
                frame.pts = 0 if last_pts is None else last_pts + step
            last_pts = frame.pts
            t = float(frame.pts * vs.time_base)
            if seeked and t > window.start + 0.5 / float(rate or 25):
                raise _SeekMissed  # the first frame decoded after the seek is already past the start
            seeked = False
            if window.before(t):
                continue
            if window.past(t):
                open_streams.discard(vs.index)
                break
            if not checked:
                rotation, matrix = _check_first(frame, stats)
                checked = True
                yield from held
                held.clear()
            rgb = _to_rgb(frame, matrix, rotation)
            if size is not None and rgb.shape != size:
                raise SRLabError(f"its frame size changes mid-stream ({size[1]}x{size[0]} to "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}); not handled")  # fmt: skip
            size = rgb.shape
            yield rgb, frame.pts - shift
        if not open_streams:
            break
    if seeked:  # no frame decoded after the seek: it landed past every key frame (one GOP, no index)
        raise _SeekMissed
    yield from held  # no video frame came: the caller refuses the file


def _check_first(frame: Any, stats: VideoStats) -> tuple[int, str]:
    """Rotation (quarter turns) and the YUV matrix to read the frames with; refuses what cannot be handled."""
    angle = frame.rotation or 0
    if angle % 90:
        raise SRLabError(f"its rotation metadata turns the picture by {angle} degrees; only multiples of 90 are "
                         "handled")  # fmt: skip
    if angle:
        turn = f"{abs(angle)} degrees {'counter-clockwise' if angle > 0 else 'clockwise'}"
        stats.notes.append(f"rotation metadata applied to the pixels (turned {turn}); the output carries none")
    if any(c.is_alpha for c in frame.format.components):
        stats.notes.append(f"its alpha channel ({frame.format.name}) is dropped: the output is opaque")
    if frame.interlaced_frame:
        stats.notes.append("interlaced: the fields are upscaled together as one frame (deinterlace first for better)")
    # untagged: what players assume (BT.709 from 720 lines up, BT.601 below), not swscale's fixed BT.601
    matrix = _DISPLAY_MATRIX.get(frame.colorspace, "itu709" if frame.height >= 720 else "itu601")
    return (angle // 90) % 4, matrix


def _to_rgb(frame: Any, matrix: str, quarter_turns: int) -> np.ndarray:
    deep = max(c.bits for c in frame.format.components) > 8
    full = frame.color_range == 2 or frame.format.name.startswith("yuvj")  # 2: AVCOL_RANGE_JPEG
    rgb = frame.to_ndarray(format="rgb48le" if deep else "rgb24", src_colorspace=matrix,
                           src_color_range=2 if full else 1)  # fmt: skip
    return np.rot90(rgb, quarter_turns) if quarter_turns else rgb  # counter-clockwise, as the angle
