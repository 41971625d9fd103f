"""The data section's own pieces: its LMDB in BasicSR's layout reads back; its table shows bytes and consumption."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srlab.bench import data
from srlab.data.lmdb_store import open_store
from tests.data.hostile import rgb_array


def test_the_bench_lmdb_is_a_store_srlab_opens(tmp_path):
    pytest.importorskip("lmdb")
    (tmp_path / "HQ").mkdir()
    for i in range(3):
        Image.fromarray(rgb_array(i, (40, 24))).save(tmp_path / "HQ" / f"{i:05d}.png")
    store, sizes, bad = open_store(data._lmdb(tmp_path / "HQ", tmp_path / "hq.lmdb"))
    assert bad == [] and sizes == {f"{i:05d}": (40, 24) for i in range(3)}
    np.testing.assert_array_equal(np.asarray(store.record("00002").load_rgb()), rgb_array(2, (40, 24)))
    assert data._mean_bytes(tmp_path / "HQ") == np.mean([p.stat().st_size for p in (tmp_path / "HQ").glob("*.png")])


def test_table_shows_bytes_per_draw_and_the_steps_consumption():
    row = {"source": "lmdb (x)", "workers": 2, "default": True, "samples_per_s": 50.0, "first_batch_s": 0.5,
           "bytes_per_draw": 734_400, "esrgan_needs": 0.5, "headroom": 100.0, "cpu_share_at_esrgan_pace": 0.02}
    lines = data.table({"rows": [row], "esrgan_step_s": 8.0, "batch": 4, "patch": 128,
                        "steps": {"quickstart": 0.25, "esrgan": 8.0}})
    text = "\n".join(lines)
    assert "| lmdb (x) | 2 (default) | 50.0 | 734 kB | 0.50 | 100x | 2.0% |" in text
    assert "esrgan 8.000 s/step = 0.5 samples/s; quickstart 0.250 s/step = 16.0 samples/s" in text


def test_the_timed_batches_say_which_opened_an_epoch():
    """A short stream restarts its workers every pass; those waits are the first-batch latency, not reading."""

    class TwoBatchEpochs:
        def train_dataloader(self):
            return ["a", "b"]

    it = data._batches(TwoBatchEpochs())
    assert [next(it) for _ in range(5)] == [("a", True), ("b", False), ("a", True), ("b", False), ("a", True)]
