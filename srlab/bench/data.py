"""Section ``data``: samples/s of the training DataLoader per source and worker count, against the ESRGAN step.

Sources, all from the bundled sample photos and composed from ``conf/data/*.yaml`` (batch 4, HR
patch 128, the configs' own augmentation and caching):

- ``samples``: decoded photos cached per worker, degraded on the fly (the default data);
- ``hq_folder``: the same photos as an HQ folder, decoded on every draw, degraded on the fly;
- ``paired``: HQ/LQ pairs written by ``srlab.prepare`` (whole images), and with sub-images
  (``--subimage-size 480 --subimage-step 240``, BasicSR's DIV2K recipe);
- ``lmdb``: the same sub-image pairs in BasicSR's LMDB layout (the PNG files' bytes as the values);
- ``streaming``: the same sub-images as litdata shards (``prepare --format litdata``, raw uint8), the
  photos eight times over: a stream's epoch is one pass, and its worker restarts are timed apart.

Each row also gives the bytes one training draw reads when nothing is cached (the HQ file, plus the
LQ for pairs), and the rate the steps measured in this run consume (quickstart, ESRGAN).

A rate is measured over a few seconds after the first batch and a 1 s warm-up (worker start-up
is reported apart, as the first-batch latency, paid again every epoch unless
``persistent_workers``). The ESRGAN step consumes ``batch / step seconds``; the headroom is
rate / consumption, the loader's CPU share at that pace ``consumption / rate(1 worker)`` (the
fraction of one core the workers take from the training step).
With 0 workers the samples are made in the training process, whose torch ops use 2 threads: tiny
per-sample tensor ops then pay a thread wake-up each (slow when the cores are busy).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hydra

from srlab.config import compose_train
from srlab.bench.utils import median
from srlab.data.samples import materialize_samples

WORKERS = (0, 1, 2)
BATCH, PATCH = 4, 128


def _data_cfg(overrides: list[str], bench_sizes: bool = True):
    sizes = [f"data.batch_size={BATCH}", f"data.patch_size={PATCH}"] if bench_sizes else []
    return compose_train([*sizes, "paths.output_dir=.", *overrides]).data


def _prepare(samples: Path, out: Path, extra: list[str]) -> Path:
    from srlab import prepare

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if prepare.main([str(samples), "-o", str(out), *extra]) != 0:
            raise RuntimeError(f"srlab.prepare failed for {out}")
    return out


def _mean_bytes(*folders: Path) -> float:
    """Mean bytes of one item: the files of the same name in each folder, summed."""
    files = sorted(folders[0].glob("*.png"))
    return sum(sum((f / p.name).stat().st_size for f in folders) for p in files) / len(files)


def _lmdb(folder: Path, out: Path) -> Path:
    """``folder``'s PNG files as an LMDB in BasicSR's layout (values: the files' bytes, keys: stems)."""
    import lmdb
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    env = lmdb.open(str(out), map_size=4 * sum(f.stat().st_size for f in files) + (1 << 20))
    lines = []
    with env.begin(write=True) as txn:
        for f in files:
            txn.put(f.stem.encode(), f.read_bytes())
            w, h = Image.open(f).size
            lines.append(f"{f.name} ({h},{w},3) 1")
    env.close()
    (out / "meta_info.txt").write_text("\n".join(lines) + "\n")
    return out


def sources(work: Path) -> dict[str, tuple[list[str], float]]:
    """name -> (data overrides, bytes one uncached draw reads); writes the folders, LMDBs and shards into ``work``."""
    samples = materialize_samples(_data_cfg(["data=samples"]).samples_dir)
    whole = _prepare(samples, work / "pairs", [])
    sub_args = ["--subimage-size", "480", "--subimage-step", "240"]
    sub = _prepare(samples, work / "pairs_sub", sub_args)
    photo = _mean_bytes(samples)
    out = {
        "samples (cached, on-the-fly degradation)": (["data=samples"], photo),
        "hq_folder (decode per draw, on-the-fly degradation)": (["data=hq_folder", f"data.train_dir={samples}"], photo),
        "paired (srlab.prepare, whole images)": (["data=paired", f"data.root={whole}"],
                                                 _mean_bytes(whole / "HQ", whole / "LQ")),
        "paired (srlab.prepare, 480 px sub-images)": (["data=paired", f"data.root={sub}"],
                                                      _mean_bytes(sub / "HQ", sub / "LQ")),
    }
    with contextlib.suppress(ImportError):
        hq, lq = _lmdb(sub / "HQ", work / "hq.lmdb"), _lmdb(sub / "LQ", work / "lq.lmdb")
        out["lmdb (BasicSR layout, 480 px sub-images)"] = (
            ["data=lmdb", f"data.hq_lmdb={hq}", f"data.lq_lmdb={lq}"], _mean_bytes(sub / "HQ", sub / "LQ"))
    with contextlib.suppress(ImportError):
        import litdata  # noqa: F401 - the shards need it

        # a stream's epoch is one pass over its shards: eight passes' worth of photos keep worker
        # restarts (timed apart, as the first-batch latency) from dominating the timing
        repeated = work / "photos_x8"
        repeated.mkdir()
        for copy in range(8):
            for photo in sorted(samples.iterdir()):
                (repeated / f"{copy}_{photo.name}").symlink_to(photo.resolve())
        shards = _prepare(repeated, work / "shards", [*sub_args, "--format", "litdata"])
        out["streaming (litdata shards, 480 px sub-images, raw uint8)"] = (
            ["data=streaming", f"data.input_dir={shards}", f"data.val_dir={whole}"], 480 * 480 * 3 + 120 * 120 * 3)
    return out


def _batches(dm) -> Iterator[tuple[object, bool]]:
    """Batches without end, each with whether it opened an epoch: a stream's epoch is one pass over its
    shards, which may be shorter than the timing (a training set's pass is thousands of items)."""
    while True:
        for i, batch in enumerate(dm.train_dataloader()):
            yield batch, i == 0


def measure(overrides: list[str], workers: int, seconds: float) -> dict:
    """First-batch latency, then samples/s over ``seconds`` after a 1 s warm-up (per-worker caches filling)."""
    data_cfg = _data_cfg(overrides)
    default_workers = int(data_cfg.num_workers)
    dm = hydra.utils.instantiate(data_cfg, _convert_="all", num_workers=workers, samples_per_epoch=BATCH * 100_000)
    dm.prepare_data()
    dm.setup("fit")
    start = time.perf_counter()
    it = _batches(dm)
    next(it)
    first = time.perf_counter() - start
    warm_until = time.perf_counter() + 1.0
    while time.perf_counter() < warm_until:
        next(it)
    n, restarts, start = 0, 0.0, time.perf_counter()
    while time.perf_counter() - start - restarts < seconds:
        fetch = time.perf_counter()
        _, opened = next(it)
        if opened:  # worker start-up, reported as the first-batch latency, not as reading
            restarts += time.perf_counter() - fetch
        else:
            n += 1
    secs = time.perf_counter() - start - restarts
    it.close()  # releases the loader's iterator: its workers shut down
    return {"workers": workers, "first_batch_s": first, "samples_per_s": n * BATCH / secs, "batches": n,
            "default_workers": default_workers}


def epoch_starts(epochs: int = 3) -> dict:
    """Seconds to the first batch of epochs 2.. of the default data (2 workers), persistent workers off / on.

    Without ``persistent_workers`` every epoch forks new workers, whose per-worker image caches start
    empty again; that wait is not hidden behind the training step (the loop blocks on it).
    """
    out = {}
    for persistent in (False, True):
        data_cfg = _data_cfg(["data=samples"], bench_sizes=False)
        dm = hydra.utils.instantiate(data_cfg, _convert_="all", persistent_workers=persistent)
        dm.prepare_data()
        dm.setup("fit")
        loader, waits = dm.train_dataloader(), []
        for _ in range(epochs):
            start = time.perf_counter()
            it = iter(loader)
            next(it)
            waits.append(time.perf_counter() - start)
            for _ in it:
                pass
        del loader, it
        out[persistent] = {"epoch_start_s": median(waits[1:]), "batches_per_epoch": len(dm.train_dataloader()),
                           "workers": int(data_cfg.num_workers), "batch": int(data_cfg.batch_size)}
    return out


def run(esrgan_step_s: float | None, quick: bool = False, steps: dict[str, float] | None = None) -> dict:
    """Rates per source and worker count (median of rounds run in alternating worker order).

    ``steps``: seconds per training step (batch ``BATCH``) of the models measured in this run, by name.
    """
    logging.getLogger("srlab.data").setLevel(logging.ERROR)
    seconds, rounds = (3.0, 1) if quick else (6.0, 2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="srlab-bench-data-") as work:
        for name, (overrides, nbytes) in sources(Path(work)).items():
            results: dict[int, list[dict]] = {w: [] for w in WORKERS}
            for r in range(rounds):
                for w in WORKERS if r % 2 == 0 else WORKERS[::-1]:
                    results[w].append(measure(overrides, w, seconds))
            for w, res in results.items():
                rate = median([x["samples_per_s"] for x in res])
                row = {"source": name, "workers": w, "default": w == res[0]["default_workers"], "samples_per_s": rate,
                       "first_batch_s": median([x["first_batch_s"] for x in res]), "bytes_per_draw": nbytes}
                if esrgan_step_s:
                    need = BATCH / esrgan_step_s
                    row.update({"esrgan_needs": need, "headroom": rate / need})
                rows.append(row)
    for row in rows:  # CPU share: consumption over what one worker process (one core) delivers
        one = next(r for r in rows if r["source"] == row["source"] and r["workers"] == 1)
        if esrgan_step_s:
            row["cpu_share_at_esrgan_pace"] = row["esrgan_needs"] / one["samples_per_s"]
    return {"rows": rows, "esrgan_step_s": esrgan_step_s, "batch": BATCH, "patch": PATCH, "steps": steps or {},
            "epoch_starts": epoch_starts(2 if quick else 3)}


def table(result: dict) -> list[str]:
    step = result["esrgan_step_s"]
    need = f"{BATCH / step:.2f} samples/s (batch {BATCH} / {step:.2f} s)" if step else "n/a (train section not run)"
    lines = [f"Batch {result['batch']}, HR patch {result['patch']}. The ESRGAN step consumes {need}.", "",
             "| source | workers | samples/s | bytes per draw | first batch s | headroom vs ESRGAN | "
             "CPU share at ESRGAN pace |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        head = f"{r['headroom']:.0f}x" if "headroom" in r else "n/a"
        share = f"{r['cpu_share_at_esrgan_pace']:.1%}" if "cpu_share_at_esrgan_pace" in r else "n/a"
        w = f"{r['workers']}{' (default)' if r['default'] else ''}"
        nbytes = f"{r['bytes_per_draw'] / 1e3:,.0f} kB" if r.get("bytes_per_draw") else "n/a"
        lines.append(f"| {r['source']} | {w} | {r['samples_per_s']:.1f} | {nbytes} | {r['first_batch_s']:.2f} | "
                     f"{head} | {share} |")
    steps = result.get("steps") or {}
    if steps:
        lines += ["", "Consumption of the training steps measured in this run (batch "
                  f"{BATCH}): " + "; ".join(f"{m} {s:.3f} s/step = {BATCH / s:.1f} samples/s"
                                            for m, s in sorted(steps.items()))]
    starts = result.get("epoch_starts")
    if starts:
        off, on = starts[False], starts[True]
        lines += ["", f"Epoch start (wait for the first batch of a later epoch), default data `samples` as configured "
                  f"({off['workers']} workers, batch {off['batch']}, {off['batches_per_epoch']} batches per epoch): "
                  f"persistent_workers=false **{off['epoch_start_s']:.2f} s**, true **{on['epoch_start_s']:.2f} s**."]
    return lines

