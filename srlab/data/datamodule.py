"""SRDataModule: the one LightningDataModule, built by Hydra from ``conf/data/*.yaml``.

``source`` picks where images come from:

- ``samples``: the scikit-image photographs (:mod:`srlab.data.samples`), degraded on the fly;
- ``hq_folder``: your HQ images in ``train_dir``, degraded on the fly;
- ``paired``: HQ/LQ pairs, ``root/HQ`` + ``root/LQ`` as ``srlab.prepare`` writes them (or ``hq_dir`` + ``lq_dir``);
- ``lmdb``: BasicSR's LMDB stores (:mod:`srlab.data.lmdb_store`), ``hq_lmdb`` + ``lq_lmdb`` as pairs, or
  ``hq_lmdb`` alone degraded on the fly;
- ``streaming``: litdata shards of sub-images (``srlab.prepare --format litdata``) in ``input_dir``, a
  folder or a remote URI (:mod:`srlab.data.streaming`); validation from ``val_dir`` or ``val_sets``.

Validation comes from ``val_dir`` (an HQ folder, or for ``paired`` a folder with HQ/ and LQ/) or,
when that is unset, from a seeded ``val_fraction`` split of the training images; ``val_sets`` adds
whole-image benchmark validation (:mod:`srlab.data.val_sets`), one dataloader per set after the
crops' (``val_fraction: 0`` without ``val_dir``: benchmarks only, every image trains).
Nothing is read before :meth:`setup`; config mistakes raise :class:`srlab.errors.ConfigError` there.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from srlab.data.checks import SOURCES, check_data
from srlab.data.datasets import HQFolderDataset, PairedFolderDataset, match_pairs, pair_keys, report_skipped
from srlab.data.images import DEFAULT_MAX_IMAGE_PIXELS, list_images, scan_images, set_max_image_pixels
from srlab.data.lmdb_store import open_store
from srlab.data.samples import materialize_samples
from srlab.data.sampling import ResumableLoader, ResumableSampler
from srlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from srlab.data.val_sets import BenchmarkValSet, crops_validated, unbatched
from srlab.errors import ConfigError, SRLabError

log = logging.getLogger("srlab.data")


def _worker_init(max_image_pixels: int, worker_id: int) -> None:
    """Keep each DataLoader worker to one thread and carry the pixel limit into spawned workers."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    set_max_image_pixels(max_image_pixels)


def _plain(value):
    """OmegaConf containers -> plain dicts/lists (Hydra passes nested config as DictConfig/ListConfig)."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return dict(value) if isinstance(value, dict) else value


class SRDataModule(L.LightningDataModule):
    """Training and validation data for x``scale`` super-resolution.

    Args:
        source: ``"samples"``, ``"hq_folder"``, ``"paired"``, ``"lmdb"`` or ``"streaming"``.
        train_dir: HQ image folder (``hq_folder``).
        root: folder with ``HQ/`` and ``LQ/`` (``paired``).
        hq_dir: HQ folder for ``paired`` when not ``root/HQ``.
        lq_dir: LQ folder for ``paired`` when not ``root/LQ``.
        hq_lmdb: BasicSR LMDB folder of HQ images (``lmdb``).
        lq_lmdb: BasicSR LMDB folder of the LQ images beside them (``lmdb`` with degradation ``none``).
        input_dir: shards folder or URI (``streaming``).
        storage_options: litdata's options for a remote ``input_dir`` (e.g. ``endpoint_url``).
        cache_dir: where remote chunks are cached (``None``: litdata's default).
        val_dir: validation folder; ``None`` splits ``val_fraction`` off the training images.
        samples_dir: where the sample photographs are written (``None``: ``~/.cache/srlab/samples``).
        val_fraction: share of training images held out when ``val_dir`` is unset, in (0, 1); 0 holds
            none out (then ``val_sets`` must be given).
        val_sets: benchmark folders validated on whole images, see :mod:`srlab.data.val_sets`.
        scale: SR factor; the model's scale should be ``${data.scale}``.
        patch_size: HQ training patch side, a multiple of ``scale``; smaller images are skipped.
        val_patch_size: HQ center-crop side for validation; ``None`` = whole images (batch size 1).
        degradation: how LQ is made from HQ: a preset name (``report``, ``bicubic``, ``realesrgan``,
            ``none``) or a dict with ``kind`` (the ``data/degradation`` config group); ``None`` = the
            report's degradation, or the given LQ for ``paired`` (see :mod:`srlab.data.degradations`).
            ``paired`` with any degradation but ``none`` reads only the HQ images.
        augment: augmentation probabilities and ranges (see :mod:`srlab.data.transforms`).
        normalize: ImageNet mean/std normalization of ``lq`` and ``gt``, applied by the model on the device
            (the loaders send uint8 images).
        batch_size: training batch size.
        val_batch_size: validation batch size.
        num_workers: DataLoader worker processes (each limited to one torch thread).
        pin_memory: DataLoader ``pin_memory``.
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        samples_per_epoch: random patches per training epoch; ``None`` = one per image.
        seed: seed of the train/val split.
        max_image_pixels: refuse images with more pixels (decompression-bomb guard).
        cache_images: keep decoded images in memory in each worker (small sets only).
    """

    def __init__(self, source="samples", train_dir=None, root=None, hq_dir=None, lq_dir=None, val_dir=None,
                 samples_dir=None, val_fraction=0.25, scale=4, patch_size=128, val_patch_size=None,
                 degradation=None, augment=None, normalize=False, batch_size=16, val_batch_size=4, num_workers=2,
                 pin_memory=False, persistent_workers=False, samples_per_epoch=None, seed=0,
                 max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS, cache_images=False, val_sets=None, hq_lmdb=None,
                 lq_lmdb=None, input_dir=None, storage_options=None, cache_dir=None):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hp = dict(self.hparams)
        self.hp["degradation"], self.hp["augment"] = _plain(degradation), _plain(augment)
        self.hp["val_sets"], self.hp["storage_options"] = _plain(val_sets), _plain(storage_options)
        self.train_set = self.val_set = None
        self.val_benchmarks: list[BenchmarkValSet] = []
        self.degradation = None
        # what the LightningModule applies to batches on their device (on_after_batch_transfer), or None
        self.batch_degradation = None
        self.collate = None  # the degradation's collate_fn, None: default_collate

    def _val_dir(self) -> Path | None:
        return Path(self.hp["val_dir"]).expanduser() if self.hp["val_dir"] else None

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """``(mean, std)`` applied to samples, or ``None`` when ``normalize`` is off."""
        return (IMAGENET_MEAN, IMAGENET_STD) if self.hp["normalize"] else None

    def prepare_data(self) -> None:
        """Write the sample photographs to their cache folder (runs once, on rank 0)."""
        if self.hp["source"] == "samples":
            materialize_samples(self.hp["samples_dir"])

    def setup(self, stage: str | None = None) -> None:
        """Validate the config and build the datasets (once)."""
        if self.train_set is not None:
            return
        self.val_benchmarks, self.degradation = check_data(self.hp)
        set_max_image_pixels(self.hp["max_image_pixels"])
        hp = self.hp
        if self.degradation is not None:
            self.batch_degradation = self.degradation.batch_degradation(normalized=hp["normalize"])
            self.collate = getattr(self.degradation, "collate", None)
        if hp["source"] == "paired":
            self._setup_paired()
        elif hp["source"] == "lmdb":
            self._setup_lmdb()
        elif hp["source"] == "streaming":
            return self._setup_streaming()
        elif hp["source"] == "samples":
            self._setup_hq(materialize_samples(hp["samples_dir"]), self._val_dir())
        elif hp["train_dir"] is None:
            raise ConfigError("data.train_dir is not set; pass data.train_dir=/path/to/hq_images")
        else:
            self._setup_hq(Path(hp["train_dir"]).expanduser(), self._val_dir())
        sets = "".join(f", {b.spec.name} {len(b)}" for b in self.val_benchmarks)
        log.info("data: %d training images, validation: %d crops%s", len(self.train_set.items),
                 len(self.val_set.items) if self.val_set else 0, sets)

    def _split(self, items: list, where: str) -> tuple[list, list]:
        if not crops_validated(self.hp["val_fraction"], self.hp["val_dir"], self.hp["val_sets"]):  # benchmarks only
            return items, []
        if len(items) < 2:
            raise SRLabError(f"{where}: {len(items)} usable image(s) cannot be split into train and val; "
                             "add images or set data.val_dir")
        order = np.random.default_rng(self.hp["seed"]).permutation(len(items))
        n_val = min(max(1, round(len(items) * self.hp["val_fraction"])), len(items) - 1)
        return [items[i] for i in sorted(order[n_val:])], [items[i] for i in sorted(order[:n_val])]

    def _kwargs(self, train: bool) -> dict:
        hp = self.hp
        return {"scale": hp["scale"], "patch_size": hp["patch_size"], "augment": hp["augment"],
                "train": train, "val_patch_size": hp["val_patch_size"],
                "samples_per_epoch": hp["samples_per_epoch"], "max_image_pixels": hp["max_image_pixels"],
                "cache_images": hp["cache_images"]}

    def _setup_hq(self, folder: Path, val_dir: Path | None) -> None:
        hp = self.hp
        files = list_images(folder)
        if not files:
            raise SRLabError(f"{folder}: no images found (png, jpg, jpeg, webp, bmp, tif); put HQ images there")
        sizes, bad = scan_images(files, hp["max_image_pixels"])
        report_skipped(str(folder), bad)
        self._setup_hq_items([p for p in files if p in sizes], sizes, str(folder), len(files), val_dir)

    def _setup_hq_items(self, good: list, sizes: dict, where: str, total: int, val_dir: Path | None) -> None:
        """HQ-only training (and validation) sets of readable ``good`` files or records of ``total``."""
        if not good:
            raise SRLabError(f"{where}: none of the {total} images is readable (see the warning above)")
        kw = {**self._kwargs(True), "degradation": self.degradation}
        if val_dir is None:
            train_files, val_files = self._split(good, where)
            self.val_set = HQFolderDataset(val_files, **{**kw, "train": False}, sizes=sizes) if val_files else None
        else:
            train_files = good
            self.val_set = HQFolderDataset(val_dir, **{**kw, "train": False})
        self.train_set = HQFolderDataset(train_files, **kw, sizes=sizes)

    def _setup_paired(self) -> None:
        hp = self.hp
        root = Path(hp["root"]).expanduser() if hp["root"] else None
        if root is None and not (hp["hq_dir"] and hp["lq_dir"]):
            raise ConfigError("data.root is not set; pass data.root=/path/to/prepared (with HQ/ and LQ/ inside)")
        hq_dir = Path(hp["hq_dir"] or root / "HQ").expanduser()
        lq_dir = Path(hp["lq_dir"] or root / "LQ").expanduser()
        if self.degradation is not None:  # LQ made from HQ/ on the fly; the given LQ images are not read
            val_dir = Path(hp["val_dir"]).expanduser() / "HQ" if hp["val_dir"] else None
            return self._setup_hq(hq_dir, val_dir)
        self._setup_pairs(hq_dir, lq_dir, match_pairs(hq_dir, lq_dir, hp["scale"]))

    def _setup_pairs(self, hq_where, lq_where, pairs: list[tuple], sizes: dict | None = None) -> None:
        """Paired training (and validation) sets; ``sizes`` of every item when known (else the files are scanned)."""
        hp = self.hp
        aug = hp["augment"] or {}
        if aug.get("affine", 0) > 0:
            log.warning("data.augment.affine is ignored for paired folders and LMDBs (a warp would break HQ/LQ alignment); "
                        "bake warps in with `srlab.prepare --augment-copies`")
        kw = {**self._kwargs(True), "sizes": sizes}
        kw["augment"] = {k: v for k, v in aug.items() if k != "affine"}
        if hp["val_dir"] is None:
            train_pairs, val_pairs = self._split(pairs, f"{hq_where} + {lq_where}")
            if val_pairs:
                self.val_set = PairedFolderDataset(hq_where, lq_where, **{**kw, "train": False}, pairs=val_pairs)
        else:
            train_pairs, val = pairs, Path(hp["val_dir"]).expanduser()
            self.val_set = PairedFolderDataset(val / "HQ", val / "LQ", **{**kw, "train": False, "sizes": None})
        self.train_set = PairedFolderDataset(hq_where, lq_where, **kw, pairs=train_pairs)

    def _setup_lmdb(self) -> None:
        """BasicSR LMDB stores: HQ + LQ pairs (degradation ``none``), or HQ degraded on the fly."""
        hp, limit = self.hp, self.hp["max_image_pixels"]
        hq, hq_sizes, bad = open_store(hp["hq_lmdb"], "data.hq_lmdb", limit)
        report_skipped(str(hq.folder), bad)
        records = {k: hq.record(k) for k in hq.meta}
        if self.degradation is not None:
            if hp["lq_lmdb"]:
                log.warning("data.lq_lmdb is not read: data.degradation makes the LQ from data.hq_lmdb on the fly")
            good = [r for k, r in records.items() if k in hq_sizes]
            return self._setup_hq_items(good, {records[k]: s for k, s in hq_sizes.items()}, str(hq.folder),
                                        len(records), self._val_dir())
        lq, lq_sizes, lq_bad = open_store(hp["lq_lmdb"], "data.lq_lmdb", limit)
        report_skipped(str(lq.folder), lq_bad)
        lq_records = {k: lq.record(k) for k in lq.meta}
        pairs = pair_keys(records, lq_records, hp["scale"], hq.folder, lq.folder)
        sizes = {**{records[k]: s for k, s in hq_sizes.items()}, **{lq_records[k]: s for k, s in lq_sizes.items()}}
        self._setup_pairs(hq.folder, lq.folder, pairs, sizes)

    def _setup_streaming(self) -> None:
        """The shards (each process its part: build it after DDP has started, as Lightning calls setup), val from val_dir."""
        from srlab.data.shards import check_meta, read_meta, streaming_dataset
        from srlab.data.streaming import ShardStream

        hp, paired = self.hp, self.degradation is None
        crop = hp["patch_size"] if paired else self.degradation.crop_for(hp["patch_size"])
        check_meta(read_meta(hp["input_dir"], hp["storage_options"]), hp["input_dir"], hp["scale"],
                   hp["patch_size"], crop, paired)
        if hp["val_dir"] is not None:
            val, kw = Path(hp["val_dir"]).expanduser(), {**self._kwargs(False), "train": False}
            self.val_set = (PairedFolderDataset(val / "HQ", val / "LQ", **kw) if paired else
                            HQFolderDataset(val, **kw, degradation=self.degradation))
        seed = torch.initial_seed() % 2**32
        self.train_set = streaming_dataset(
            ShardStream, hp["input_dir"], hp["storage_options"], hp["cache_dir"], seed, scale=hp["scale"],
            patch_size=hp["patch_size"], augment=hp["augment"], degradation=self.degradation, crop=crop,
            sample_seed=seed)
        log.info("data: %d training sub-images streamed from %s (this process), validation: %d crops",
                 len(self.train_set), hp["input_dir"], len(self.val_set.items) if self.val_set else 0)

    def _worker_kwargs(self) -> dict:
        """DataLoader arguments of the training and validation-crop loaders: workers, pinning, collate."""
        workers = self.hp["num_workers"]
        return {"num_workers": workers, "pin_memory": self.hp["pin_memory"], "collate_fn": self.collate,
                "persistent_workers": bool(self.hp["persistent_workers"] and workers),
                "worker_init_fn": functools.partial(_worker_init, self.hp["max_image_pixels"]) if workers else None}

    def _val_loader(self, dataset, batch_size: int) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, **self._worker_kwargs())

    def train_dataloader(self) -> DataLoader:
        """Shuffled random patches, ``samples_per_epoch`` of them, in an order a checkpoint can resume exactly.

        The order's seed is the run's (``seed``, through ``seed_everything``); a resumed run takes
        the one saved in its checkpoint. Under DDP each process reads its own shard.
        """
        trainer, hp = self.trainer, self.hp
        if hp["source"] == "streaming":
            from srlab.data.streaming import ResumableStreamingLoader

            return ResumableStreamingLoader(self.train_set, batches_done=self._batches_done,
                                            batch_size=hp["batch_size"], drop_last=True, **self._worker_kwargs())
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        seed = torch.initial_seed() % 2**32
        sampler = ResumableSampler(len(self.train_set), seed, world, rank)
        return ResumableLoader(
            self.train_set, sampler=sampler, batches_done=self._batches_done, batch_size=hp["batch_size"],
            drop_last=sampler.num_samples >= hp["batch_size"],
            # the workers' base seed from here, not from the global RNG the model draws from
            generator=torch.Generator().manual_seed(seed), **self._worker_kwargs())

    def _batches_done(self) -> tuple[int, bool]:
        """Training batches of the current epoch processed so far, and whether the epoch is complete."""
        trainer = self.trainer
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return done, done >= trainer.num_training_batches

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation crops (fixed order; batch 1 for whole images); with ``val_sets``, a list of
        the crops' loader (if any) and one loader per set."""
        bs = self.hp["val_batch_size"] if self.hp["val_patch_size"] else 1
        crops = [self._val_loader(self.val_set, bs)] if self.val_set is not None else []
        if not self.val_benchmarks:
            return crops[0]
        return crops + [self._benchmark_loader(b) for b in self.val_benchmarks]

    def _benchmark_loader(self, dataset: BenchmarkValSet) -> DataLoader:
        """Batch 1, in the main process (the dataset keeps its samples); under DDP each rank a shard, none twice."""
        world = self.trainer.world_size if self.trainer is not None else 1
        sampler = None
        if world > 1:
            if len(dataset) < world:
                raise ConfigError(f"data.val_sets ({dataset.spec.name}): {len(dataset)} image(s) for {world} "
                                  "processes; each process needs one")
            # Lightning's default DistributedSampler pads shards with repeats, which would bias the mean
            sampler = UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=self.trainer.global_rank,
                                                   shuffle=False)
        return DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=0, collate_fn=unbatched)

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """Same images as validation."""
        return self.val_dataloader()
