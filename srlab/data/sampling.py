"""The training order as a pure function of (seed, epoch): a run killed mid-epoch resumes at its exact sample.

A ``shuffle=True`` DataLoader draws its order, and the datasets drew each sample's crop and
augmentation seed, from the global torch RNG, interleaved with the model's own draws and with
Lightning's one-batch prefetch; a resumed run could only restart the epoch's iterator and was
statistically, not exactly, the same run. Here epoch ``e``'s permutation and per-sample seeds
come from a generator seeded with ``(seed, e)``, so any position of any epoch can be replayed, and
the samples do not depend on the number of DataLoader workers.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, DistributedSampler

# a large prime: (seed, epoch) pairs map to distinct generator seeds
_EPOCH_STRIDE = 1_000_003


class ResumableSampler(DistributedSampler):
    """Shuffled ``(index, seed)`` pairs; each process of a DDP run takes its own shard.

    A ``DistributedSampler`` subclass so that Lightning calls :meth:`set_epoch` and leaves it in
    place under DDP (it replaces any other sampler). The datasets take ``(index, seed)`` and cut
    the sample with ``numpy.random.default_rng(seed)``.

    Args:
        length: samples in the dataset (per epoch).
        seed: base seed of every epoch's order and sample seeds.
        num_replicas: processes of the run.
        rank: this process.
        drop_last: drop the tail that does not divide evenly among the processes (else pad with repeats).
    """

    def __init__(self, length: int, seed: int, num_replicas: int = 1, rank: int = 0, drop_last: bool = False) -> None:
        super().__init__(range(length), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=drop_last)
        self.start = 0  # samples of this epoch's shard already consumed (set on resume)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0  # a new epoch starts at its beginning
        super().set_epoch(epoch)

    def resume(self, epoch: int, start: int) -> None:
        """Continue epoch ``epoch`` after its first ``start`` samples (of this process's shard)."""
        if start >= self.num_samples:  # the epoch was complete: the next one starts
            epoch, start = epoch + 1, 0
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> tuple[list[int], list[int]]:
        """This process's shard of epoch ``epoch``: dataset indices and their sample seeds."""
        gen = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + epoch)
        n = len(self.dataset)
        perm = torch.randperm(n, generator=gen)
        seeds = torch.randint(0, 2**62, (n,), generator=gen)
        pairs = list(zip(perm.tolist(), seeds[perm].tolist()))
        if self.drop_last:
            pairs = pairs[: self.total_size]
        else:  # pad with the first samples again, as DistributedSampler does
            pairs += (pairs * (1 + self.total_size // max(1, n)))[: self.total_size - n]
        mine = pairs[self.rank: self.total_size: self.num_replicas]
        return [i for i, _ in mine], [s for _, s in mine]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices, seeds = self.order(self.epoch)
        start, self.start = self.start, 0
        return iter(list(zip(indices, seeds))[start:])


class ResumableLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` that Lightning checkpoints and restores.

    Lightning saves ``state_dict()`` in every checkpoint and calls ``load_state_dict`` on resume
    just before it creates the iterator. The position is the number of batches the training loop
    has *processed*, not what the loader produced: Lightning fetches one batch ahead.

    Args:
        dataset: the training set (indexed with ``(index, seed)``).
        sampler: its order.
        batches_done: returns (batches of the current epoch processed so far, whether the epoch is complete).
        **kwargs: the other ``DataLoader`` arguments.
    """

    def __init__(self, dataset, *, sampler: ResumableSampler, batches_done: Callable[[], tuple[int, bool]],
                 **kwargs) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        done, complete = self.batches_done()
        epoch, start = self.sampler.epoch, done * self.batch_size
        if complete:
            epoch, start = epoch + 1, 0
        return {"seed": self.sampler.seed, "epoch": epoch, "start": start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.seed = int(state["seed"])
        self.sampler.resume(int(state["epoch"]), int(state["start"]))
