"""Make docs/upscale_models.png: one sharp photo upscaled x4 by a blur-trained and a bicubic-trained model.

Every panel comes from srlab's own command, ``python -m srlab.upscale``; this script only cuts the
input crop, runs it twice and puts the outputs side by side (with Pillow's bicubic for reference)::

    python -m srlab.train                      # the quickstart: trained for bicubic + blur 1.5
    python docs/make_upscale_figure.py outputs/<date>/<time>/checkpoints/last.ckpt \\
        --photo /path/Set14/HR/zebra.png --box 130 150 96 72 -o docs/upscale_models.png

The second model is the default shipped one (no ``--weights``). The commands and their output (each
model's card line, the blur warning) are printed as they run.
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
    p.add_argument("blur_model", help="a blur-trained checkpoint, e.g. the quickstart's last.ckpt")
    p.add_argument("--photo", required=True, help="a sharp photo (never blurred)")
    p.add_argument("--box", nargs=4, type=int, required=True, metavar=("X", "Y", "W", "H"), help="crop of the photo")
    p.add_argument("-o", "--output", default="docs/upscale_models.png")
    args = p.parse_args()
    x, y, w, h = args.box
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        crop = Image.open(args.photo).convert("RGB").crop((x, y, x + w, y + h))
        crop.save(tmp / "in" / "photo.png")
        blurred = Image.open(upscale(tmp / "in", tmp / "blur", args.blur_model)).convert("RGB")
        shipped = Image.open(upscale(tmp / "in", tmp / "shipped", None)).convert("RGB")
        panels = [panel(crop.resize((w * SCALE, h * SCALE), Image.BICUBIC), "input, Pillow bicubic x4"),
                  panel(blurred, "quickstart (trained for blur): ringing"),
                  panel(shipped, "shipped default (trained for bicubic)")]
    figure = Image.new("RGB", (sum(q.width for q in panels) + 8 * (len(panels) - 1), panels[0].height), "white")
    for i, q in enumerate(panels):
        figure.paste(q, (i * (q.width + 8), 0))
    figure.save(args.output, optimize=True)
    print(f"wrote {args.output} ({figure.width}x{figure.height}, {Path(args.output).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
