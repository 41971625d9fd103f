"""Make the upscale figures: one sharp photo crop upscaled x4 by several models, beside Pillow's bicubic.

Every model panel comes from srlab's own command, ``python -m srlab.upscale``; this script only cuts
the input crop, runs it once per model and puts the outputs side by side. Each model is
``WEIGHTS=CAPTION`` (``default`` for the default shipped model, no ``--weights``)::

    python -m srlab.train                      # the quickstart: trained for bicubic + blur 1.5
    python docs/make_upscale_figure.py --photo /path/Set14/HR/zebra.png --box 130 150 96 72 \\
        -o docs/upscale_models.png "outputs/<date>/<time>/checkpoints/last.ckpt=quickstart (trained for blur): ringing" \\
        "default=shipped default (trained for bicubic)"
    python docs/make_upscale_figure.py --photo /path/Set14/HR/zebra.png --box 130 150 96 72 \\
        -o experiments/cpu_hour_frontier/figures/x4_photo_zebra.png "srvgg-x4-bicubic=srvgg-x4-bicubic (32x8, before)" \\
        "default=srvgg48-x4-bicubic (48x8, default)"

The commands and their output (each model's card line, a blur warning) are printed as they run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

SCALE = 4
LABEL_H = 22  # px of caption strip above each panel


def upscale(inputs: Path, out: Path, weights: str | None) -> Path:
    """Run ``python -m srlab.upscale`` on the crop (printing what it says) and return its PNG."""
    cmd = [sys.executable, "-m", "srlab.upscale", str(inputs), "-o", str(out), "--ext", "png", "-q"]
    cmd += ["--weights", weights] if weights else []
    print("$", " ".join(cmd[1:]).replace(str(inputs.parent), "TMP"), flush=True)
    subprocess.run(cmd, check=True)
    return out / "photo.png"


def panel(image: Image.Image, label: str) -> Image.Image:
    """The image under a one-line caption strip."""
    out = Image.new("RGB", (image.width, image.height + LABEL_H), "white")
    out.paste(image, (0, LABEL_H))
    ImageDraw.Draw(out).text((4, 5), label, fill="black")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="WEIGHTS=CAPTION",
                   help="a model to run and its caption; WEIGHTS 'default' runs the default shipped model")
    p.add_argument("--photo", required=True, help="a sharp photo (never blurred)")
    p.add_argument("--box", nargs=4, type=int, required=True, metavar=("X", "Y", "W", "H"), help="crop of the photo")
    p.add_argument("-o", "--output", default="docs/upscale_models.png")
    args = p.parse_args()
    models = [m.partition("=") for m in args.models]
    if any(not caption for _, _, caption in models):
        p.error("give each model as WEIGHTS=CAPTION")
    x, y, w, h = args.box
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        crop = Image.open(args.photo).convert("RGB").crop((x, y, x + w, y + h))
        crop.save(tmp / "in" / "photo.png")
        panels = [panel(crop.resize((w * SCALE, h * SCALE), Image.BICUBIC), "input, Pillow bicubic x4")]
        for i, (weights, _, caption) in enumerate(models):
            out = upscale(tmp / "in", tmp / f"model{i}", None if weights == "default" else weights)
            panels.append(panel(Image.open(out).convert("RGB"), caption))
    figure = Image.new("RGB", (sum(q.width for q in panels) + 8 * (len(panels) - 1), panels[0].height), "white")
    for i, q in enumerate(panels):
        figure.paste(q, (i * (q.width + 8), 0))
    figure.save(args.output, optimize=True)
    print(f"wrote {args.output} ({figure.width}x{figure.height}, {Path(args.output).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
