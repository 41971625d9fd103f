"""``srlab.upscale --compare``: OUT/index.html, a before/after slider per image, for judging a model by eye.

The page is one file of plain HTML, CSS and JS that links its images by relative paths: it opens
from disk in any browser, with no server and no network. "Before" is a bicubic resize of the
input to the output's size, written to ``OUT/compare/`` in the output's format (a fair comparison
of a JPEG output is with a JPEG of the same quality); an output a browser cannot show (TIFF) gets
a PNG copy there too.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from srlab.data.images import write_image

_SHOWN = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}  # formats every browser displays


@dataclass
class ComparePage:
    """Collects one entry per written output, then writes the page.

    Args:
        out_dir: the upscale output folder; the page is ``out_dir/index.html``.
        model: the model's name as the page shows it.
    """

    out_dir: Path
    model: str
    entries: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir).resolve()  # as the outputs' own paths, so links are relative to it

    def add(self, src: Path, dst: Path, img: np.ndarray, sr: np.ndarray, seconds: float, quality: int | None) -> None:
        """Write the bicubic "before" of ``img`` (and a browsable copy of ``sr`` if needed) and note the pair."""
        folder = self.out_dir / "compare"
        folder.mkdir(exist_ok=True)
        ext = dst.suffix.lower() if dst.suffix.lower() in _SHOWN else ".png"
        h, w = sr.shape[:2]
        before = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, img.shape[2])
        before_path = folder / f"{dst.stem}_bicubic{ext}"
        write_image(before_path, before, quality)
        after_path = dst
        if dst.suffix.lower() not in _SHOWN:
            after_path = folder / f"{dst.stem}.png"
            write_image(after_path, sr)
        self.entries.append({
            "name": src.name, "before": before_path, "after": after_path, "in_size": img.shape[1::-1],
            "out_size": (w, h), "seconds": seconds,
        })

    def write(self) -> Path:
        """Write ``index.html`` and return its path."""
        figures = "\n".join(self._figure(e) for e in self.entries)
        total = sum(e["seconds"] for e in self.entries)
        page = _PAGE.format(
            model=html.escape(self.model), count=len(self.entries), total=f"{total:.1f}", figures=figures
        )
        path = self.out_dir / "index.html"
        path.write_text(page, encoding="utf-8")
        return path

    def _figure(self, e: dict) -> str:
        (iw, ih), (ow, oh) = e["in_size"], e["out_size"]
        rel = lambda p: quote(p.relative_to(self.out_dir).as_posix())  # noqa: E731
        caption = f"{html.escape(e['name'])}: {iw}&times;{ih} &rarr; {ow}&times;{oh}, {e['seconds']:.1f} s"
        return _FIGURE.format(
            w=ow, h=oh, after=rel(e["after"]), before=rel(e["before"]), caption=caption
        )


_FIGURE = """<figure class="cmp" style="max-width:{w}px">
  <div class="view" style="aspect-ratio:{w}/{h}">
    <img class="after" src="{after}" alt="model output">
    <img class="before" src="{before}" alt="bicubic">
    <div class="line"></div><span class="tag l">bicubic</span><span class="tag r">model</span>
  </div>
  <input type="range" min="0" max="100" value="50" step="0.1" aria-label="slider">
  <figcaption>{caption}</figcaption>
</figure>"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>srlab upscale: before / after</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; background: #f4f4f4; color: #222; }}
.cmp {{ margin: 0 0 2.5em 0; }}
.view {{ position: relative; width: 100%; overflow: hidden; cursor: ew-resize; user-select: none;
  background: repeating-conic-gradient(#ccc 0 25%, #fff 0 50%) 0 0 / 16px 16px; }}
.view img {{ position: absolute; inset: 0; width: 100%; height: 100%; display: block; }}
.line {{ position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #e33; }}
.tag {{ position: absolute; top: 6px; padding: 1px 6px; background: rgba(0,0,0,.6); color: #fff; font-size: 12px; }}
.tag.l {{ left: 6px; }} .tag.r {{ right: 6px; }}
input[type=range] {{ width: 100%; max-width: 100%; }}
</style></head><body>
<h1>Before / after</h1>
<p>Model: <b>{model}</b>. {count} image(s), {total} s in all. Drag across an image (or its slider):
left of the red line is a bicubic resize of the input, right is the model's output, both at the output's size.</p>
{figures}
<script>
document.querySelectorAll(".cmp").forEach(function (fig) {{
  var range = fig.querySelector("input"), view = fig.querySelector(".view");
  var before = fig.querySelector(".before"), line = fig.querySelector(".line");
  function show() {{
    before.style.clipPath = "inset(0 " + (100 - range.value) + "% 0 0)";
    line.style.left = range.value + "%";
  }}
  function drag(ev) {{
    if (ev.type === "pointermove" && !ev.buttons) return;
    var box = view.getBoundingClientRect();
    range.value = Math.min(100, Math.max(0, 100 * (ev.clientX - box.left) / box.width));
    show();
  }}
  range.addEventListener("input", show);
  view.addEventListener("pointerdown", drag);
  view.addEventListener("pointermove", drag);
  show();
}});
</script>
</body></html>
"""
