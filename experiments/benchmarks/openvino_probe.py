"""Issue 14 probe: would OpenVINO take tiled RRDBNet x4 past 1.5x Real-ESRGAN's RealESRGANer on this CPU?

Same set-up as ``compare_basicsr.py --sections infer`` (RRDBNet x4, 23 blocks, one set of seeded
weights, 250x250 input -> 1000x1000 output, tile 128, tile_pad 10, fp32, denormals flushed),
with a fourth candidate: srlab's ONNX export compiled by OpenVINO for the CPU (latency hint, as
many inference threads as torch, f32 inference precision, no CPU pinning), run through the same
``upscale_array``. One warm-up call each, then rounds of all four with the order rotated; wall
and process-CPU seconds per call, ratios paired by round. Not an srlab backend: ~10% faster
than torch on a quiet machine is not enough (``nets_backends.md``). Run from the repository root
with the BasicSR virtualenv of ``compare_basicsr.py`` and OpenVINO installed into it
(``basicsr-venv/bin/pip install openvino``)::

    basicsr-venv/bin/python experiments/benchmarks/openvino_probe.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import compare_basicsr as cb  # puts the repository root on sys.path and patches torchvision for BasicSR
import numpy as np
import openvino as ov
import torch
from torch import nn

from srlab.bench.infer import rrdbnet_x4, test_image
from srlab.bench.utils import machine_info, median
from srlab.infer.onnx import export_onnx
from srlab.infer import upscale_array


class OpenVinoGenerator(nn.Module):
    """srlab's ONNX graph (dynamic height/width) compiled by OpenVINO, behind SRGenerator's ``scale``/``forward``."""

    def __init__(self, gen: nn.Module) -> None:
        super().__init__()
        with tempfile.TemporaryDirectory() as tmp:
            core = ov.Core()
            model = core.read_model(str(export_onnx(gen, Path(tmp) / "generator.onnx")))
            # pinning off: OpenVINO's threads must not claim cores from torch's, which share this process
            props = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                     "INFERENCE_PRECISION_HINT": "f32", "CPU_DENORMALS_OPTIMIZATION": True,
                     "ENABLE_CPU_PINNING": False}  # fmt: skip
            self.request = core.compile_model(model, "CPU", props).create_infer_request()
        self.scale = gen.scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        out = self.request.infer({0: np.ascontiguousarray(lq.float().numpy())})[0]
        return torch.from_numpy(np.array(out, dtype=np.float32))


def uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    torch.set_flush_denormal(True)  # as compare_basicsr.py, both sides
    gen = rrdbnet_x4(cb.CPU, "fp32")
    upsampler = cb.realesrganer(gen, 128, 10)
    nets = {**cb._srlab_backends(gen), "srlab openvino": OpenVinoGenerator(gen)}
    img = test_image(250, 250)
    bgr = np.ascontiguousarray(img[..., ::-1])
    out: dict[str, np.ndarray] = {}

    def run(name: str) -> None:
        if name in nets:
            out[name] = upscale_array(nets[name], img, 128, 10)
        else:
            out[name] = cb._quiet_enhance(upsampler, bgr)[..., ::-1]  # BGR -> RGB

    names = [*nets, "Real-ESRGAN"]
    cpu_name = f"{machine_info(cb.CPU)['cpu']} ({torch.backends.cpu.get_cpu_capability()})"
    lines = [f"# OpenVINO probe: `{' '.join(sys.argv)}`", "", f"- openvino {ov.__version__}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, CPU {cpu_name}",
             f"- start {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())} UTC, {uptime()}"]  # fmt: skip
    for name in names:
        run(name)  # warm-up: oneDNN primitives, OpenVINO's shape-specific kernels
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.reps):
        for name in names[r % len(names):] + names[: r % len(names)]:
            c0, t0 = time.process_time(), time.perf_counter()
            run(name)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        lines.append(f"- round {r}: " + ", ".join(f"{n} {wall[n][-1]:.1f} s (CPU {cpu[n][-1]:.1f})" for n in names)
                     + f"; {uptime()}")  # fmt: skip
    lines += ["", "| candidate | wall s per round | vs RealESRGANer, paired by round | vs srlab torch, paired | "
              "CPU s per round | largest difference /255 vs Real-ESRGAN, vs srlab torch |", "|---|---|---|---|---|---|"]
    for name in names:
        vs = [round(a / b, 2) for a, b in zip(wall["Real-ESRGAN"], wall[name])]
        vt = [round(a / b, 2) for a, b in zip(wall["srlab torch"], wall[name])]
        d = [int(np.abs(out[name].astype(int) - out[k].astype(int)).max()) for k in ("Real-ESRGAN", "srlab torch")]
        lines.append(f"| {name} | {[round(t, 1) for t in wall[name]]} | {vs} (median {median(vs):.2f}) | {vt} | "
                     f"{[round(t, 1) for t in cpu[name]]} | {d[0]}, {d[1]} |")  # fmt: skip
    lines.append(f"\nEnd: {uptime()}.")
    print("\n".join(lines))
    path = Path(__file__).resolve().parent / "results" / f"openvino_probe-{time.strftime('%Y-%m-%dT%H-%M-%S')}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
