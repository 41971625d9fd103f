"""Video upscaling speed (issue 30): frames/s of ``srlab.upscale clip.mp4`` and where the time goes.

    nice -n 10 python experiments/benchmarks/video_speed.py --seconds 2 --rounds 2

Makes a 640x360, 24 frames/s clip with a stereo AAC tone: a slow pan over scikit-image's
``motorcycle_left.png`` (a real photo, 741x500), encoded by libx264 at crf 18 like a camera file.
Then, with the shipped default model (no ``--weights``), interleaved rounds (order rotated each
round, medians reported, as every srlab benchmark on this shared machine):

- ``video``: :func:`srlab.upscale.video.transcode` as the CLI runs it (decode, upscale, H.264 encode, audio copy);
- ``video batch N``: the same with N frames per forward pass;
- ``arrays``: the same decoded frames upscaled one by one with ``upscale_array`` in this process
  (the model alone: no decoding, encoding or file I/O), the ceiling the video path is held to;
- ``images``: ``python -m srlab.upscale frames/ -o out`` in-process on the frames saved as PNG;
- ``video onnxruntime``: the video path on the onnxruntime backend (the model exported to ONNX).

Decoding and encoding alone are timed too (decode to RGB arrays; encode the upscaled frames):
x264 runs threads of its own that overlap the model, so the time spent inside the encode calls
understates what encoding costs; encode-alone frames/s bounds it from the other side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from srlab.bench.utils import commit_label, cpu_model  # noqa: E402
from srlab.infer import load_generator, upscale_array  # noqa: E402
from srlab.device import cpu_bf16_units  # noqa: E402
from srlab.upscale import main as upscale_main  # noqa: E402
from srlab.upscale.video import VideoOptions, transcode  # noqa: E402


def make_clip(path: Path, seconds: float, w: int = 640, h: int = 360, rate: int = 24) -> Path:
    from srlab.data.images import read_image
    from srlab.data.samples import skimage_data_dir

    photo = read_image(skimage_data_dir() / "motorcycle_left.png")[..., :3]  # (500, 741, 3)
    n = round(seconds * rate)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.codec_context.options = {"crf": "18"}
    a = out.add_stream("aac", rate=48000, layout="stereo")
    for i in range(n):
        x, y = round(i * (photo.shape[1] - w) / max(n - 1, 1)), round(i * (photo.shape[0] - h) / max(n - 1, 1))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y : y + h, x : x + w]), format="rgb24")
        frame.pts = i
        out.mux(vs.encode(frame))
    out.mux(vs.encode())
    t = np.arange(round(48000 * seconds)) / 48000
    tone = (0.2 * np.sin(2 * np.pi * np.array([[440.0], [660.0]]) * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="stereo")
    frame.sample_rate, frame.pts = 48000, 0
    out.mux(a.encode(frame))
    out.mux(a.encode())
    out.close()
    return path


def decoded_frames(clip: Path) -> list[np.ndarray]:
    with av.open(str(clip)) as c:
        return [f.to_ndarray(format="rgb24", src_colorspace="itu601") for f in c.decode(video=0)]


def encode_alone(frames: list[np.ndarray], dst: Path, preset: str) -> float:
    t = time.perf_counter()
    out = av.open(str(dst), "w")
    vs = out.add_stream("libx264", rate=24)
    vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    vs.codec_context.options = {"crf": "18", "preset": preset}
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p", dst_colorspace="itu709")
        vf.pts = i
        out.mux(vs.encode(vf))
    out.mux(vs.encode())
    out.close()
    return len(frames) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--batches", default="2,4", help="extra --batch values for the video path")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "experiments/benchmarks/results")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="srlab-video-bench-"))
    clip = make_clip(work / "clip.mp4", args.seconds)
    frames = decoded_frames(clip)
    (work / "frames").mkdir()
    from PIL import Image

    for i, f in enumerate(frames):
        Image.fromarray(f).save(work / "frames" / f"{i:04d}.png")
    gen = load_generator(None, device="cpu", precision="fp32")
    onnx = None
    if not args.no_onnx:
        from srlab.deploy import onnx_generator

        onnx = onnx_generator(gen, "cpu")
    n = len(frames)

    def video(g, batch=1):
        def run():
            up = lambda x: upscale_array(g, x, args.tile, 16)  # noqa: E731 - as srlab.upscale.video_cli does
            cpu = time.process_time()
            s = transcode(clip, lambda ext: work / f"out{ext}", up, VideoOptions(batch=batch))
            return {"fps": s.frames / s.seconds, "cpu": (time.process_time() - cpu) / s.frames,
                    "decode": s.decode_s / s.seconds, "encode": s.encode_s / s.seconds,
                    "upscale": s.upscale_s / s.seconds}  # fmt: skip
        return run

    def arrays():
        t, cpu = time.perf_counter(), time.process_time()
        for f in frames:
            upscale_array(gen, f, args.tile, 16)
        return {"fps": n / (time.perf_counter() - t), "cpu": (time.process_time() - cpu) / n}

    def images():
        t, cpu = time.perf_counter(), time.process_time()
        assert upscale_main([str(work / "frames"), "-o", str(work / "img_out"), "-q", "--tile", str(args.tile)]) == 0
        return {"fps": n / (time.perf_counter() - t), "cpu": (time.process_time() - cpu) / n}

    cases = {"video (batch 1, default)": video(gen), "arrays (model alone)": arrays, "images (CLI on PNGs)": images}
    for b in filter(None, args.batches.split(",")):
        cases[f"video batch {b}"] = video(gen, int(b))
    if onnx is not None:
        cases["video onnxruntime"] = video(onnx)
    results: dict[str, list[dict]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(args.rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            results[k].append(cases[k]())
            print(f"round {r} {k}: {results[k][-1]}", flush=True)
    sr = [upscale_array(gen, f, args.tile, 16) for f in frames[:12]]
    codec = {
        "decode alone fps": n / _timed(lambda: decoded_frames(clip)),
        **{f"encode alone fps ({p})": encode_alone(sr, work / f"enc_{p}.mp4", p) for p in ("veryfast", "medium")},
    }
    machine = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "pyav": av.__version__, "ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])),
        "bf16 native": cpu_bf16_units(), "load": os.getloadavg(), "commit": commit_label(),
        "python": platform.python_version(),
        "clip": f"{n} frames 640x360 24 fps {args.seconds:g} s, x4 -> 2560x1440, tile {args.tile}",
    }  # fmt: skip
    report = _report(results, codec, machine)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"video-{time.strftime('%Y-%m-%dT%H-%M-%S')}"
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": results, "codec": codec}, indent=1))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _med(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if key in r]
    if not vals:
        return ""
    fmt = (lambda v: f"{v:.3f}") if key in ("fps", "cpu") else (lambda v: f"{v:.0%}")
    return fmt(statistics.median(vals)) + (f" ({fmt(min(vals))}-{fmt(max(vals))})" if len(vals) > 1 else "")


def _report(results: dict, codec: dict, machine: dict) -> str:
    base = statistics.median(r["fps"] for r in results["arrays (model alone)"])
    lines = ["| path | frames/s | vs model alone | CPU s/frame | decode share | encode share | upscale share |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, rows in results.items():
        ratio = statistics.median(r["fps"] for r in rows) / base
        lines.append(f"| {k} | {_med(rows, 'fps')} | {ratio:.2f} | {_med(rows, 'cpu')} | {_med(rows, 'decode')} "
                     f"| {_med(rows, 'encode')} | {_med(rows, 'upscale')} |")  # fmt: skip
    lines += ["", *(f"- {k}: {v:.1f}" for k, v in codec.items()), "", *(f"- {k}: {v}" for k, v in machine.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
