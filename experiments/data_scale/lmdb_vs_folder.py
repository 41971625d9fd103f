"""A few minutes of training from an LMDB written by BasicSR's own code, beside the same pairs from folders.

Two steps, two interpreters (BasicSR lives in its own virtualenv, see ``experiments/parity``):

    basicsr-venv/bin/python experiments/data_scale/lmdb_vs_folder.py write --pairs data/sunhays_x4 --work lmdb_work
    python experiments/data_scale/lmdb_vs_folder.py train --pairs data/sunhays_x4 --work lmdb_work \
        --benchmarks ../shared/datasets [--steps 800]

``write`` stores ``PAIRS/HQ`` and ``PAIRS/LQ`` (``srlab.prepare`` output) as BasicSR LMDBs with
``basicsr.utils.lmdb_util.make_lmdb_from_imgs``, as its ``create_lmdb.py`` does (keys = file stems).
``train`` runs the cpu_hour_frontier recipe (SRVGGNetCompact 32x8, one thread, constant LR, Set5 every
100 batches) for ``--steps`` batches twice at once: ``data=paired`` on the folders and ``data=lmdb`` on
the stores, same seed. Writes ``lmdb_vs_folder.md`` and ``lmdb_vs_folder.png`` beside this file.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

from srlab.bench.utils import commit_label

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RECIPE = ["experiment=cpu_hour_frontier", "model=srvgg", "model.generator.num_feat=32", "model.generator.num_conv=8",
          "+model.generator.residual=bicubic", "model.optimizer.lr=1e-3", "~callbacks.training_budget",
          "trainer.deterministic=true"]


def write(pairs: Path, work: Path) -> None:
    sys.path.insert(0, str(HERE))
    from lmdb_parity import basicsr_lmdb  # BasicSR's writer, called as create_lmdb.py calls it

    work.mkdir(parents=True, exist_ok=True)
    for side in ("HQ", "LQ"):
        basicsr_lmdb(pairs / side, work / f"{side}.lmdb")
        print(work / f"{side}.lmdb", (work / f"{side}.lmdb" / "meta_info.txt").read_text().count("\n"), "records")


def curve(run: Path) -> list[tuple[int, float]]:
    rows = csv.DictReader(open(run / "csv" / "metrics.csv"))
    return [(int(r["step"]) + 1, float(r["val/Set5/psnr_y"])) for r in rows if r.get("val/Set5/psnr_y")]


def train(pairs: Path, work: Path, benchmarks: Path, steps: int) -> None:
    def rel(path: Path) -> str:  # the runs start in the repository root; the recorded commands stay portable
        return os.path.relpath(path.resolve(), ROOT)

    sources = {"folder": [f"data.root={rel(pairs)}"],
               "lmdb": ["data=lmdb", f"data.hq_lmdb={rel(work / 'HQ.lmdb')}", f"data.lq_lmdb={rel(work / 'LQ.lmdb')}",
                        "data.root=null"]}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs, start = {}, time.monotonic()
    for name, overrides in sources.items():
        cmd = [sys.executable, "-m", "srlab.train", *RECIPE, *overrides, f"trainer.max_steps={steps}",
               f"benchmarks_dir={rel(benchmarks)}", f"hydra.run.dir={rel(work / name)}"]
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(work / f"{name}.log", "w"),
                                        stderr=subprocess.STDOUT), " ".join(cmd[1:]))
    walls: dict[str, float] = {}
    while len(walls) < len(procs):
        for name, (proc, _) in procs.items():
            if name not in walls and proc.poll() is not None:
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed: see {work / name}.log")
                walls[name] = time.monotonic() - start
        time.sleep(1)
    curves = {name: curve(work / name) for name in sources}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, points), style in zip(curves.items(), ("-o", "--x")):
        ax.plot(*zip(*points), style, label=f"data={'paired' if name == 'folder' else name}")
    ax.set(xlabel="training batches (16 x 48 px LR)", ylabel="Set5 PSNR-Y (dB)",
           title="srvgg 32x8, SunHays80 x4 pairs: folders vs BasicSR's LMDB")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "lmdb_vs_folder.png", dpi=110)

    same = curves["folder"] == curves["lmdb"]
    lines = ["# Training from BasicSR's LMDB beside the same pairs from folders", "",
             f"Commit `{commit_label()}`;"
             f" the two runs at once, one thread each; {steps} batches of 16. Commands:", ""]
    lines += [f"- {name}: `python {cmd}`" for name, (_, cmd) in procs.items()]
    lines += ["", "| batches | " + " | ".join(f"Set5 PSNR-Y, {n}" for n in curves) + " |",
              "|---:|" + "---:|" * len(curves)]
    for (step, a), (_, b) in zip(curves["folder"], curves["lmdb"]):
        lines.append(f"| {step} | {a:.4f} | {b:.4f} |")
    lines += ["", f"Wall time (both at once): folder {walls['folder']:.0f} s, lmdb {walls['lmdb']:.0f} s.",
              f"Curves {'identical to the last digit' if same else 'NOT identical'}.", "",
              "![curves](lmdb_vs_folder.png)"]
    (HERE / "lmdb_vs_folder.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("step", choices=["write", "train"])
    p.add_argument("--pairs", type=Path, required=True, help="srlab.prepare output with HQ/ and LQ/")
    p.add_argument("--work", type=Path, default=Path("lmdb_work"))
    p.add_argument("--benchmarks", type=Path, default=Path("../shared/datasets"), help="folder holding Set5/")
    p.add_argument("--steps", type=int, default=800)
    args = p.parse_args()
    if args.step == "write":
        write(args.pairs, args.work)
    else:
        train(args.pairs, args.work, args.benchmarks, args.steps)


if __name__ == "__main__":
    main()
