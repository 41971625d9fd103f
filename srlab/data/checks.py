"""Every rule of the ``data`` config, in one place: the data module runs it at set-up, ``srlab.train``
(:mod:`srlab.runs.checks`) before anything is built, so a bad value fails in one line either way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srlab.data.degradations import build_degradation, check_patch_sizes, settings_of
from srlab.data.lmdb_store import check_location
from srlab.data.val_sets import crops_validated, parse_val_sets
from srlab.errors import ConfigError

SOURCES = ("samples", "hq_folder", "paired", "lmdb", "streaming")


def check_data(data: Mapping[str, Any]) -> tuple[list, Any]:
    """Check a ``data`` config (plain mapping, interpolations resolved) before any training image is read.

    Returns:
        the parsed ``data.val_sets`` (headers read) and the built degradation (None: LQ given).

    Raises:
        ConfigError: the first bad value, named by its key.
    """
    source = data.get("source", "samples")
    if source not in SOURCES:
        raise ConfigError(f"data.source must be one of {', '.join(SOURCES)}, got {source!r}")
    scale, patch = data["scale"], data["patch_size"]
    check_patch_sizes(scale, patch, data.get("val_patch_size"))
    if source == "streaming" and data.get("val_dir") is None and not data.get("val_sets"):
        raise ConfigError("data=streaming holds nothing out of the shards: set data.val_dir (a folder of HQ images, "
                          "or with HQ/ and LQ/ for the shards' pairs) or data.val_sets")
    if source == "streaming" and not data.get("input_dir"):
        raise ConfigError("data.input_dir is not set; pass data.input_dir=DIR or a URI (s3://bucket/shards) "
                          "holding shards written by python -m srlab.prepare IN -o DIR --format litdata")
    crops_validated(data.get("val_fraction"), data.get("val_dir"), data.get("val_sets"))
    for key in ("batch_size", "val_batch_size", "samples_per_epoch"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"data.{key} must be a positive integer, got {value!r}")
    workers = data.get("num_workers", 0)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {workers!r}")
    val_sets = parse_val_sets(data.get("val_sets"), int(scale), data.get("max_image_pixels"))
    degradation = build_degradation(settings_of(data.get("degradation"), source), int(scale))
    if source == "lmdb":
        _check_lmdb(data, degradation)
    elif degradation is None and source not in ("paired", "streaming"):
        raise ConfigError(f"data.degradation=none means the LQ images are given; use data=paired or another "
                          f"degradation (data.source={source})")
    if degradation is not None:
        degradation.crop_for(int(patch))  # the crop its kernels need around a patch: a bad size fails here
    return val_sets, degradation


def _check_lmdb(data: Mapping[str, Any], degradation) -> None:
    """The stores exist and look like BasicSR's layout (the contents are checked when the data module opens them)."""
    if data.get("hq_lmdb") is None:
        raise ConfigError("data.hq_lmdb is not set; pass data.hq_lmdb=/path/to/NAME.lmdb (BasicSR's layout)")
    check_location(data["hq_lmdb"], "data.hq_lmdb")
    if degradation is None:
        if data.get("lq_lmdb") is None:
            raise ConfigError("data.lq_lmdb is not set and data.degradation=none (the LQ images are given): pass "
                              "data.lq_lmdb=/path/to/NAME.lmdb, or data.degradation=report|bicubic|realesrgan "
                              "to make the LQ from data.hq_lmdb on the fly")
        check_location(data["lq_lmdb"], "data.lq_lmdb")
