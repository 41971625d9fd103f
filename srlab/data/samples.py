"""The default training data: real colour photographs that ship inside the scikit-image wheel.

Only files physically present in ``skimage/data`` are used (nothing goes through pooch, nothing is
downloaded). They are copied once as PNG into a cache folder and then read like any HQ folder.
All are public domain / CC0 or "no known copyright restrictions" per scikit-image's docs, except the
Middlebury 2014 stereo image (free for research use).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from srlab.data.images import ImageReadError, load_rgb
from srlab.errors import SRLabError

# name -> file in skimage/data. Synthetic images, grayscale textures and the right stereo view
# (a near duplicate of the left one, which would leak between train and val) are left out.
SAMPLE_FILES = {
    "astronaut": "astronaut.png",            # 512x512, NASA
    "chelsea": "chelsea.png",                # 451x300, cat
    "coffee": "coffee.png",                  # 600x400, coffee cup
    "hubble_deep_field": "hubble_deep_field.jpg",  # 1000x872, NASA
    "immunohistochemistry": "ihc.png",       # 512x512, microscopy
    "motorcycle": "motorcycle_left.png",     # 741x500, Middlebury stereo (left view)
    "retina": "retina.jpg",                  # 1411x1411, fundus photograph
    "rocket": "rocket.jpg",                  # 427x640, SpaceX launch
}


def default_samples_dir() -> Path:
    """``$SRLAB_SAMPLES_DIR``, else ``$XDG_CACHE_HOME/srlab/samples``, else ``~/.cache/srlab/samples``."""
    if os.environ.get("SRLAB_SAMPLES_DIR"):
        return Path(os.environ["SRLAB_SAMPLES_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "srlab" / "samples"


def skimage_data_dir() -> Path:
    """The folder of images bundled in the scikit-image wheel."""
    try:
        return Path(str(resources.files("skimage.data")))
    except ModuleNotFoundError:
        raise SRLabError("scikit-image is not installed; `pip install scikit-image` or set data=hq_folder") from None


def materialize_samples(dest: str | Path | None = None) -> Path:
    """Write the sample photographs as ``<dest>/<name>.png`` unless already there; return ``dest``.

    Safe to call from several processes at once: each file is written to a temporary name and
    renamed into place.

    Args:
        dest: target folder; ``None`` uses :func:`default_samples_dir`.

    Raises:
        SRLabError: scikit-image or one of its bundled files is missing, or ``dest`` is not writable.
    """
    dest = Path(dest).expanduser() if dest else default_samples_dir()
    src_dir = skimage_data_dir()
    missing = []
    for name, filename in SAMPLE_FILES.items():
        target = dest / f"{name}.png"
        if target.is_file() and target.stat().st_size > 0:
            continue
        src = src_dir / filename
        if not src.is_file():
            missing.append(filename)
            continue
        try:
            img = load_rgb(src)
            dest.mkdir(parents=True, exist_ok=True)
            tmp = dest / f".{name}.{os.getpid()}.tmp.png"
            img.save(tmp, format="PNG")
            os.replace(tmp, target)
        except ImageReadError as exc:
            raise SRLabError(f"bundled sample {exc}; reinstall scikit-image") from None
        except OSError as exc:
            raise SRLabError(f"cannot write the sample images to {dest} ({exc.strerror}); set data.samples_dir") from None
    if missing:
        raise SRLabError(f"{src_dir} lacks {', '.join(missing)}; reinstall scikit-image or use data=hq_folder")
    return dest
