"""Datasets yielding ``{"lq", "gt", "path"}``: HQ folders degraded on the fly, and paired HQ/LQ folders.

Bad files are found when the dataset is built (headers + Pillow ``verify``, cheap) and skipped with a
logged warning that names each one and why; ``dataset.skipped`` keeps that list. A file that still fails
its full decode during training is logged once, counted in ``dataset.load_failures`` and replaced by
another draw, so one bad file cannot stop a run.

Images smaller than the patch are **skipped** (with a warning naming them), not padded: mirrored
padding would teach the network fake content. Lower ``data.patch_size`` to use small images.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from srlab.data import transforms as T
from srlab.data.degradations import build_degradation, check_patch_sizes, modcrop
from srlab.data.images import ImageReadError, list_images, load_rgb, scan_images
from srlab.errors import ConfigError, SRLabError

log = logging.getLogger("srlab.data")
_MAX_REDRAWS = 20


def report_skipped(where: str, skipped: list[tuple[Path, str]]) -> None:
    """Log one warning naming every skipped file (up to 50) and its reason."""
    if not skipped:
        return
    lines = [f"  {p}: {reason}" for p, reason in skipped[:50]]
    more = [f"  ... and {len(skipped) - 50} more"] if len(skipped) > 50 else []
    log.warning("%s: skipped %d file(s):\n%s", where, len(skipped), "\n".join(lines + more))


def _where(source: str | Path | Sequence) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return os.path.commonpath([str(p) for p in source]) if source else "<no files>"


class _SRDataset(Dataset):
    """Shared sampling logic: epoch length, per-sample RNG, re-draw on load failure, tensor output."""

    def __init__(self, scale, patch_size, augment, train, val_patch_size, samples_per_epoch, max_image_pixels,
                 cache_images=False):
        check_patch_sizes(scale, patch_size, val_patch_size)  # a dataset built on its own (not by the data module)
        self.scale, self.patch_size, self.train = scale, patch_size, train
        self.val_patch_size = val_patch_size
        self.augment = T.augment_config(augment)
        self.samples_per_epoch, self.max_image_pixels = samples_per_epoch, max_image_pixels
        self.items: list = []
        self.skipped: list[tuple[Path, str]] = []
        self.load_failures = 0
        self._failed: set[str] = set()
        self.cache_images, self._cache = cache_images, {}

    def _read(self, path) -> np.ndarray:
        """Decode a file or a record (anything with ``load_rgb``, e.g. an LMDB record) to (H, W, 3) uint8;
        kept in memory (per worker) when ``cache_images`` is on."""
        if path in self._cache:
            return self._cache[path]
        read = path.load_rgb if hasattr(path, "load_rgb") else functools.partial(load_rgb, path)
        arr = np.asarray(read(self.max_image_pixels))
        if self.cache_images:
            self._cache[path] = arr
        return arr

    def _min_side(self) -> int:
        """Smallest HQ side an image needs for this dataset's crops."""
        return self.patch_size if self.train else (self.val_patch_size or self.scale)

    def __len__(self) -> int:
        if self.train and self.samples_per_epoch:
            return int(self.samples_per_epoch)
        return len(self.items)

    def _rng(self, index: int, seed: int | None) -> np.random.Generator:
        # Training: the seed the ResumableSampler paired with the index (a function of the run's seed,
        # the epoch and the position, so a resumed run cuts the same patches); indexed without one,
        # a draw from torch's RNG, which DataLoader seeds per worker and epoch. Validation is fixed per index.
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item()) if self.train else index
        return np.random.default_rng(seed)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        index, seed = index if isinstance(index, tuple) else (index, None)
        rng = self._rng(index, seed)
        i, error = index % len(self.items), None
        for _ in range(_MAX_REDRAWS):
            try:
                gt, extra = self._sample(self.items[i], rng)
                break
            except ImageReadError as exc:
                self.load_failures, error = self.load_failures + 1, exc
                if exc.path not in self._failed:
                    self._failed.add(exc.path)
                    log.warning("skipping a file that failed to decode (%s); drawing another sample", exc)
                i = int(rng.integers(len(self.items))) if self.train else (i + 1) % len(self.items)
        else:
            raise SRLabError(f"{_MAX_REDRAWS} image loads failed in a row (last: {error}); check the data folder")
        item = self.items[i]
        # uint8 (3, H, W); the LightningModule makes it float (and normalizes it) on the device
        out = {"gt": T.to_uint8_tensor(gt), **extra, "path": str(item[0] if isinstance(item, tuple) else item)}
        if "lq" in out:  # (3, h, w) beside (3, h*s, w*s); without it the LQ is made on the device
            out["lq"] = T.to_uint8_tensor(out["lq"])
        return out

    def _sample(self, item, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """The HQ array and what goes beside it: ``{"lq": array}`` or the degradation's drawn parameters."""
        raise NotImplementedError


class HQFolderDataset(_SRDataset):
    """HQ images only; LQ made on the fly by the configured degradation after augmentation.

    Training: a random HQ patch is cut (a larger region when an affine warp is drawn, so the warp's
    replicated border mostly falls outside), augmented, then degraded: with the ``bicubic`` kind in
    the worker, so ``lq == degrade(gt)`` exactly; with ``realesrgan`` the worker draws the parameters
    and the batch is degraded on its device (a crop larger than the patch when the kernels need it,
    cut to the patch there). Validation: the center ``val_patch_size`` crop, or the whole modcropped
    image when it is ``None``.

    Args:
        source: a folder (searched recursively) or a list of image files.
        scale: SR factor.
        patch_size: HQ training patch side, a multiple of ``scale``.
        degradation: a ``data.degradation`` value (preset name or dict, see
            :func:`srlab.data.degradations.build_degradation`) or a built degradation; None = the report's.
        augment: augmentation dict, see :mod:`srlab.data.transforms`.
        train: random patches and augmentation; otherwise deterministic validation samples.
        val_patch_size: center crop side for validation, ``None`` for whole images.
        samples_per_epoch: training length (patches drawn per epoch); ``None`` = one per image.
        max_image_pixels: refuse larger images (``None``: the process-wide limit).
        cache_images: keep decoded images in memory (per worker); for small sets such as the samples.
        sizes: ``{path: (w, h)}`` from :func:`scan_images`, to skip scanning again.
    """

    def __init__(self, source, scale=4, patch_size=128, degradation=None, augment=None, train=True,
                 val_patch_size=None, samples_per_epoch=None, max_image_pixels=None, cache_images=False, sizes=None):
        super().__init__(scale, patch_size, augment, train, val_patch_size, samples_per_epoch,
                         max_image_pixels, cache_images)
        self.degradation = degradation if hasattr(degradation, "sample") else build_degradation(degradation, scale)
        if train and self.augment["affine"] > 0:
            T.import_affine()
        if self.degradation is None:
            raise ConfigError("data.degradation=none means the LQ images are given: use data=paired")
        where = _where(source)
        files = list_images(source) if isinstance(source, (str, os.PathLike)) else [_item(p) for p in source]
        if not files:
            raise SRLabError(f"{where}: no images found (png, jpg, jpeg, webp, bmp, tif); put HQ images there")
        if sizes is None:
            sizes, self.skipped = scan_images(files, max_image_pixels)
        need = self._min_side()
        for p in files:
            if p not in sizes:
                continue
            if min(sizes[p]) < need:
                w, h = sizes[p]
                self.skipped.append((p, f"{w}x{h} is smaller than the {need} px crop; lower data.patch_size / data.val_patch_size"))
            else:
                self.items.append(p)
        report_skipped(where, self.skipped)
        if not self.items:
            raise SRLabError(f"{where}: none of the {len(files)} image files is usable (see the warning above)")

    def _min_side(self) -> int:
        if self.train:
            return self.degradation.crop_for(self.patch_size)
        if self.val_patch_size:
            return self.degradation.crop_for(self.val_patch_size, "data.val_patch_size", train=False)
        return self.degradation.min_size

    def _sample(self, path, rng):
        return cut_hq(self, modcrop(self._read(path), self.scale), rng)


def cut_hq(ds, hq: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One HQ sample of a modcropped image and what the degradation draws beside it.

    ``ds`` holds the settings (``scale``, ``patch_size``, ``val_patch_size``, ``train``, ``augment``,
    ``degradation``) and ``_min_side()``: an :class:`HQFolderDataset`, or a stream of shards.
    """
    out = ds.patch_size if ds.train else ds.val_patch_size
    if ds.train:
        size = ds._min_side()  # the patch, or the larger crop the degradation needs
        params = T.draw_augment(ds.augment, rng)
        region_size = min(2 * size, *hq.shape[:2]) if params.affine else size
        region = T.apply_affine(T.random_crop_hq(hq, region_size, rng), params)
        y, x = (region.shape[0] - size) // 2, (region.shape[1] - size) // 2
        gt = T.apply_flips(region[y : y + size, x : x + size], params)
    elif ds.val_patch_size:
        s, (h, w) = ds._min_side(), hq.shape[:2]
        y, x = (h - s) // 2 // ds.scale * ds.scale, (w - s) // 2 // ds.scale * ds.scale
        gt = hq[y : y + s, x : x + s]
    else:
        gt = hq
    return gt, ds.degradation.sample(gt, rng, out, ds.train)


def _item(p):
    """A file path, or a record that reads itself (``load_rgb``) kept as it is."""
    return p if hasattr(p, "load_rgb") else Path(p)


def pair_keys(hq: dict, lq: dict, scale: int, hq_where, lq_where) -> list[tuple]:
    """Pair ``{key: item}`` maps by key; an LQ key ending in ``x{scale}`` also matches the HQ key without it.

    Raises:
        SRLabError: some keys are only on one side.
    """
    if set(hq) != set(lq) and not set(hq) & set(lq):
        suffix = f"x{scale}"
        lq = {k[: -len(suffix)] if k.endswith(suffix) else k: v for k, v in lq.items()}
    only_hq, only_lq = sorted(set(hq) - set(lq)), sorted(set(lq) - set(hq))
    if only_hq or only_lq:
        parts = [f"{len(v)} only in {d} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                 for v, d in ((only_hq, hq_where), (only_lq, lq_where)) if v]
        raise SRLabError(f"HQ and LQ names do not match: {'; '.join(parts)}; pairs are matched by name")
    return [(hq[k], lq[k]) for k in sorted(hq)]


def match_pairs(hq_dir: str | Path, lq_dir: str | Path, scale: int) -> list[tuple[Path, Path]]:
    """Pair HQ and LQ files by relative path without extension.

    An LQ stem ending in ``x{scale}`` (BasicSR/DIV2K style ``0001x4.png``) also matches HQ ``0001``.

    Raises:
        SRLabError: a folder is missing/empty, a name appears twice, or names do not match.
    """
    def keyed(folder):
        files = list_images(folder)
        if not files:
            raise SRLabError(f"{folder}: no images found; expected the HQ/ and LQ/ folders srlab.prepare writes")
        out = {}
        for p in files:
            key = p.relative_to(folder).with_suffix("").as_posix()
            if key in out:
                raise SRLabError(f"{folder}: {out[key].name} and {p.name} have the same name; keep one")
            out[key] = p
        return out

    return pair_keys(keyed(Path(hq_dir)), keyed(Path(lq_dir)), scale, hq_dir, lq_dir)


class PairedFolderDataset(_SRDataset):
    """HQ/LQ pairs from two folders (``srlab.prepare`` output or your own), matched by file name.

    Every LQ must be ``1/scale`` of its HQ (HQ sizes that are not multiples of ``scale`` are
    modcropped). Crops are cut at aligned positions (LQ offset * scale = HQ offset); augmentation is
    flips and 90-degree turns only, since an affine warp of each image separately would break the
    alignment (``data.augment.affine`` is ignored here; bake warps in with ``prepare --augment-copies``).

    Args:
        hq_dir: folder of HQ images.
        lq_dir: folder of LQ images.
        pairs: optional subset of :func:`match_pairs` output (e.g. a train/val split).
        sizes: ``{item: (w, h)}`` of every readable HQ and LQ item, to skip scanning (LMDB records).
        Others: as :class:`HQFolderDataset`.
    """

    def __init__(self, hq_dir, lq_dir, scale=4, patch_size=128, augment=None, train=True,
                 val_patch_size=None, samples_per_epoch=None, max_image_pixels=None, cache_images=False, pairs=None,
                 sizes=None):
        super().__init__(scale, patch_size, augment, train, val_patch_size, samples_per_epoch,
                         max_image_pixels, cache_images)
        pairs = pairs if pairs is not None else match_pairs(hq_dir, lq_dir, scale)
        if sizes is None:
            sizes, self.skipped = scan_images([f for pair in pairs for f in pair], max_image_pixels)
        mismatched, need = [], self._min_side()
        for hq, lq in pairs:
            if hq not in sizes or lq not in sizes:  # unreadable, named in self.skipped (or by the caller)
                continue
            (W, H), (w, h) = sizes[hq], sizes[lq]
            if (W // scale, H // scale) != (w, h):
                mismatched.append(f"{hq.name} HQ {W}x{H} vs LQ {w}x{h} (expected {W // scale}x{H // scale})")
            elif min(W, H) < need:
                self.skipped.append((hq, f"{W}x{H} is smaller than the {need} px crop; lower data.patch_size"))
            else:
                self.items.append((hq, lq))
        if mismatched:
            raise SRLabError(f"{hq_dir} / {lq_dir}: {len(mismatched)} pair(s) are not LQ = HQ / data.scale={scale}: "
                             f"{'; '.join(mismatched[:3])}; check data.scale or regenerate the LQ images")
        report_skipped(f"{hq_dir} + {lq_dir}", self.skipped)
        if not self.items:
            raise SRLabError(f"{hq_dir} / {lq_dir}: none of the {len(pairs)} pairs is usable (see the warning above)")

    def _sample(self, pair, rng):
        gt, lq = modcrop(self._read(pair[0]), self.scale), self._read(pair[1])
        if lq.shape[0] * self.scale != gt.shape[0] or lq.shape[1] * self.scale != gt.shape[1]:
            raise ImageReadError(pair[1], f"size changed since the scan ({lq.shape[1]}x{lq.shape[0]})")
        return cut_pair(self, gt, lq, rng)


def cut_pair(ds, gt: np.ndarray, lq: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One aligned HQ/LQ sample (flips and turns only); ``ds`` holds the settings as for :func:`cut_hq`."""
    if ds.train:
        gt, lq = T.paired_random_crop(gt, lq, ds.patch_size, ds.scale, rng)
        params = T.draw_augment(ds.augment, rng, allow_affine=False)
        gt, lq = T.apply_flips(gt, params), T.apply_flips(lq, params)
    elif ds.val_patch_size:
        gt, lq = T.paired_center_crop(gt, lq, ds.val_patch_size, ds.scale)
    return gt, {"lq": lq}
