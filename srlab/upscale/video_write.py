"""The output side of :mod:`srlab.upscale.video`: the encoder, the copied streams and the muxer of one output file."""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from srlab.upscale.video import VideoOptions, VideoStats

UpscaleBatch = Callable[[np.ndarray], np.ndarray]  # (N, H, W, 3) uint8/uint16 -> (N, H', W', 3), same dtype


class Writer:
    """The output file: opened at the first upscaled batch (its size is known then), copied packets held till then."""

    def __init__(self, av: Any, path: Path, fmt: str, vs: Any, copied: list[Any], codec: tuple, opts: VideoOptions,
                 stats: VideoStats) -> None:  # fmt: skip
        self.av, self.path, self.fmt, self.vs, self.copied = av, path, fmt, vs, copied
        self.codec, self.opts, self.stats = codec, opts, stats
        self.out: Any = None
        self.stream: Any = None
        self.streams: dict[int, Any] = {}
        self.held: list[Any] = []
        self.last_pts: int | None = None

    def copy(self, packet: Any, offset: float) -> None:
        if offset:
            shift = round(Fraction(offset) / packet.stream.time_base)
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
        if self.out is None:
            self.held.append(packet)
            return
        t = time.perf_counter()
        packet.stream = self.streams[packet.stream.index]
        self.out.mux(packet)
        self.stats.encode_s += time.perf_counter() - t

    def write(self, batch: list[tuple[np.ndarray, int]], upscale: UpscaleBatch,
              on_frames: Callable[[int], None] | None) -> None:  # fmt: skip
        frames = np.stack([f for f, _ in batch])  # (N, H, W, 3)
        t = time.perf_counter()
        sr = upscale(frames)  # (N, H', W', 3)
        self.stats.upscale_s += time.perf_counter() - t
        t = time.perf_counter()
        if self.out is None:
            self._open(frames, sr)
        cc = self.stream.codec_context
        for img, (_, pts) in zip(sr, batch):
            vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: cc.height, : cc.width]),
                                                 format="rgb48le" if img.dtype == np.uint16 else "rgb24")  # fmt: skip
            vf = vf.reformat(format=cc.pix_fmt, **self.color)
            if self.last_pts is not None and pts <= self.last_pts:
                pts = self.last_pts + 1  # duplicate timestamps in the input: the muxer needs them increasing
            vf.pts, vf.time_base, self.last_pts = pts, self.vs.time_base, pts
            self.out.mux(self.stream.encode(vf))
        self.stats.frames += len(batch)
        self.stats.encode_s += time.perf_counter() - t
        if on_frames is not None:
            on_frames(len(batch))

    def _open(self, frames: np.ndarray, sr: np.ndarray) -> None:
        encoder, crf, pix8, pix16 = self.codec
        h, w = sr.shape[1:3]
        self.stats.in_size, self.stats.out_size = (frames.shape[2], frames.shape[1]), (w, h)
        if pix8.startswith("yuv") and (h % 2 or w % 2):  # 4:2:0 halves the chroma planes
            h, w = h - h % 2, w - w % 2
            self.stats.notes.append(f"odd output size cropped to {w}x{h} for 4:2:0")
            self.stats.out_size = (w, h)
        self.out = self.av.open(str(self.path), "w", format=self.fmt)
        vs = self.vs
        stream = self.out.add_stream(encoder, rate=vs.average_rate or vs.guessed_rate or 25)
        cc = stream.codec_context
        stream.time_base = cc.time_base = vs.time_base  # every input timestamp kept exactly
        cc.width, cc.height = w, h
        cc.pix_fmt = pix16 if sr.dtype == np.uint16 else pix8
        if vs.sample_aspect_ratio:
            cc.sample_aspect_ratio = vs.sample_aspect_ratio  # non-square pixels stay non-square
        if encoder in ("libx264", "libx265"):
            cc.options = {"crf": str(self.opts.crf if self.opts.crf is not None else crf), "preset": self.opts.preset}
            if encoder == "libx265":
                cc.options = {**cc.options, "x265-params": "log-level=error"}
                if self.fmt in ("mp4", "mov"):
                    cc.codec_tag = "hvc1"  # what Apple's players need; FFmpeg's default hev1 plays elsewhere only
        src = vs.codec_context
        if pix8.startswith("yuv"):  # YUV output: BT.709 matrix from 720 lines up, BT.601 below, tagged
            matrix = "itu709" if h >= 720 else "smpte170m"
            self.color = {"dst_colorspace": matrix, "dst_color_range": 1}
            cc.colorspace, cc.color_range = (1 if h >= 720 else 6), 1
        else:
            self.color = {}
        for key in ("color_primaries", "color_trc"):  # as the input's (HDR stays tagged HDR)
            if getattr(src, key, 2) not in (0, 2):
                setattr(cc, key, getattr(src, key))
        self.stream = stream
        for s in self.copied:
            self.streams[s.index] = self.out.add_stream_from_template(s)
            self.stats.copied.append(f"{s.type} {s.codec_context.name}")
        held, self.held = self.held, []
        for packet in held:
            packet.stream = self.streams[packet.stream.index]
            self.out.mux(packet)

    def close(self) -> None:
        if self.out is None:
            return
        self.out.mux(self.stream.encode(None))  # the encoder's delayed frames
        self.out.close()

    def abort(self) -> None:
        if self.out is not None:
            try:
                self.out.close()
            except Exception:  # noqa: BLE001 - the file is removed anyway
                pass
