"""Reading user images safely: any common mode becomes 8-bit RGB, any bad file becomes a one-line reason.

Training reads 8-bit RGB (:func:`load_rgb`); ``srlab.upscale`` reads an image as the kind it is (gray,
alpha, 16 bit: :func:`read_image`) and writes its result back as that kind (:func:`write_image`).

Pillow's decompression-bomb guard stays on. Its limit is process-wide (``Image.MAX_IMAGE_PIXELS``);
:func:`set_max_image_pixels` moves it (config key ``data.max_image_pixels``, ``--max-image-pixels`` in
``srlab.prepare``). ``LOAD_TRUNCATED_IMAGES`` is never set: a truncated file is reported, not half-read.
"""

from __future__ import annotations

import errno
import io
import math
import os
import re
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from srlab.errors import SRLabError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# Pillow refuses images above 2 * Image.MAX_IMAGE_PIXELS; this is that default error threshold.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
_EXIF_ORIENTATION = 0x0112
_max_pixels = DEFAULT_MAX_IMAGE_PIXELS


class ImageReadError(SRLabError):
    """A file that cannot be used as an image; ``reason`` says why in a few words."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def set_max_image_pixels(n: int) -> None:
    """Set the largest image (width * height) that will be decoded, process-wide.

    Args:
        n: pixel limit; larger files are refused with an :class:`ImageReadError` before decoding.
    """
    global _max_pixels
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SRLabError(f"max_image_pixels must be a positive integer, got {n!r} (data.max_image_pixels)")
    _max_pixels = n
    # Pillow errors above 2 * MAX_IMAGE_PIXELS; ceil keeps its threshold >= n so our own check decides.
    Image.MAX_IMAGE_PIXELS = math.ceil(n / 2)


def get_max_image_pixels() -> int:
    """Return the current pixel limit set by :func:`set_max_image_pixels`."""
    return _max_pixels


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """List image files (png, jpg, jpeg, webp, bmp, tif, tiff; any letter case), sorted.

    Symlinked folders are not entered (so a link loop cannot hang the walk); a symlinked *file* is
    listed, and a broken or looping one is later reported as bad by :func:`load_rgb`. Hidden
    entries (``.name``, e.g. macOS ``._photo.jpg``) are ignored.

    Args:
        folder: the folder to search.
        recursive: also search subfolders.

    Raises:
        SRLabError: ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SRLabError(f"{folder} {what}; point it to a folder of images")
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
        if not recursive:
            break
    return sorted(found)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop, the path never reaches a file"
    if exc.errno == errno.ENOENT:
        return "missing file (or a broken symlink)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"unreadable ({exc.strerror or exc})"


# where a user raises the pixel limit; srlab.upscale names only its own option
LIMIT_SETTING = "data.max_image_pixels / --max-image-pixels"


def _bomb_reason(pixels: int | None, limit: int, setting: str) -> str:
    count = f"{pixels} pixels" if pixels is not None else "more pixels than allowed"
    return f"image has {count}, above the limit {limit} ({setting}; raise it only for files you trust)"


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        raise ImageReadError(path, _os_reason(exc)) from None
    if not path.is_file():
        raise ImageReadError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


def open_image(path: Path | io.BytesIO, max_pixels: int | None = None, setting: str = LIMIT_SETTING,
               name: str | None = None) -> Image.Image:
    """Open lazily (header only) with the pixel limit enforced; the caller closes the image.

    Args:
        path: image file, or its encoded bytes in a ``BytesIO`` (an LMDB record).
        max_pixels: as in :func:`load_rgb`.
        setting: the option a refusal names for raising the limit.
        name: what errors call it (default: ``path``).

    Raises:
        ImageReadError: not an image, a corrupt header, an OS error, or too many pixels.
    """
    limit = min(max_pixels or _max_pixels, _max_pixels)
    source, path = path, path if name is None else name  # errors name ``path``
    try:
        img = Image.open(source)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageReadError(path, _bomb_reason(int(found.group(1)) if found else None, limit, setting)) from None
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image (Pillow does not recognise its format)") from None
    except OSError as exc:
        raise ImageReadError(path, _os_reason(exc)) from None
    except Exception as exc:  # noqa: BLE001 -- decoders raise SyntaxError/ValueError/struct.error on junk
        raise ImageReadError(path, f"corrupt header ({type(exc).__name__}: {exc})") from None
    w, h = img.size
    if w * h > limit:
        img.close()
        raise ImageReadError(path, _bomb_reason(w * h, limit, setting))
    return img


def _decode_error(path: Path, exc: Exception) -> ImageReadError:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return ImageReadError(path, f"truncated image data ({text})")
    return ImageReadError(path, f"corrupt image data ({type(exc).__name__}: {text})")


def _scale_16bit(img: Image.Image) -> Image.Image:
    """Map a 16-bit (or int32) grayscale image to 8 bits with rounding: 0 -> 0, 65535 -> 255."""
    arr = np.asarray(img).astype(np.int64)
    arr = np.clip(arr, 0, 65535)
    return Image.fromarray(((arr * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any common mode to 8-bit RGB.

    Alpha is dropped, not composited: the stored colour under transparent pixels is kept, which for
    photographs is the photo itself. Palette images with transparency go through RGBA first so Pillow
    reads the transparency entry correctly. 16-bit grayscale is rescaled (65535 -> 255), not clipped;
    16-bit RGB is already reduced to 8 bits by Pillow's PNG/TIFF decoder. CMYK uses Pillow's conversion.

    Args:
        img: a loaded PIL image.

    Raises:
        ValueError: the mode has no defined 8-bit meaning (floating point ``F``).
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _scale_16bit(img).convert("RGB")
    if mode == "F":
        raise ValueError("floating-point image (mode F) has no defined 8-bit range; save it as 8/16-bit")
    if mode == "P" and "transparency" in img.info or mode == "PA":
        return img.convert("RGBA").convert("RGB")
    if mode == "LA":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Read an image file fully and return it as an 8-bit RGB PIL image, EXIF orientation applied.

    Args:
        path: image file.
        max_pixels: refuse images with more pixels than this; ``None`` uses the process-wide limit
            (:func:`set_max_image_pixels`). A value above that limit has no effect.

    Raises:
        ImageReadError: zero-byte, truncated, corrupt or non-image file, too many pixels, missing,
            unreadable, or a symlink loop. The message is ``<path>: <reason>``.
    """
    path = Path(path)
    _check_file(path)
    return _decode_rgb(path, path, max_pixels)


def decode_rgb(data: bytes | memoryview, name: str, max_pixels: int | None = None) -> Image.Image:
    """:func:`load_rgb` for an encoded image held in memory (an LMDB record's value).

    Args:
        data: the encoded file (PNG, JPEG, ...).
        name: what errors call it, e.g. ``train_HR.lmdb/0001_s001``.
        max_pixels: as in :func:`load_rgb`.

    Raises:
        ImageReadError: as :func:`load_rgb`, named ``name``.
    """
    if not len(data):
        raise ImageReadError(name, "empty record (0 bytes)")
    return _decode_rgb(io.BytesIO(data), name, max_pixels)


def _decode_rgb(source: Path | io.BytesIO, path: Path | str, max_pixels: int | None) -> Image.Image:
    with warnings.catch_warnings():
        # We enforce our own limit above; Pillow's warning at half of it is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = open_image(source, max_pixels, name=None if source is path else str(path))
        try:
            with img:
                img.load()  # full decode: truncation and corrupt data surface here
                out = to_rgb(ImageOps.exif_transpose(img))
                out.load()
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001 -- decoders raise OSError/SyntaxError/ValueError/...
            raise _decode_error(path, exc) from None
    return out


def image_size(path: str | Path, max_pixels: int | None = None, verify: bool = True) -> tuple[int, int]:
    """Return (width, height) after EXIF orientation, reading headers only (cheap).

    Args:
        path: image file.
        max_pixels: as in :func:`load_rgb`.
        verify: also run Pillow's ``verify()`` (PNG: checks every chunk's CRC, catching most
            truncation without decoding). A file that passes can still fail in :func:`load_rgb`.

    Raises:
        ImageReadError: as :func:`load_rgb`, for the problems visible without decoding.
    """
    path = Path(path)
    _check_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            if verify:  # verify() must run right after open and leaves the image unusable: open twice
                with open_image(path, max_pixels) as img:
                    img.verify()
            with open_image(path, max_pixels) as img:
                w, h = img.size
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _decode_error(path, exc) from None
    # EXIF orientations 5..8 include a 90-degree turn.
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def scan_images(paths: list[Path], max_pixels: int | None = None) -> tuple[dict[Path, tuple[int, int]], list[tuple[Path, str]]]:
    """Check many files cheaply (headers + verify).

    Args:
        paths: files to check.
        max_pixels: as in :func:`load_rgb`.

    Returns:
        ``(sizes, bad)``: ``{path: (w, h)}`` for files that look good, ``[(path, reason)]`` for the rest.
    """
    sizes, bad = {}, []
    for p in paths:
        try:
            sizes[p] = image_size(p, max_pixels)
        except ImageReadError as exc:
            bad.append((p, exc.reason))
    return sizes, bad


# ---------------------------------------------------------------- any kind in, the same kind out (srlab.upscale)
# numpy equivalents of ImageOps.exif_transpose, for 16-bit arrays Pillow cannot hold
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def read_image(path: Path) -> np.ndarray:
    """Read a file as (H, W, C) uint8 or uint16, C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).

    Raises:
        ImageReadError: missing, empty, corrupt, truncated or unsupported file.
    """
    if not path.is_file():
        raise ImageReadError(path, "missing or not a regular file")
    # training's pixel limit and header checks; Pillow's warning at half the limit is silenced so
    # files between limit/2 and the limit behave as in training
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = open_image(path, setting="--max-image-pixels")
    try:
        with im:
            # the tile list must be read before getexif(), which decodes a PNG to reach chunks after IDAT
            sixteen = im.mode.startswith("I;16") or any("16" in str(t.args) for t in (im.tile or []))
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
            arr = None
            if sixteen:
                # Pillow reduces 16-bit RGB(A) to 8 bits: read those with OpenCV (orientation applied below)
                arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if arr is not None and arr.dtype != np.uint16:
                    arr = None  # e.g. a 16-bit-per-pixel (RGB565) BMP: 8-bit data, Pillow's path is right
            if arr is not None:
                if arr.ndim == 3:
                    arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
                arr = np.ascontiguousarray(_ORIENT.get(orientation, lambda a: a)(arr))
            else:
                im.load()
                arr = _to_array(ImageOps.exif_transpose(im))
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError/SyntaxError/ValueError on junk
        raise ImageReadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
    return arr if arr.ndim == 3 else arr[..., None]


def _to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "F":
        raise ValueError("floating-point image (mode F) is not supported; save it as 8 or 16 bit")
    if mode == "I":  # 32-bit integer gray (some TIFFs): values are 16-bit in practice
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    if mode in ("1", "L", "LA", "RGB", "RGBA"):
        return np.asarray(im.convert("L") if mode == "1" else im)
    if mode in ("P", "PA"):
        return np.asarray(im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB"))
    return np.asarray(im.convert("RGBA" if "A" in mode else "RGB"))  # CMYK, YCbCr, LAB, RGBX ...


def write_image(path: Path, img: np.ndarray, quality: int | None = None) -> None:
    """Write (H, W, C) uint8/uint16 atomically (temp file + rename: a symlink at ``path`` is replaced, not followed).

    The format follows ``path``'s extension. 16-bit data stays 16-bit in PNG and TIFF and is rounded
    to 8 bits for the rest. No metadata is written: no EXIF, so no stale orientation tag.

    Args:
        path: the output file.
        img: (H, W, C) uint8/uint16, C = 1, 2, 3 or 4.
        quality: JPEG/WebP quality 1..100; ``None`` is JPEG 95 and lossless WebP.
    """
    if img.dtype == np.uint16 and path.suffix.lower() not in (".png", ".tif", ".tiff"):
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".srlab-", suffix=path.suffix)
    os.close(fd)
    try:
        if img.dtype == np.uint16:
            if img.shape[2] == 2:  # OpenCV writes 1, 3 or 4 channels: gray+alpha goes out as RGBA
                img = np.concatenate([np.repeat(img[..., :1], 3, axis=2), img[..., 1:]], axis=2)
            bgr = img[..., 0] if img.shape[2] == 1 else img[..., [2, 1, 0, 3][: img.shape[2]]]
            if not cv2.imwrite(tmp, np.ascontiguousarray(bgr)):
                raise OSError(f"OpenCV could not write {path.suffix}")
        else:
            pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
            options = _save_options(path.suffix.lower(), quality)
            pil.save(tmp, format=Image.registered_extensions()[path.suffix.lower()], **options)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _save_options(ext: str, quality: int | None) -> dict:
    if ext in (".jpg", ".jpeg"):
        return {"quality": quality or 95}
    if ext == ".webp":
        return {"lossless": True} if quality is None else {"quality": quality}
    return {}
