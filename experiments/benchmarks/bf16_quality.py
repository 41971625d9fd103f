"""What bf16 inference costs in quality: one generator on benchmark sets in fp32 and in bf16, side by side.

    python experiments/benchmarks/bf16_quality.py --weights CKPT --benchmarks DIR [DIR ...] \
        [--degradation blur] [--resize matlab]

For every benchmark image the LR is made as ``srlab.evaluate`` makes it (modcrop, ``degradation``,
the ``resize`` bicubic the model trained with), and the generator upscales it twice, untiled:
loaded with ``precision=fp32`` and with ``precision=bf16`` (``srlab.infer.load_generator``, as
``srlab.upscale --precision`` loads it: bf16 weights in channels_last, run under autocast from an
fp32 input). Reported per set: PSNR of the bf16 output against the fp32 output (RGB, uint8, whole
image), the largest pixel difference, and the benchmark row of each (PSNR/SSIM on Y against HR,
``scale`` px border cropped, as ``srlab.evaluate``) with its change. Writes
``results/bf16_quality-<host>-<date>.md``.
A measurement to run by hand, not a test: bf16 is slow where the CPU has no native bf16.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from srlab.bench.harness import machine_lines  # noqa: E402
from srlab.bench.utils import machine_info  # noqa: E402
from srlab.data.benchmarks import find_benchmark, load_pair  # noqa: E402
from srlab.infer import load_generator, upscale_array  # noqa: E402
from srlab.metrics import mean_metric, measure, psnr  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def compare_set(folder: str, gens: dict, args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Means over one set, and one markdown row per image."""
    bench = find_benchmark(folder, args.scale)
    per, lines, seconds = [], [], dict.fromkeys(PRECISIONS, 0.0)
    for path in bench.hr:
        hr, lq = load_pair(bench, path, args.scale, args.degradation, args.resize, args.blur_radius)
        out = {}
        for p, gen in gens.items():
            start = time.perf_counter()
            out[p] = upscale_array(gen, lq, 0, 0)
            seconds[p] += time.perf_counter() - start
        rows = {p: measure(sr, hr, args.scale) for p, sr in out.items()}
        diff = int(np.abs(out["bf16"].astype(int) - out["fp32"].astype(int)).max())
        per.append({"psnr_outputs": psnr(out["bf16"], out["fp32"], 0), "max_diff": diff,
                    **{f"{k}_{p}": v for p, r in rows.items() for k, v in r.items()}})
        lines.append(f"| {bench.name} | {path.name} | {per[-1]['psnr_outputs']:.2f} | {diff} | "
                     f"{rows['fp32']['psnr_y']:.3f} | {rows['bf16']['psnr_y']:.3f} | "
                     f"{rows['bf16']['psnr_y'] - rows['fp32']['psnr_y']:+.4f} |")
    means = {k: mean_metric([r[k] for r in per]) for k in per[0] if k != "max_diff"}
    means.update(name=bench.name, images=len(per), max_diff=max(r["max_diff"] for r in per),
                 **{f"seconds_{p}": s for p, s in seconds.items()})
    return means, lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="a .ckpt of srlab.train or an export")
    p.add_argument("--benchmarks", nargs="+", required=True, help="benchmark folders (<set>/HR/*.png)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--degradation", choices=("bicubic", "blur"), default="bicubic")
    p.add_argument("--resize", choices=("pil", "matlab"), default="pil",
                   help="bicubic of the LR: the model's data.resize")
    p.add_argument("--blur-radius", type=float, default=1.5)
    args = p.parse_args()
    info = {**machine_info(torch.device("cpu")), "flush_denormal": torch.set_flush_denormal(True)}
    gens = {prec: load_generator(args.weights, device="cpu", precision=prec) for prec in PRECISIONS}
    lines = ["# bf16 vs fp32 inference quality", "", f"Command: `python {' '.join(sys.argv)}`", "",
             *machine_lines(info), f"- weights: `{args.weights}`; LR: {args.degradation} ({args.resize} bicubic)"
             + (f" (radius {args.blur_radius})" if args.degradation == "blur" else "") + f", x{args.scale}, untiled",
             "", "| set | images | PSNR bf16 vs fp32 output (dB) | largest pixel diff | PSNR-Y fp32 | PSNR-Y bf16 | "
             "change (dB) | SSIM-Y fp32 | SSIM-Y bf16 | s fp32 | s bf16 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    details = ["", "Per image:", "", "| set | image | PSNR bf16 vs fp32 output | largest diff | PSNR-Y fp32 | "
               "PSNR-Y bf16 | change |", "|---|---|---:|---:|---:|---:|---:|"]
    for folder in args.benchmarks:
        m, rows = compare_set(folder, gens, args)
        lines.append(f"| {m['name']} | {m['images']} | {m['psnr_outputs']:.2f} | {m['max_diff']} | "
                     f"{m['psnr_y_fp32']:.3f} | {m['psnr_y_bf16']:.3f} | {m['psnr_y_bf16'] - m['psnr_y_fp32']:+.4f} | "
                     f"{m['ssim_y_fp32']:.4f} | {m['ssim_y_bf16']:.4f} | {m['seconds_fp32']:.1f} | "
                     f"{m['seconds_bf16']:.1f} |")
        details += rows
        print(lines[-1], flush=True)
    text = "\n".join(lines + details) + "\n"
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bf16_quality-{info['host']}-{info['date'].replace(':', '-')}.md"
    path.write_text(text)
    print(text, f"\nwritten: {path}", sep="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
