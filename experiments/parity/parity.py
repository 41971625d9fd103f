"""srlab vs BasicSR 1.4.2: one small RRDBNet recipe trained by both tools, every checkpoint scored alike.

Not part of srlab (BasicSR is never a dependency). From the repository root, with srlab's Python:

    python experiments/parity/parity.py [--work parity_work] [--steps prepare,train,evaluate,report]

BasicSR runs from a separate virtualenv (``--bsr-python``), built as in
``experiments/benchmarks/compare_basicsr.py``:

    python -m venv basicsr-venv --system-site-packages
    basicsr-venv/bin/pip install wheel && basicsr-venv/bin/pip install --no-build-isolation basicsr==1.4.2 realesrgan

Steps (each skips what is already in ``--work``; delete a run folder to redo it):

- prepare: ``python -m srlab.prepare`` on SunHays80 (plain bicubic, 480 px sub-images, step 240) -> the
  pairs both tools train on; Set5 -> a tiny ``data.val_dir`` that srlab's data module needs (validation
  is switched off: every checkpoint is scored afterwards instead).
- train: per seed, srlab (``python -m srlab.train`` with overrides) then BasicSR (its ``train_pipeline``
  with an options YAML written here), one run at a time, niced, one intra-op thread each.
- evaluate: ``python -m srlab.evaluate`` on Set5 and Set14 for every saved generator of every run.
- report: ``report.py`` writes the table, the timings and the plot into this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATASETS = REPO.parent / "shared" / "datasets"  # ../shared/datasets beside the repository
TOOLS = ("srlab", "basicsr")

# The shared recipe. Augmentation: BasicSR draws hflip, vflip and a transpose at 1/2 each (the 8
# square symmetries, uniformly); srlab draws hflip, vflip (1/2 each) and k in {1,2,3} quarter turns
# with probability rot90, which is uniform over the same 8 only at rot90 = 3/4 (at its default 1/2,
# plain rotations by 90/270 degrees come half as often as the identity).
RECIPE = {
    "num_feat": 32, "num_block": 2, "num_grow_ch": 16, "scale": 4,
    "patch": 64, "batch": 8, "iters": 1000, "save_every": 100, "workers": 1,
    "lr": 5e-4, "betas": [0.9, 0.99], "milestones": [500, 750], "gamma": 0.5,
}
# BasicSR seeds its DataLoader workers with seed + worker_id, so seeds 0 and 1 would share a crop
# stream; seeds far apart keep the two runs independent on both sides.
SEEDS = (0, 100, 200, 300)


def net_overrides(prefix: str) -> list[str]:
    """The generator's size as Hydra overrides under ``prefix`` (train and evaluate use the same net)."""
    return [f"{prefix}.{k}={RECIPE[k]}" for k in ("num_feat", "num_block", "num_grow_ch")]


def srlab_command(work: Path, seed: int, run_dir: Path) -> list[str]:
    r = RECIPE
    return [
        sys.executable, "-m", "srlab.train", "model=rrdbnet", "data=paired", f"data.root={work / 'pairs'}",
        f"data.val_dir={work / 'val'}", *net_overrides("model.generator"), "model.ema_decay=0",
        f"model.optimizer.lr={r['lr']}", f"model.optimizer.betas={r['betas']}",
        f"model.scheduler.milestones={r['milestones']}", f"model.scheduler.gamma={r['gamma']}",
        f"data.patch_size={r['patch']}", f"data.batch_size={r['batch']}", f"data.num_workers={r['workers']}",
        # BasicSR trains in fp32: so does srlab here (auto would pick bf16-mixed on a CPU with native bf16)
        "data.augment.rot90=0.75", "trainer=cpu", "trainer.precision=32-true", f"trainer.max_steps={r['iters']}",
        "trainer.max_epochs=-1",
        "+trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "callbacks.early_stopping=null",
        "callbacks.comparison_grid=null", "callbacks.curves=null", "callbacks.progress_bar.refresh_rate=50",
        "callbacks.model_checkpoint.monitor=null", f"+callbacks.model_checkpoint.every_n_train_steps={r['save_every']}",
        "callbacks.model_checkpoint.save_top_k=-1", "callbacks.model_checkpoint.filename='iter{step:06d}'",
        f"seed={seed}", f"hydra.run.dir={run_dir}",
    ]


def basicsr_options(work: Path, seed: int, name: str) -> dict:
    """BasicSR's options for the same recipe: SRModel, PairedImageDataset, L1, Adam, MultiStepLR."""
    r = RECIPE
    return {
        "name": name, "model_type": "SRModel", "scale": r["scale"], "num_gpu": 0, "manual_seed": seed,
        "datasets": {"train": {
            "name": "SunHays80", "type": "PairedImageDataset", "dataroot_gt": str(work / "pairs" / "HQ"),
            "dataroot_lq": str(work / "pairs" / "LQ"), "filename_tmpl": "{}", "io_backend": {"type": "disk"},
            "gt_size": r["patch"], "use_hflip": True, "use_rot": True, "num_worker_per_gpu": r["workers"],
            "batch_size_per_gpu": r["batch"], "dataset_enlarge_ratio": 1, "prefetch_mode": None}},
        "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": r["scale"],
                      **{k: r[k] for k in ("num_feat", "num_block", "num_grow_ch")}},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0, "total_iter": r["iters"], "warmup_iter": -1,
            "optim_g": {"type": "Adam", "lr": r["lr"], "weight_decay": 0, "betas": r["betas"]},
            "scheduler": {"type": "MultiStepLR", "milestones": r["milestones"], "gamma": r["gamma"]},
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        # print_freq 10 = srlab's log_every_n_steps, so both loss curves have the same points
        "logger": {"print_freq": 10, "save_checkpoint_freq": r["save_every"], "use_tb_logger": False},
    }


def run_dir(work: Path, tool: str, seed: int) -> Path:
    return work / "runs" / f"{tool}_s{seed}"


def checkpoints(work: Path, tool: str, seed: int) -> dict[int, Path]:
    """Saved generators of one run by iteration: srlab's ``iterNNNNNN.ckpt``, BasicSR's ``net_g_N.pth``."""
    d = run_dir(work, tool, seed)
    pattern, files = (r"iter(\d+)\.ckpt", (d / "checkpoints").glob("iter*.ckpt")) if tool == "srlab" else \
        (r"net_g_(\d+)\.pth", (d / "experiments").glob("*/models/net_g_*.pth"))
    found = {int(m.group(1)): p for p in files if (m := re.fullmatch(pattern, p.name))}
    return dict(sorted(found.items()))


def sh(cmd: list[str], log: Path | None = None, env: dict | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    if log is None:
        rc = subprocess.call(["nice", "-n", "10", *map(str, cmd)], cwd=REPO, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            rc = subprocess.call(["nice", "-n", "10", *map(str, cmd)], cwd=REPO, env=env, stdout=f, stderr=f)
    if rc:
        sys.exit(f"failed (exit {rc}){f'; see {log}' if log else ''}: {' '.join(map(str, cmd))}")


def prepare(args) -> None:
    for src, out, extra in ((args.sunhays, "pairs", ["--subimage-size", "480", "--subimage-step", "240"]),
                            (DATASETS / "Set5" / "HR", "val", [])):
        if not (args.work / out / "HQ").is_dir():
            sh([sys.executable, "-m", "srlab.prepare", src, "-o", args.work / out, "--blur-radius", "0", "--bicubic", "pil", *extra])


def load_avg() -> float:
    return os.getloadavg()[0]


def train(args) -> None:
    # one intra-op thread: on this shared 2-core machine two threads ran an RRDBNet step ~10x slower
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    timings_file = args.work / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    for seed in args.seeds:
        for tool in TOOLS:
            name, d = f"{tool}_s{seed}", run_dir(args.work, tool, seed)
            if RECIPE["iters"] in checkpoints(args.work, tool, seed):
                continue
            if tool == "srlab":
                cmd = srlab_command(args.work, seed, d)
            else:
                d.mkdir(parents=True, exist_ok=True)
                opt = d / f"parity_{name}.yml"
                opt.write_text(yaml.safe_dump(basicsr_options(args.work, seed, f"parity_{name}"), sort_keys=False))
                cmd = [args.bsr_python, HERE / "basicsr_train.py", opt, d]
            before, load0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), load_avg(), time.time()
            sh(cmd, log=args.work / "runs" / f"{name}.log", env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            timings[name] = {"wall_s": round(time.time() - t0, 1), "cpu_s": round(cpu, 1),
                             "load_start": load0, "load_end": load_avg(), "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(t0))}
            timings_file.write_text(json.dumps(timings, indent=1))
            print(name, timings[name], flush=True)


def evaluate(args) -> None:
    for seed in args.seeds:
        for tool in TOOLS:
            ckpts, out = checkpoints(args.work, tool, seed), args.work / "eval" / f"{tool}_s{seed}"
            if not ckpts or (out / "results.json").is_file():
                continue
            weights = ",".join(str(p) for p in ckpts.values())
            labels = ",".join(f"it{i}" for i in ckpts)
            # model=rrdbnet + the net size: the architecture of BasicSR's bare .pth files (srlab's .ckpt carry theirs)
            sh([sys.executable, "-m", "srlab.evaluate", f"weights=[{weights}]", f"labels=[{labels}]",
                f"benchmarks=[{args.benchmarks}]", "degradation=bicubic", "resize=pil", "crop_border=4",
                "model=rrdbnet", *net_overrides("model.generator"), "lpips=false", "figures.count=0", f"out={out}"],
               log=args.work / "eval" / f"{tool}_s{seed}.log",
               env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("parity_work"), help="pairs, runs and evaluations")
    p.add_argument("--bsr-python", default="basicsr-venv/bin/python", help="interpreter of the BasicSR virtualenv")
    p.add_argument("--sunhays", type=Path, default=DATASETS / "SunHays80", help="HQ training photos")
    p.add_argument("--benchmarks", default=f"{DATASETS / 'Set5'},{DATASETS / 'Set14'}")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--iters", type=int, default=RECIPE["iters"])
    p.add_argument("--save-every", type=int, default=RECIPE["save_every"])
    p.add_argument("--steps", default="prepare,train,evaluate,report")
    args = p.parse_args()
    RECIPE.update(iters=args.iters, save_every=args.save_every,
                  milestones=[args.iters // 2, args.iters * 3 // 4])
    args.work.mkdir(parents=True, exist_ok=True)
    steps = args.steps.split(",")
    for step in ("prepare", "train", "evaluate"):
        if step in steps:
            globals()[step](args)
    if "report" in steps:
        from report import write_report  # noqa: PLC0415 - matplotlib only for this step

        write_report(args, RECIPE, {(t, s): checkpoints(args.work, t, s) for t in TOOLS for s in args.seeds})


if __name__ == "__main__":
    main()
