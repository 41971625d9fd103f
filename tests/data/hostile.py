"""Build a folder of hostile image files (tiny, in tmp_path) shared by the data and prepare tests."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# name -> None for a usable image, or a piece of the reason it must be reported with
GOOD = ["UPPER.JPG", "cmyk.jpg", "g16.png", "gray.png", "la.png", "palette.png", "rgb.png", "rgba.png",
        "small.png", "sub/nested.png"]
BAD_AT_SCAN = {"bomb.png": "above the limit", "loop.png": "symlink loop", "notimage.jpg": "not an image",
               "truncated.png": "truncated", "zero.png": "empty file"}
BAD_AT_DECODE = {"truncated.jpg": "truncated"}  # JPEG headers are intact: only a full decode finds it
BAD = {**BAD_AT_SCAN, **BAD_AT_DECODE}
SIZE = (48, 40)  # (w, h) of every good image except small.png
SMALL = (12, 12)


def rgb_array(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Smooth-ish random RGB (h, w, 3) uint8 array (smooth so JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC))


def _bomb_png(path: Path, w: int = 20000, h: int = 20000) -> None:
    """A valid PNG header claiming w x h pixels with almost no data (no real allocation)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def make_hostile(folder: Path) -> Path:
    """Write the hostile set into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir()
    a = rgb_array(0)
    Image.fromarray(a).save(folder / "rgb.png")
    Image.fromarray(rgb_array(1)).save(folder / "sub" / "nested.png")
    Image.fromarray(rgb_array(2)).save(folder / "UPPER.JPG", quality=95)
    Image.fromarray(a).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(a).convert("L").save(folder / "gray.png")
    Image.fromarray(a).convert("LA").save(folder / "la.png")
    Image.fromarray(np.dstack([a, np.full(a.shape[:2], 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(a).convert("P").save(folder / "palette.png", transparency=0)
    g16 = np.linspace(0, 65535, SIZE[0] * SIZE[1]).reshape(SIZE[1], SIZE[0]).astype(np.uint16)
    Image.fromarray(g16).save(folder / "g16.png")
    Image.fromarray(rgb_array(3, SMALL)).save(folder / "small.png")
    data = (folder / "rgb.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(rgb_array(4)).save(folder / "full.jpg", quality=95)
    data = (folder / "full.jpg").read_bytes()
    (folder / "full.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "zero.png").touch()
    (folder / "notimage.jpg").write_text("this is not a JPEG\n")
    (folder / "notes.txt").write_text("ignored: not an image extension\n")
    Image.fromarray(a).save(folder / ".hidden.png")  # ignored: hidden
    _bomb_png(folder / "bomb.png")
    os.symlink("loop.png", folder / "loop.png")
    os.symlink(".", folder / "sub" / "dirloop", target_is_directory=True)  # must not be walked forever
    return folder
