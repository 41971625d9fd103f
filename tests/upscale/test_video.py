"""Video through the upscale CLI: audio and subtitles copied, duration and timestamps kept, cuts, bad input."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from srlab.errors import SRLabError
from srlab.infer import SRGenerator, upscale_array
from srlab.upscale import main
from srlab.upscale.video import VideoOptions, require_av, transcode
from tests.infer.test_generator import NET_CONFIG, rand_image, tiny_net

av = pytest.importorskip("av")  # the video extra; `make install` installs it, so CI runs these

RATE = 12  # frames/s of the test clips: one frame is 1/12 s


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets on 32x24 frames: two OpenMP threads on a busy 2-core machine took 0.5 s a frame, one 5 ms."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_clip(path: Path, n: int = 12, w: int = 32, h: int = 24, audio: str | None = "aac", subtitles: bool = False,
              pts: list[int] | None = None, rotation: int = 0, pix_fmt: str = "yuv420p") -> Path:  # fmt: skip
    """A clip of ``n`` random frames at 12 frames/s with a 440 Hz tone as long as the video, made with PyAV."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=RATE)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    if pts is not None:  # variable frame rate: timestamps in ms
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        vs.set_display_rotation(rotation)
    a = out.add_stream(audio, rate=48000, layout="mono") if audio else None
    sub_in = None
    if subtitles:  # FFmpeg's srt demuxer gives a template stream and packets to copy
        srt = path.with_suffix(".srt")
        srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nworld\n")
        sub_in = av.open(str(srt))
        s = out.add_stream_from_template(sub_in.streams.subtitles[0])
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(rand_image(h, w, seed=i), format="rgb24")
        frame.pts = i if pts is None else pts[i]
        out.mux(vs.encode(frame))
    out.mux(vs.encode())
    if a is not None:
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(48000 * n // RATE) / 48000)[None]
        data = tone.astype(np.float32) if audio == "aac" else (tone * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format="fltp" if audio == "aac" else "s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(a.encode(frame))
        out.mux(a.encode())
    if sub_in is not None:
        for p in sub_in.demux():
            if p.dts is not None:
                p.stream = s
                out.mux(p)
    out.close()
    return path


def streams(path: Path) -> dict[str, dict]:
    """Per stream type: codec, packet payloads, first and end time (s); video also frames, size, pts, format."""
    info = {}
    with av.open(str(path)) as c:
        for s in c.streams:
            packets = [p for p in c.demux(s) if p.pts is not None]  # Matroska stores no dts for some
            c.seek(0)
            info[s.type] = {"codec": s.codec_context.name, "payloads": [bytes(p) for p in packets],
                            "first": float(min(p.pts for p in packets) * s.time_base),
                            "end": float(max(p.pts + (p.duration or 0) for p in packets) * s.time_base)}  # fmt: skip
        frames = list(c.decode(video=0))
    info["video"].update(frames=len(frames), size=(frames[0].width, frames[0].height),
                         pts=[f.pts for f in frames], format=frames[0].format.name)  # fmt: skip
    return info


def run(ckpt, out, *inputs, extra=()):
    return main([*map(str, inputs), "-o", str(out), "--weights", str(ckpt), "-q", *extra])


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part"]


def test_clip_with_audio_upscaled_and_images_still_work(tmp_path, ckpt, capsys):
    clip = make_clip(tmp_path / "clip.mp4")
    from PIL import Image

    Image.fromarray(rand_image(6, 5)).save(tmp_path / "a.png")  # an image beside the video: as before
    assert run(ckpt, tmp_path / "out", clip, tmp_path / "a.png") == 0
    src, dst = streams(clip), streams(tmp_path / "out" / "clip.mp4")
    assert dst["video"]["frames"] == 12 and dst["video"]["size"] == (128, 96)
    assert dst["video"]["pts"] == src["video"]["pts"]
    assert dst["audio"]["payloads"] == src["audio"]["payloads"]  # copied, not re-encoded
    for kind in ("video", "audio"):  # durations within one frame of the input's
        assert abs(dst[kind]["end"] - src[kind]["end"]) < 1 / RATE
        assert abs(dst[kind]["first"] - src[kind]["first"]) < 1e-6
    assert abs(dst["video"]["end"] - dst["audio"]["end"]) < 1 / RATE
    assert Image.open(tmp_path / "out" / "a.png").size == (20, 24)
    assert "12 frames 32x24 -> 128x96" in capsys.readouterr().out
    assert leftovers(tmp_path / "out") == []


def test_mkv_vfr_pcm_and_subtitles_copied(tmp_path, ckpt):
    pts = [0, 80, 170, 250, 333, 400, 500, 580, 666, 750, 833, 900]  # variable frame rate
    clip = make_clip(tmp_path / "vfr.mkv", audio="pcm_s16le", subtitles=True, pts=pts)
    assert run(ckpt, tmp_path / "out", clip) == 0
    dst = streams(tmp_path / "out" / "vfr.mkv")
    assert dst["video"]["pts"] == pts  # each frame keeps its timestamp
    assert dst["subtitle"]["payloads"] == [b"hello", b"world"]
    assert dst["audio"]["payloads"] == streams(clip)["audio"]["payloads"]


def test_subtitles_move_an_mp4_to_mkv(tmp_path, ckpt, capsys):
    make_clip(tmp_path / "s.mkv", subtitles=True, n=3)
    (tmp_path / "s.mkv").rename(tmp_path / "s.mp4")  # the content decides, not the name: srt in an .mp4 name
    assert run(ckpt, tmp_path / "out", tmp_path / "s.mp4") == 0
    assert (tmp_path / "out" / "s.mkv").is_file() and "cannot be stored in .mp4" in capsys.readouterr().err


@pytest.mark.parametrize("ext", [".mp4", ".ts"])  # MPEG-TS has no index: its seek lands past the only key frame
def test_start_and_duration_cut_audio_with_video(tmp_path, ckpt, ext):
    clip = make_clip(tmp_path / f"long{ext}", n=36)  # 3 s
    assert run(ckpt, tmp_path / "out", clip, extra=["--start", "1.5", "--duration", "1", "--batch", "4"]) == 0
    dst = streams(next((tmp_path / "out").iterdir()))
    assert dst["video"]["frames"] == 12 and dst["video"]["first"] < 1 / RATE
    assert abs(dst["audio"]["end"] - dst["video"]["end"]) < 1 / RATE and abs(dst["audio"]["first"]) < 1 / RATE


def test_rotation_10bit_and_odd_sizes(tmp_path, ckpt, capsys):
    make_clip(tmp_path / "rot.mp4", n=2, rotation=90)
    make_clip(tmp_path / "deep.mp4", n=2, pix_fmt="yuv420p10le", audio=None)
    assert run(ckpt, tmp_path / "out", tmp_path / "rot.mp4", tmp_path / "deep.mp4") == 0
    assert streams(tmp_path / "out" / "rot.mp4")["video"]["size"] == (96, 128)  # turned upright, no metadata
    assert streams(tmp_path / "out" / "deep.mp4")["video"]["format"] == "yuv420p10le"
    make_clip(tmp_path / "odd.mp4", n=2, w=30, h=22, audio=None)
    assert run(ckpt, tmp_path / "odd", tmp_path / "odd.mp4", extra=["--outscale", "1.5"]) == 0  # 45x33
    assert streams(tmp_path / "odd" / "odd.mp4")["video"]["size"] == (44, 32)
    assert "odd output size cropped to 44x32" in capsys.readouterr().err


def test_lossless_is_the_nets_output(tmp_path):
    gen = SRGenerator(tiny_net(), 4, NET_CONFIG)
    clip = make_clip(tmp_path / "c.mp4", n=3, audio=None)
    with av.open(str(clip)) as c:  # untagged 24-line video: read as BT.601, as srlab.upscale.video does
        frames = np.stack([f.to_ndarray(format="rgb24", src_colorspace="itu601") for f in c.decode(video=0)])
    stats = transcode(clip, lambda ext: tmp_path / f"c{ext}", lambda x: upscale_array(gen, x), VideoOptions("lossless"))
    assert stats.dst == tmp_path / "c.mkv"
    with av.open(str(stats.dst)) as c:
        assert c.streams.video[0].codec_context.name == "ffv1"
        out = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert np.array_equal(out, np.stack([upscale_array(gen, f) for f in frames]))  # one frame a batch


def test_batched_frames_equal_one_at_a_time():
    gen = SRGenerator(tiny_net(), 4, NET_CONFIG)
    frames = np.stack([rand_image(9, 7, seed=i) for i in range(3)])
    one = np.stack([upscale_array(gen, f, tile=4, tile_pad=20) for f in frames])
    batched = upscale_array(gen, frames, tile=4, tile_pad=20)
    assert np.abs(batched.astype(int) - one).max() <= 1  # a batched convolution may sum in another order


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_run_leaves_nothing(tmp_path, error):
    clip = make_clip(tmp_path / "c.mp4")
    gen, calls = SRGenerator(tiny_net(), 4, NET_CONFIG), []

    def upscale(frames):
        calls.append(1)
        if len(calls) == 3:  # the output is open and holds frames by then
            raise error("stop")
        return upscale_array(gen, frames)

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(error):
        transcode(clip, lambda ext: out / f"c{ext}", upscale, VideoOptions())
    assert list(out.iterdir()) == []  # no file under the final name, and no temporary one


def test_bad_input_one_line(tmp_path, ckpt, capsys):
    (tmp_path / "fake.mp4").write_text("not a video")
    make_clip(tmp_path / "good.mp4", n=2)
    assert run(ckpt, tmp_path / "out", tmp_path / "fake.mp4", tmp_path / "good.mp4") == 1  # the good one is written
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "fake.mp4: not a video that FFmpeg reads" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.mp4"]
    assert run(ckpt, tmp_path / "out", tmp_path / "missing.mp4") == 2
    assert "missing.mp4: no such file or folder" in capsys.readouterr().err
    audio_only = av.open(str(tmp_path / "tone.mp4"), "w")
    a = audio_only.add_stream("aac", rate=48000, layout="mono")
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
    frame.sample_rate, frame.pts = 48000, 0
    audio_only.mux(a.encode(frame))
    audio_only.mux(a.encode())
    audio_only.close()
    assert run(ckpt, tmp_path / "out", tmp_path / "tone.mp4") == 1
    assert "tone.mp4: has no video stream (only audio)" in capsys.readouterr().err


def test_usage_errors_and_missing_extra(tmp_path, ckpt, capsys, monkeypatch):
    for extra in (["--crf", "60"], ["--codec", "lossless", "--crf", "10"], ["--duration", "0"], ["--batch", "0"]):
        with pytest.raises(SystemExit) as exc:
            run(ckpt, tmp_path / "out", tmp_path / "x.mp4", extra=extra)
        assert exc.value.code == 2
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    with pytest.raises(SRLabError, match=r"srlab\[video\]"):
        require_av()
