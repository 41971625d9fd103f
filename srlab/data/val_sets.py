"""Whole-image benchmark validation during training (``data.val_sets``), LR made as ``evaluate`` makes it.

Each entry is a benchmark folder (``<set>/HR`` with optional ``<set>/LQ`` or ``LR``, or a folder of
HR images, exactly what ``python -m srlab.evaluate benchmarks=[...]`` reads)::

    val_sets:
      - {name: Set5, dir: /data/Set5, degradation: bicubic, resize: matlab, metrics: [lpips, dists]}
      - {name: Set14, dir: /data/Set14}

Every entry is checked when the data module is set up, before any training: a missing or empty
folder, an unreadable image, or one too small to measure stops the run with one line naming the
entry, and so does a perceptual metric whose backbone file is missing and cannot be downloaded
(:func:`srlab.metrics.perceptual.ensure_weights`). Samples are whole uint8 images (batch size 1), each
set its own dataloader.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from torch.utils.data import Dataset

from srlab.data.benchmarks import Benchmark, check_lq_protocol, find_benchmark, load_pair
from srlab.data.images import scan_images
from srlab.data.resize import resize_uint8
from srlab.config import TILE_PAD
from srlab.errors import ConfigError, SRLabError
from srlab.metrics import METRICS, PERCEPTUAL
from srlab.metrics.perceptual import MIN_SIDE, TITLES, check_names, ensure_weights

# SSIM's Gaussian window (srlab.metrics): the least HR side left after the crop border
_SSIM_WINDOW = 11
# metrics.METRICS -> the name logged under val/<set>/: RGB as plain psnr/ssim, as BasicSR logs them
VAL_SET_KEYS = {"psnr_rgb": "psnr", "ssim_rgb": "ssim", "psnr_y": "psnr_y", "ssim_y": "ssim_y",
                **{name: name for name in PERCEPTUAL}}


@dataclass(frozen=True)
class ValSetSpec:
    """One ``data.val_sets`` entry; the LR keys mean what they mean in ``conf/evaluate.yaml``.

    Args:
        name: the metric prefix, ``val/<name>/psnr_y``.
        dir: the benchmark folder.
        degradation: ``bicubic`` (plain bicubic 1/scale), ``blur`` (the report's bicubic + blur) or
            ``realesrgan`` (the fixed synthetic real-world set of ``evaluate ... degradation=realesrgan seed=0``).
        resize: bicubic implementation of the LR and of the bicubic row, ``pil`` or ``matlab``.
        blur_radius: Gaussian blur radius of ``degradation: blur``.
        tile: inference tile size in LR pixels for large images (0: whole image), as ``evaluate``'s.
        tile_pad: context around each tile, as ``evaluate``'s.
        metrics: perceptual metrics beside PSNR/SSIM (``lpips``, ``lpips_vgg``, ``dists``; lower is
            better), logged as ``val/<name>/lpips`` ...; ``psnr`` and ``ssim`` may be listed, they always run.
        hub_dir: torch.hub's folder whose ``checkpoints/`` holds their backbones, as ``evaluate``'s.
    """

    name: str
    dir: str
    degradation: str = "bicubic"
    resize: str = "pil"
    blur_radius: float = 1.5
    tile: int = 0
    tile_pad: int = TILE_PAD
    metrics: tuple[str, ...] = ()
    hub_dir: str | None = None


def crops_validated(val_fraction: float | None, val_dir, val_sets) -> bool:
    """The one rule for what validates besides ``val_sets``: whether validation crops run.

    ``val_dir`` given: its crops. Else ``val_fraction`` in (0, 1) of the training images; 0 holds
    nothing out, allowed only when ``val_sets`` validate instead.

    Raises:
        ConfigError: naming ``data.val_fraction``.
    """
    if val_dir is not None:
        return True
    if val_fraction == 0 and val_sets:
        return False
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1), or set data.val_dir "
                          "(0 holds nothing out: then give data.val_sets)")
    return True


def min_side(scale: int, metrics=()) -> int:
    """Least HR side (after modcrop) whose PSNR/SSIM (and perceptual ``metrics``) can be measured with
    ``crop_border = scale``."""
    need = 2 * scale + max([_SSIM_WINDOW, *(MIN_SIDE[m] for m in metrics)])
    return -(-need // scale) * scale


def parse_val_sets(entries, scale: int, max_image_pixels: int | None = None) -> list["BenchmarkValSet"]:
    """Check every ``data.val_sets`` entry and build its dataset.

    Args:
        entries: the list from the config (mappings with ``name``, ``dir`` and optional LR keys).
        scale: the SR factor (LQ files, modcrop, crop border).
        max_image_pixels: the decompression-bomb limit.

    Raises:
        ConfigError / SRLabError: one line naming the entry (``data.val_sets[i] (name)``).
    """
    if entries is None:
        return []
    if isinstance(entries, (str, dict)) or not hasattr(entries, "__iter__"):
        raise ConfigError(f"data.val_sets must be a list of {{name, dir}} entries, got {entries!r}")
    known = {f.name for f in fields(ValSetSpec)}
    sets: list[BenchmarkValSet] = []
    for i, entry in enumerate(entries):
        key = f"data.val_sets[{i}]"
        if not isinstance(entry, dict) or not {"name", "dir"} <= set(entry):
            raise ConfigError(f"{key}: give a mapping with name and dir, e.g. {{name: Set5, dir: /data/Set5}}; got {entry!r}")
        if set(entry) - known:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(sorted(set(entry) - known))}; known: {', '.join(sorted(known))}")
        spec = ValSetSpec(**{**entry, "metrics": tuple(check_names(entry.get("metrics") or [], key=f"{key}.metrics"))})
        if not isinstance(spec.name, str) or not spec.name or "/" in spec.name:
            raise ConfigError(f"{key}.name={spec.name!r}: give a non-empty name without '/' (it becomes val/<name>/psnr_y)")
        if spec.name in {s.spec.name for s in sets}:
            raise ConfigError(f"{key}.name={spec.name}: two val_sets share this name; names must differ")
        key = f"{key} ({spec.name})"
        check_lq_protocol(spec.degradation, spec.resize, spec.blur_radius, key=f"{key}.")
        if not isinstance(spec.tile, int) or spec.tile < 0 or not isinstance(spec.tile_pad, int) or spec.tile_pad < 0:
            raise ConfigError(f"{key}: tile and tile_pad must be integers >= 0, got {spec.tile!r}, {spec.tile_pad!r}")
        bench = find_benchmark(spec.dir, scale, key=f"{key}.dir")
        _check_images(bench, scale, max_image_pixels, key, spec.metrics)
        for name in spec.metrics:  # before any training: the backbone is here, or fetched now, or told
            reason = ensure_weights(name, spec.hub_dir)
            if reason:
                raise SRLabError(f"{key}.metrics: {reason}")
        sets.append(BenchmarkValSet(spec, bench, scale))
    return sets


def _check_images(bench: Benchmark, scale: int, max_image_pixels: int | None, key: str, metrics=()) -> None:
    """Every HR (and given LQ) file readable, and every HR big enough to measure after modcrop."""
    files = [*bench.hr, *bench.lq.values()]
    sizes, bad = scan_images(files, max_image_pixels)
    if bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise SRLabError(f"{key}: {path}: {reason}{more}; a benchmark must be complete")
    need = min_side(scale, metrics)
    what = "PSNR/SSIM" + "".join(f"/{TITLES[m]}" for m in metrics if min_side(scale, [m]) > min_side(scale))
    for p in bench.hr:
        w, h = sizes[p]
        if min(w - w % scale, h - h % scale) < need:
            raise SRLabError(f"{key}: {p.name} is {w}x{h}, smaller than {need} px, the least a whole-image "
                             f"{what} needs at x{scale} ({scale} px border cropped each side, 11 px SSIM window)")


class BenchmarkValSet(Dataset):
    """One benchmark as whole-image validation samples, LR made by :func:`srlab.data.benchmarks.load_pair`.

    A sample is ``{"set", "index", "image", "hr", "lq", "bicubic", "tile", "tile_pad"}`` with uint8
    (H, W, 3) arrays: ``hr`` modcropped, ``lq`` its LR, ``bicubic`` the LR upscaled by ``resize``
    (evaluate's bicubic row). Samples are made once and kept (benchmarks are small).
    """

    def __init__(self, spec: ValSetSpec, bench: Benchmark, scale: int) -> None:
        self.spec, self.bench, self.scale = spec, bench, scale
        self._cache: dict[int, dict] = {}

    @property
    def items(self) -> list[Path]:
        return self.bench.hr

    def __len__(self) -> int:
        return len(self.bench.hr)

    def __getitem__(self, index: int) -> dict:
        if index not in self._cache:
            s, path = self.spec, self.bench.hr[index]
            hr, lq = load_pair(self.bench, path, self.scale, s.degradation, s.resize, s.blur_radius)
            self._cache[index] = {"set": s.name, "index": index, "image": path.name, "hr": hr, "lq": lq,
                                  "bicubic": resize_uint8(lq, hr.shape[:2], s.resize),
                                  "tile": s.tile, "tile_pad": s.tile_pad, "metrics": s.metrics,
                                  "hub_dir": s.hub_dir}
        return self._cache[index]


def unbatched(samples: list[dict]) -> dict:
    """``collate_fn`` of the batch-1 val-set loaders: the sample itself, arrays left as uint8 numpy."""
    return samples[0]


def val_set_metric_names(entries) -> list[str]:
    """Every metric whole-image validation logs for the ``data.val_sets`` ``entries`` (mappings with
    ``name`` and optional ``metrics``), to check ``monitor`` against and to tell W&B how to sum them up."""
    names = []
    for entry in entries or []:
        metrics = [*METRICS, *(m for m in PERCEPTUAL if m in [str(x) for x in (entry.get("metrics") or [])])]
        names += [f"val/{entry.get('name')}/{VAL_SET_KEYS[m]}{suffix}" for m in metrics for suffix in ("", "_bicubic")]
    return names
