"""``data=streaming``: training samples cut from litdata shards (:mod:`srlab.data.shards`), resumable mid-epoch.

litdata assigns chunks to each DDP rank and DataLoader worker and shuffles chunks and the items
inside them with its ``seed`` and the epoch; each item's crop and augmentation come from its own
generator seeded with ``(seed, epoch, item index)``, so a sample does not depend on which worker cut it.

Lightning checkpoints a loader's ``state_dict`` while it has fetched one batch ahead; litdata's
counts what it yielded. :class:`ResumableStreamingLoader` saves the batches the training loop
*processed* instead, as :class:`srlab.data.sampling.ResumableLoader` does for folders, so a resumed
run reads the very batches the uninterrupted one would have -- with the same number of processes,
workers and batch size (litdata re-stripes otherwise: the same epoch, not the same order).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
from litdata import StreamingDataLoader, StreamingDataset

from srlab.data import transforms as T
from srlab.data.datasets import cut_hq, cut_pair
from srlab.data.degradations import modcrop

# litdata logs its cache settings at INFO on every epoch's start; a run's log keeps its warnings
logging.getLogger("litdata").setLevel(logging.WARNING)


class ShardStream(StreamingDataset):
    """Training samples (``{"gt", "lq" or the degradation's draws, "path"}``) from shards of sub-images.

    Args:
        input_dir: the shards' folder or URI.
        scale: SR factor.
        patch_size: HQ patch side.
        augment: augmentation dict (affine only without given LQ).
        degradation: a built degradation, or None to use the shards' LQ.
        crop: HQ side a sample needs (the patch, or the larger crop the degradation's kernels need).
        sample_seed: seed of every item's crop and augmentation.
        **kwargs: ``StreamingDataset`` arguments (shuffle, seed, cache_dir, storage_options...).
    """

    def __init__(self, input_dir: str, *, scale: int, patch_size: int, augment: dict | None, degradation,
                 crop: int, sample_seed: int, **kwargs) -> None:
        super().__init__(input_dir, **kwargs)
        self.scale, self.patch_size, self.val_patch_size, self.train = scale, patch_size, None, True
        self.augment = T.augment_config(augment if degradation is not None else
                                        {k: v for k, v in (augment or {}).items() if k != "affine"})
        if degradation is not None and self.augment["affine"] > 0:
            T.import_affine()
        self.degradation, self.crop, self.sample_seed = degradation, crop, sample_seed
        self.where = str(input_dir)

    def _min_side(self) -> int:
        return self.crop

    def __getitem__(self, index) -> dict:
        item = super().__getitem__(index)
        i = int(getattr(index, "index", index))
        rng = np.random.default_rng([self.sample_seed, self.current_epoch, i])
        if self.degradation is None:
            gt, extra = cut_pair(self, item["gt"], item["lq"], rng)
        else:
            gt, extra = cut_hq(self, modcrop(item["gt"], self.scale), rng)
        out = {"gt": T.to_uint8_tensor(gt), **extra, "path": f"{self.where}#{i}"}
        if "lq" in out:
            out["lq"] = T.to_uint8_tensor(out["lq"])
        return out


class ResumableStreamingLoader(StreamingDataLoader):
    """litdata's loader whose checkpointed state is the batches processed, not the batches fetched.

    Args:
        dataset: a :class:`ShardStream`.
        batches_done: returns (batches of the current epoch processed so far, whether the epoch is complete).
        **kwargs: ``StreamingDataLoader`` arguments.
    """

    def __init__(self, dataset: ShardStream, *, batches_done: Callable[[], tuple[int, bool]], **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.batches_done = batches_done
        self._restored_pass_pending = False

    def load_state_dict(self, obj: dict) -> None:
        dataset, here = obj.get("dataset", {}), self.dataset.input_dir
        if here.url and dataset.get("input_dir_url") == here.url:
            # the same remote shards: litdata keeps the local cache's path in the state and refuses another
            # one, though a run resumed on another node (or with another data.cache_dir) has its own cache
            obj = {**obj, "dataset": {**dataset, "input_dir_path": here.path}}
        super().load_state_dict(obj)
        self._restored_pass_pending = True

    def __iter__(self):
        # litdata clears `restore` only when a pass reaches its end; Lightning may stop one early
        # (limit_train_batches), and the next epoch would then continue the restored one
        if not self._restored_pass_pending:
            self.restore = False
        self._restored_pass_pending = False
        return super().__iter__()

    def state_dict(self) -> dict:
        state = super().state_dict()
        done, complete = self.batches_done()
        epoch = self.current_epoch
        if complete:  # the next epoch starts at its beginning
            epoch, done = epoch + 1, 0
        n, workers = done * self.batch_size, max(1, self.num_workers)
        state["dataset"] = self.dataset.state_dict(n, self.num_workers, self.batch_size)
        state["dataset"]["current_epoch"] = state["current_epoch"] = epoch
        state["num_samples_yielded"] = n
        state["latest_worker_idx"] = done % workers - 1  # litdata resumes at the worker after this one
        return state
