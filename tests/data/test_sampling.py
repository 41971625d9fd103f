"""ResumableSampler / ResumableLoader: the training order replays from any position, per process."""

from __future__ import annotations

from torch.utils.data import Dataset

from srlab.data.sampling import ResumableLoader, ResumableSampler


def test_an_epoch_resumed_after_k_samples_yields_exactly_the_rest():
    sampler = ResumableSampler(10, seed=3)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.resume(1, 4)
    sampler.set_epoch(1)  # Lightning sets the epoch again at its start: the position stays
    assert list(sampler) == full[4:]
    assert list(sampler) == full  # once: the next pass is the whole epoch
    sampler.set_epoch(2)
    assert [i for i, _ in sampler] != [i for i, _ in full]  # a new order every epoch


def test_a_complete_epoch_resumes_at_the_next_one():
    sampler = ResumableSampler(6, seed=0)
    sampler.resume(0, 6)
    assert sampler.epoch == 1 and sampler.start == 0


def test_shards_cover_the_epoch_once_with_the_same_seeds():
    whole = dict(ResumableSampler(9, seed=5))
    shards = [list(ResumableSampler(9, seed=5, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(i for s in shards for i, _ in s) == list(range(9))
    assert all(whole[i] == seed for s in shards for i, seed in s)


class _Keys(Dataset):
    """Returns the (index, seed) key it is indexed with."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, key):
        return key


def test_the_loader_checkpoints_the_batches_processed_not_those_prefetched():
    done = {"n": 2}
    loader = ResumableLoader(_Keys(), sampler=ResumableSampler(12, seed=1), batch_size=3,
                             batches_done=lambda: (done["n"], done["n"] >= 4), collate_fn=lambda b: b)
    batches = list(loader)
    state = loader.state_dict()  # the iterator ran ahead; the state counts what the loop processed
    assert state == {"seed": 1, "epoch": 0, "start": 6}
    again = ResumableLoader(_Keys(), sampler=ResumableSampler(12, seed=99), batch_size=3,
                            batches_done=lambda: (0, False), collate_fn=lambda b: b)
    again.load_state_dict(state)
    assert list(again) == batches[2:]
    done["n"] = 4
    assert loader.state_dict() == {"seed": 1, "epoch": 1, "start": 0}
