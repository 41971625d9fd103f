"""LPIPS (AlexNet, VGG) and DISTS by torchmetrics' networks, with their backbone weights told, never hung on.

torchmetrics ships the small learned parts (LPIPS' linear layers, DISTS' alpha/beta) and builds the
ImageNet backbones with torchvision, which reads them from torch.hub's cache
(``<hub dir>/checkpoints/<file>``) and downloads them when missing. srlab checks that file first:
present, it lets torchvision load it (the published loading code, unchanged); missing, it downloads
it only when the host answers within 2 seconds, and otherwise says in one line which file to place
where. Every metric here is a distance: lower is better.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import numpy as np
import torch

from srlab.errors import SRLabError, first_line
from srlab.metrics.fidelity import to_uint8_hwc

# config and column names; all three are distances (0 for identical images)
PERCEPTUAL = ("lpips", "lpips_vgg", "dists")
TITLES = {"lpips": "LPIPS", "lpips_vgg": "LPIPS-VGG", "dists": "DISTS"}
# the least image side (after the crop border) each network takes: AlexNet's stride-4 conv and
# two 3x3 max-pools need 31 px, VGG16's four pools 16 px; DISTS pools with padding
MIN_SIDE = {"lpips": 31, "lpips_vgg": 16, "dists": 1}
_TIMEOUT = 2.0  # seconds the download host gets to answer before the weights count as unreachable


@dataclass(frozen=True)
class Backbone:
    """The torchvision weights a metric's network loads: the ``DEFAULT`` of the weights enum torchmetrics asks for."""

    arch: str
    url: str

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# written out, not read from torchvision's enums: importing torchvision.models takes seconds, and the
# offline answer must come in well under five (tests/metrics check they equal torchvision's DEFAULTs)
BACKBONES = {
    "lpips": Backbone("alexnet", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "lpips_vgg": Backbone("vgg16", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "dists": Backbone("vgg16", "https://download.pytorch.org/models/vgg16-397923af.pth"),
}


def backbone(name: str) -> Backbone:
    """The ImageNet weights file of metric ``name``."""
    check_names([name])
    return BACKBONES[name]


def check_names(names, key: str = "metrics") -> list[str]:
    """The perceptual names among ``names`` (``psnr`` and ``ssim`` are always measured and pass).

    Raises:
        SRLabError: an unknown name, naming ``key``.
    """
    out = []
    for name in [str(n) for n in names]:
        if name in ("psnr", "ssim"):
            continue
        if name not in PERCEPTUAL:
            raise SRLabError(f"{key}: unknown metric {name!r}; known: psnr, ssim, {', '.join(PERCEPTUAL)}")
        if name not in out:
            out.append(name)
    return out


def lower_is_better(metric: str) -> bool:
    """True for a logged perceptual metric, e.g. ``val/Set5/lpips`` or ``val/Set5/dists_bicubic``."""
    return metric.rsplit("/", 1)[-1].removesuffix("_bicubic") in PERCEPTUAL


def weights_path(name: str, hub_dir: str | Path | None = None) -> Path:
    """Where torchvision reads metric ``name``'s backbone: ``<hub_dir or torch.hub.get_dir()>/checkpoints/<file>``."""
    return Path(hub_dir or torch.hub.get_dir()).expanduser() / "checkpoints" / backbone(name).file


def _unreachable(url: str) -> str:
    """'' when ``url`` answers a HEAD request within :data:`_TIMEOUT` seconds, else why it did not.

    HTTP, not a bare TCP connect: a proxy may accept connections for a host it cannot reach.
    """
    try:
        with urlopen(Request(url, method="HEAD"), timeout=_TIMEOUT):
            return ""
    except (OSError, ValueError) as exc:  # URLError, timeouts and TLS failures are OSErrors
        why = str(getattr(exc, "reason", exc)).strip()
        return f"{urlparse(url).hostname} is unreachable ({why.splitlines()[0] if why else type(exc).__name__})"


def ensure_weights(name: str, hub_dir: str | Path | None = None, download: bool = True) -> str:
    """Make sure metric ``name``'s backbone file is on disk; '' when it is, else the one-line reason.

    Args:
        name: ``lpips``, ``lpips_vgg`` or ``dists``.
        hub_dir: torch.hub's folder to read (default: torch's, ``$TORCH_HOME/hub``).
        download: fetch a missing file (hash-checked, as torchvision would) when its host answers.
    """
    path, url = weights_path(name, hub_dir), backbone(name).url
    if path.is_file():
        return ""
    place = f"{name} needs {path.name}: place it in {path.parent}/ (from {url})"
    if not download:
        return place
    unreachable = _unreachable(url)
    if unreachable:
        return f"{place}; {unreachable}"
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = re.search(torch.hub.HASH_REGEX, path.name)
    try:  # writes a temporary file and moves it into place: an interrupted download leaves no file
        torch.hub.download_url_to_file(url, str(path), hash_prefix[1] if hash_prefix else None)
    except (OSError, RuntimeError) as exc:  # a dropped connection; RuntimeError: the hash does not match
        return f"{place}; the download failed ({first_line(exc, limit=None)})"
    return ""


@contextmanager
def _hub(hub_dir: str | Path | None):
    """torch.hub reads ``hub_dir`` while torchvision loads a backbone, then reads what it read before."""
    if hub_dir is None:
        yield
        return
    # None means torch's default ($TORCH_HOME/hub), which set_dir cannot put back
    saved = torch.hub._hub_dir
    torch.hub.set_dir(str(Path(hub_dir).expanduser()))
    try:
        yield
    finally:
        torch.hub._hub_dir = saved


def build_network(name: str, hub_dir: str | Path | None = None) -> torch.nn.Module:
    """torchmetrics' network of metric ``name`` on the CPU; its backbone file must be on disk (:func:`ensure_weights`)."""
    reason = ensure_weights(name, hub_dir, download=False)
    if reason:  # never let torchvision start a download that could hang
        raise SRLabError(reason)
    with _hub(hub_dir):
        if name == "dists":
            from torchmetrics.functional.image.dists import DISTSNetwork

            # the network itself: torchmetrics' metric class builds (and loads) a new one every update
            return DISTSNetwork().eval()
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        return LearnedPerceptualImagePatchSimilarity(net_type="alex" if name == "lpips" else "vgg", normalize=True)


class PerceptualMetric:
    """One perceptual distance between uint8 images, its network built on first use.

    Args:
        name: ``lpips`` (AlexNet, what SR papers report), ``lpips_vgg`` or ``dists``.
        hub_dir: torch.hub's folder holding the backbone in ``checkpoints/`` (default: torch's).
        device: where the network runs.
    """

    def __init__(self, name: str, hub_dir: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        check_names([name])
        self.name, self.hub_dir, self.device = name, hub_dir, torch.device(device)
        self._net: torch.nn.Module | None = None

    @torch.inference_mode()
    def __call__(self, img, img2, crop_border: int = 0) -> float:
        """The distance between two images (uint8 HWC or anything :func:`to_uint8_hwc` takes), lower is closer."""
        a, b = to_uint8_hwc(img), to_uint8_hwc(img2)
        if crop_border > 0:
            a = a[crop_border:-crop_border, crop_border:-crop_border]
            b = b[crop_border:-crop_border, crop_border:-crop_border]
        if min(a.shape[:2]) < MIN_SIDE[self.name]:
            raise SRLabError(f"{TITLES[self.name]} needs images of at least {MIN_SIDE[self.name]} px a side after "
                             f"the {crop_border} px border crop, got {a.shape[1]}x{a.shape[0]}")
        if self._net is None:
            self._net = build_network(self.name, self.hub_dir).to(self.device)
        x, y = _as_tensor(a, self.device), _as_tensor(b, self.device)
        if self.name == "dists":
            return float(self._net(x, y))
        self._net.update(x, y)
        value = float(self._net.compute())
        self._net.reset()
        return value


def _as_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """A uint8 HWC (or HW) image as a (1, 3, H, W) float tensor in [0, 1]."""
    img = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(255).to(device)
