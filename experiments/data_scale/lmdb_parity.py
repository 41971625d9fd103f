"""An LMDB written by BasicSR's own ``make_lmdb_from_imgs`` gives srlab the batches the same pairs give from folders.

Run with the BasicSR virtualenv's interpreter (it sees srlab through the repository root):

    basicsr-venv/bin/python experiments/data_scale/lmdb_parity.py [--work data_scale_work]

1. ``srlab.prepare`` cuts the bundled sample photos into 192 px HQ sub-images and their x4 LQ (PNG folders);
2. BasicSR 1.4.2's ``basicsr.utils.lmdb_util.make_lmdb_from_imgs`` stores each folder as an LMDB,
   keys = file stems, as its ``scripts/data_preparation/create_lmdb.py`` does for DIV2K;
3. BasicSR's own LMDB reader (``FileClient('lmdb')`` + ``imfrombytes``) and srlab's read every record:
   same pixels;
4. ``data=paired`` on the folders and ``data=lmdb`` on the stores (same seed), and ``data=hq_folder`` vs
   ``data=lmdb`` HQ-only with the report's degradation: the first ``--batches`` training batches and
   every validation batch compared tensor for tensor.

Writes ``lmdb_parity.md`` beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
from pathlib import Path

import torchvision.transforms._functional_tensor as _functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)  # renamed in torchvision 0.17
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from basicsr.utils import FileClient, imfrombytes  # noqa: E402
from basicsr.utils.lmdb_util import make_lmdb_from_imgs  # noqa: E402

from srlab import prepare  # noqa: E402
from srlab.bench.utils import commit_label  # noqa: E402
from srlab.data.datamodule import SRDataModule  # noqa: E402
from srlab.data.lmdb_store import open_store  # noqa: E402
from srlab.data.samples import materialize_samples  # noqa: E402

COMMON = {"patch_size": 96, "val_patch_size": 96, "batch_size": 8, "val_batch_size": 4, "num_workers": 0,
          "samples_per_epoch": 400, "val_fraction": 0.1, "seed": 7}


def basicsr_lmdb(folder: Path, out: Path) -> Path:
    """BasicSR's own writer, called as create_lmdb.py calls it (sorted file names, keys = stems)."""
    names = sorted(p.name for p in folder.glob("*.png"))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        make_lmdb_from_imgs(str(folder), str(out), names, [Path(n).stem for n in names])
    return out


def same_records(store_path: Path) -> tuple[int, int]:
    """(records, records whose pixels differ) between BasicSR's LMDB reader and srlab's."""
    client = FileClient("lmdb", db_paths=[str(store_path)], client_keys=["gt"])
    keys = [line.split(".")[0] for line in (store_path / "meta_info.txt").read_text().splitlines()]
    theirs = {k: imfrombytes(client.get(k, "gt"), float32=False)[..., ::-1] for k in keys}  # BasicSR: BGR uint8
    client.client._client["gt"].close()  # lmdb opens a folder once per process
    store, _, bad = open_store(store_path)
    assert not bad, bad
    differ = sum(not np.array_equal(theirs[k], np.asarray(store.record(k).load_rgb())) for k in store.meta)
    return len(store.meta), differ


def compare(a: SRDataModule, b: SRDataModule, batches: int) -> dict:
    for dm in (a, b):
        dm.setup("fit")
    out = {"train": 0, "train_equal": 0, "val": 0, "val_equal": 0}
    for kind, la, lb in (("train", a.train_dataloader(), b.train_dataloader()),
                         ("val", a.val_dataloader(), b.val_dataloader())):
        for n, (x, y) in enumerate(zip(la, lb)):
            if kind == "train" and n >= batches:
                break
            out[kind] += 1
            out[f"{kind}_equal"] += all(torch.equal(x[k], y[k]) for k in ("gt", "lq") if k in x) and "lq" in x
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, default=Path("data_scale_work"))
    p.add_argument("--batches", type=int, default=50)
    args = p.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    samples = materialize_samples(work / "samples")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert prepare.main([str(samples), "-o", str(work / "pairs"), "--subimage-size", "192",
                             "--subimage-step", "96"]) == 0
    hq = basicsr_lmdb(work / "pairs" / "HQ", work / "hq.lmdb")
    lq = basicsr_lmdb(work / "pairs" / "LQ", work / "lq.lmdb")
    rows = []
    for name, store in (("HQ", hq), ("LQ", lq)):
        n, differ = same_records(store)
        rows.append(f"| BasicSR's reader vs srlab's, {name} records | {n} | {n - differ} identical |")
    paired = compare(SRDataModule(source="paired", root=work / "pairs", degradation="none", **COMMON),
                     SRDataModule(source="lmdb", hq_lmdb=hq, lq_lmdb=lq, degradation="none", **COMMON), args.batches)
    on_the_fly = compare(SRDataModule(source="hq_folder", train_dir=work / "pairs" / "HQ", degradation="report", **COMMON),
                         SRDataModule(source="lmdb", hq_lmdb=hq, degradation="report", **COMMON), args.batches)
    for name, r in (("data=paired folders vs data=lmdb pairs", paired),
                    ("data=hq_folder vs data=lmdb HQ only (report degradation)", on_the_fly)):
        rows.append(f"| {name}: training batches | {r['train']} | {r['train_equal']} identical (gt and lq) |")
        rows.append(f"| {name}: validation batches | {r['val']} | {r['val_equal']} identical (gt and lq) |")
    size = {p.name: sum(f.stat().st_size for f in p.iterdir()) for p in (hq, lq)}
    pngs = {d: sum(f.stat().st_size for f in (work / "pairs" / d).glob("*.png")) for d in ("HQ", "LQ")}
    text = "\n".join([
        "# LMDB written by BasicSR 1.4.2 vs folders (srlab reads both)", "",
        "Command (from the repository root, BasicSR's virtualenv):", "",
        "    basicsr-venv/bin/python experiments/data_scale/lmdb_parity.py", "",
        f"Commit {commit_label()}; machine: 2-core AMD EPYC, AVX2, no native bf16 (shared with another run), "
        f"torch {torch.__version__.split('+')[0]}, BasicSR 1.4.2.", "",
        f"Pairs: `srlab.prepare` of the 8 bundled sample photos, `--subimage-size 192 --subimage-step 96` "
        f"(x4, blur 1.5): {len(list((work / 'pairs' / 'HQ').glob('*.png')))} pairs. Stores: BasicSR's "
        "`make_lmdb_from_imgs` (PNG compression level 1, keys = stems). Data settings: "
        + ", ".join(f"{k}={v}" for k, v in COMMON.items()) + ".", "",
        "| check | count | result |", "|---|---:|---|", *rows, "",
        f"Bytes: HQ PNG folder {pngs['HQ']:,}, hq.lmdb {size['hq.lmdb']:,}; LQ PNG folder {pngs['LQ']:,}, "
        f"lq.lmdb {size['lq.lmdb']:,} (BasicSR re-encodes at PNG compression level 1).", ""])
    (HERE / "lmdb_parity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
