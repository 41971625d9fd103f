"""What bf16 inference costs, per architecture: each generator on benchmark sets in fp32 and in bf16, side by side.

    python experiments/benchmarks/bf16_quality.py --benchmarks DIR [DIR ...] \
        [--weights W [W ...]] [--untrained MODEL [MODEL ...]] [--untrained-crop PX] \
        [--degradation blur] [--resize matlab]

``--weights`` takes anything ``srlab.upscale --weights`` reads (a ``.ckpt``, an export, a
shipped model's name, a published file whose layout srlab detects): trained nets, whose
benchmark rows mean something. ``--untrained MODEL`` builds ``conf/model/MODEL.yaml``'s generator
at its configured size with seeded random weights (torch's default init, seed 0), for
architectures the project has no trained weights of: their outputs are not photographs, so
only the bf16-vs-fp32 difference is reported, on a ``--untrained-crop`` px centre crop of each
HR image (0: whole images) to keep emulated bf16 affordable.

For every benchmark image the LR is made as ``srlab.evaluate`` makes it (modcrop, ``degradation``,
the ``resize`` bicubic), and the generator upscales it twice, untiled: loaded with
``precision=fp32`` and with ``precision=bf16`` as ``srlab.upscale --precision`` loads them (bf16
weights in channels_last, run under autocast from an fp32 input). Per net and set: PSNR of the
bf16 outputs against the fp32 outputs (RGB, uint8, whole images, the squared differences averaged
over the set), the largest pixel difference, the
benchmark row of each (PSNR-Y against HR, ``scale`` px border cropped, as ``srlab.evaluate``) with
its move and the largest move of one image, the CPU seconds of each (process time, all threads:
other processes' load does not count) and their ratio, and what ``auto`` picks for the net on a
CPU with native bf16 and here. Writes ``results/bf16_quality-<host>-<date>.md``.
A measurement to run by hand, not a test: bf16 is slow where the CPU has no native bf16.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from unittest import mock

import hydra
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from srlab import device as P  # noqa: E402
from srlab.bench.harness import machine_lines  # noqa: E402
from srlab.bench.utils import machine_info  # noqa: E402
from srlab.config import compose_train  # noqa: E402
from srlab.data.benchmarks import find_benchmark, load_pair  # noqa: E402
from srlab.infer import SRGenerator, load_generator, to_device, upscale_array  # noqa: E402
from srlab.metrics import mean_metric, psnr  # noqa: E402

PRECISIONS = ("fp32", "bf16")
CPU = torch.device("cpu")


def trained(weights: str) -> tuple[str, dict[str, SRGenerator]]:
    """A weights file (or shipped name) loaded in fp32 and in bf16, and its label."""
    return Path(weights).name, {p: load_generator(weights, device="cpu", precision=p) for p in PRECISIONS}


def untrained(model: str, seed: int = 0) -> tuple[str, dict[str, SRGenerator]]:
    """``conf/model/MODEL.yaml``'s generator at its configured size, seeded random weights, in fp32 and in bf16."""
    cfg = compose_train([f"model={model}"])
    torch.manual_seed(seed)
    net = hydra.utils.instantiate(cfg.model.generator).eval()
    scale = int(cfg.model.generator.get("scale", cfg.model.generator.get("upscale", 4)))
    gen = SRGenerator(net, scale, dict(cfg.model.generator))
    return f"{model} (untrained, seed {seed})", {p: to_device(copy.deepcopy(gen), CPU, p) for p in PRECISIONS}


def centre_crop(hr: np.ndarray, lq: np.ndarray, size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` px HR centre crop (a multiple of ``scale``) and its LR, both cut on the LR grid."""
    if not size:
        return hr, lq
    n = min(size // scale, *lq.shape[:2])
    y, x = (lq.shape[0] - n) // 2, (lq.shape[1] - n) // 2
    return hr[y * scale : (y + n) * scale, x * scale : (x + n) * scale], lq[y : y + n, x : x + n]


def compare_set(folder: str, gens: dict, crop: int, args: argparse.Namespace) -> dict:
    """Means over one set: outputs apart, largest difference, rows and their moves, CPU seconds."""
    scale = gens["fp32"].scale
    bench = find_benchmark(folder, scale)
    per, seconds = [], dict.fromkeys(PRECISIONS, 0.0)
    for path in bench.hr:
        hr, lq = centre_crop(*load_pair(bench, path, scale, args.degradation, args.resize, args.blur_radius),
                             crop, scale)
        out = {}
        for p, gen in gens.items():
            start = time.process_time()
            out[p] = upscale_array(gen, lq, 0, 0)
            seconds[p] += time.process_time() - start
        rows = {p: psnr(sr, hr, scale, y_channel=True) for p, sr in out.items()}
        mse = float(np.mean((out["bf16"].astype(float) - out["fp32"].astype(float)) ** 2))
        per.append({"mse": mse, "psnr_y_fp32": rows["fp32"], "std": out["fp32"].std(),
                    "psnr_y_bf16": rows["bf16"], "move": rows["bf16"] - rows["fp32"],
                    "max_diff": int(np.abs(out["bf16"].astype(int) - out["fp32"].astype(int)).max())})
    means = {k: mean_metric([r[k] for r in per]) for k in ("psnr_y_fp32", "psnr_y_bf16")}
    # outputs apart over the whole set (mean squared difference): one image's identical outputs do not make it inf
    means["apart"] = 10 * np.log10(255**2 / max(float(np.mean([r["mse"] for r in per])), 1e-12))
    return {**means, "name": bench.name, "images": len(per), "move": means["psnr_y_bf16"] - means["psnr_y_fp32"],
            "worst_image_move": max((r["move"] for r in per), key=abs), "max_diff": max(r["max_diff"] for r in per),
            "constant": max(r["std"] for r in per) < 1,  # an untrained net whose output is flat: nothing to compare
            **{f"seconds_{p}": s for p, s in seconds.items()}}


def auto_picks(arch: str) -> str:
    """What ``auto`` picks for ``arch`` (inference / training) on a CPU with native bf16, and on this one."""
    def picks() -> str:
        return " / ".join(P.auto_precision_for(arch, CPU, purpose)[0] for purpose in ("infer", "train"))

    with mock.patch.object(P, "bf16_unit", lambda device: "amx_bf16"):
        native = picks()
    return f"{native} (here: {picks()})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmarks", nargs="+", required=True, help="benchmark folders (<set>/HR/*.png)")
    p.add_argument("--weights", nargs="*", default=[], help="trained generators: files or shipped names")
    p.add_argument("--untrained", nargs="*", default=[], help="conf/model names, built with seeded random weights")
    p.add_argument("--untrained-crop", type=int, default=128, help="HR centre crop for --untrained (0: whole image)")
    p.add_argument("--degradation", choices=("bicubic", "blur"), default="bicubic")
    p.add_argument("--resize", choices=("pil", "matlab"), default="pil", help="bicubic of the LR")
    p.add_argument("--blur-radius", type=float, default=1.5)
    args = p.parse_args()
    info = {**machine_info(CPU), "flush_denormal": torch.set_flush_denormal(True)}
    lq_text = f"{args.degradation} ({args.resize} bicubic)" + (
        f" (radius {args.blur_radius})" if args.degradation == "blur" else "")
    lines = [
        "# bf16 vs fp32 inference, per architecture", "", f"Command: `python {' '.join(sys.argv)}`", "",
        *machine_lines(info), f"- LR: {lq_text}, untiled; untrained nets on a {args.untrained_crop} px HR centre crop"
        " (0: whole image)", "",
        "| net | class | params | set | images | PSNR bf16 vs fp32 output (dB) | largest pixel diff | PSNR-Y fp32 | "
        "PSNR-Y bf16 | row move (dB) | largest image move (dB) | CPU s fp32 | CPU s bf16 | bf16/fp32 time | "
        "auto on a native-bf16 CPU: infer / train |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    nets = [(trained, w, 0) for w in args.weights] + [(untrained, m, args.untrained_crop) for m in args.untrained]
    for build, source, crop in nets:
        label, gens = build(source)
        arch, fresh = type(gens["fp32"].net).__name__, build is untrained
        params = sum(t.numel() for t in gens["fp32"].parameters())
        for folder in args.benchmarks:
            m = compare_set(folder, gens, crop, args)
            rows = "n/a | n/a | n/a | n/a" if fresh else (
                f"{m['psnr_y_fp32']:.3f} | {m['psnr_y_bf16']:.3f} | {m['move']:+.4f} | {m['worst_image_move']:+.4f}")
            apart = "n/a (flat output) | n/a" if m["constant"] else f"{m['apart']:.2f} | {m['max_diff']}"
            lines.append(
                f"| {label} | {arch} | {params / 1e6:.3f} M | {m['name']}{f' ({crop} px crops)' if crop else ''} | "
                f"{m['images']} | {apart} | {rows} | {m['seconds_fp32']:.1f} | "
                f"{m['seconds_bf16']:.1f} | {m['seconds_bf16'] / m['seconds_fp32']:.1f}x | {auto_picks(arch)} |")
            print(lines[-1], flush=True)
        del gens
    lines += ["", "Untrained nets: rows against HR are n/a (their outputs are not photographs); the difference "
              "columns say how far bf16 rounding carries through the architecture at its configured size with "
              "torch's default initialisation, whose activations are smaller than a trained net's (a lower bound "
              "more than an estimate); a net whose output is flat at initialisation shows nothing (n/a)."]
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bf16_quality-{info['host']}-{info['date'].replace(':', '-')}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
