"""The CPU-hour frontier: every efficient architecture trained for the same CPU budget, then one table.

    python experiments/cpu_hour_frontier/run.py --work frontier_work --data data/sunhays_x4 \
        --benchmarks ../shared/datasets [--steps train,evaluate,report] [--only NAME,...] [--minutes 8]

train: each run of RUNS is ``python -m srlab.train experiment=cpu_hour_frontier model=...`` with one
thread (``OMP_NUM_THREADS=1``), ``--parallel`` at a time; a run that finished (its ``wall.json``) is
skipped. evaluate: every run's last.ckpt exported (``srlab.export``: re-parameterisable nets fused, as
shipped), then one ``python -m srlab.evaluate`` of them all on Set5/Set14 (MATLAB bicubic LR, Y), so the speeds (ms per output MP, ``--speed-threads`` threads) are timed side by side in
one process. report: ``table.md``, ``frontier.png`` (PSNR against ms/MP), ``curves.png`` and the
``srlab.compare`` report of the runs, in this folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (model, overrides): widths where width matters; one rate per family (1e-3 for the conv nets,
# 5e-4 where attention or 16 plain residual blocks made 1e-3 the riskier choice)
RUNS: dict[str, tuple[str, list[str]]] = {
    "srvgg-32x8": ("srvgg", ["model.generator.num_feat=32", "model.generator.num_conv=8",
                             "+model.generator.residual=bicubic", "model.optimizer.lr=1e-3"]),
    "srvgg-48x8": ("srvgg", ["model.generator.num_feat=48", "model.generator.num_conv=8",
                             "+model.generator.residual=bicubic", "model.optimizer.lr=1e-3"]),
    "span-28": ("span", ["model.generator.feature_channels=28", "model.optimizer.lr=1e-3"]),
    "span-48": ("span", ["model.generator.feature_channels=48", "model.optimizer.lr=1e-3"]),
    # the same SPAN runs trained before 4b6831f (srlab/nets/span.py): the branch chain in each training forward
    "span-28-branches": ("span", ["model.generator.feature_channels=28", "model.optimizer.lr=1e-3"]),
    "span-48-branches": ("span", ["model.generator.feature_channels=48", "model.optimizer.lr=1e-3"]),
    "safmn-36x8": ("safmn", ["model.optimizer.lr=1e-3"]),
    "rlfn-52x6": ("rlfn", ["model.optimizer.lr=1e-3"]),
    "imdn-64x6": ("imdn", ["model.optimizer.lr=1e-3"]),
    "omnisr-64": ("omnisr", ["model.optimizer.lr=5e-4"]),
    "edsr-baseline-64x16": ("edsr", ["model.optimizer.lr=5e-4"]),
}


def _runs(only: str | None) -> list[str]:
    names = list(RUNS) if not only else only.split(",")
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"--only: unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}")
    return names


def _train_command(name: str, args: argparse.Namespace) -> list[str]:
    model, overrides = RUNS[name]
    return [sys.executable, "-m", "srlab.train", "experiment=cpu_hour_frontier", f"model={model}", *overrides,
            f"data.root={args.data}", f"benchmarks_dir={args.benchmarks}",
            f"callbacks.training_budget.minutes={args.minutes}", f"task_name={name}",
            f"hydra.run.dir={args.work / 'runs' / name}", *args.extra]


def _boost(pid: int, nice: int | None) -> None:
    # The kernel shares CPU between session groups, not processes: a plain `nice` does not keep other
    # sessions' work off the runs. Their CPU-time budget stays fair either way; this keeps wall short.
    if nice is not None:
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        except OSError as exc:
            print(f"(autogroup nice not set: {exc})")


def train(args: argparse.Namespace) -> None:
    pending = [n for n in _runs(args.only) if not (args.work / "runs" / n / "wall.json").is_file()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            folder = args.work / "runs" / name
            folder.mkdir(parents=True, exist_ok=True)
            command = _train_command(name, args)
            log = open(folder / "stdout.log", "w")
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            _boost(proc.pid, args.autogroup_nice)
            running[name] = (proc, time.time())
            print(f"{time.strftime('%H:%M:%S')} started {name}: {' '.join(command[1:])}", flush=True)
        time.sleep(5)
        for name, (proc, start) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            wall = time.time() - start
            print(f"{time.strftime('%H:%M:%S')} {name} exited {proc.returncode} after {wall / 60:.1f} min", flush=True)
            if proc.returncode == 0:
                (args.work / "runs" / name / "wall.json").write_text(json.dumps(
                    {"wall_s": round(wall, 1), "start": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start)),
                     "command": " ".join(["OMP_NUM_THREADS=1", "python", *_train_command(name, args)[1:]])}))


def evaluate(args: argparse.Namespace) -> None:
    names = [n for n in _runs(args.only) if (args.work / "runs" / n / "checkpoints" / "last.ckpt").is_file()]
    files = []
    for name in names:  # exported as shipped: SPAN's branches folded into one conv each (deploy form)
        out = args.work / "export" / name
        if not any(out.glob("*.safetensors")):
            subprocess.run([sys.executable, "-m", "srlab.export", str(args.work / "runs" / name / "checkpoints" / "last.ckpt"),
                            "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
        files.append(str(next(out.glob("*.safetensors"))))
    command = [sys.executable, "-m", "srlab.evaluate", f"weights=[{','.join(files)}]", f"labels=[{','.join(names)}]",
               f"benchmarks=[{args.benchmarks}/Set5,{args.benchmarks}/Set14]", "degradation=bicubic",
               "resize=matlab", "lpips=false", f"out={args.work / 'eval'}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.speed_threads)}
    subprocess.run(command, env=env, check=True)


def _steps_and_curve(run: Path) -> tuple[int, list[tuple[int, float]]]:
    """The last training step and the (step, val/Set5/psnr_y) points of a run's CSV log."""
    steps, curve = 0, []
    with open(run / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            step = int(row["step"]) if row.get("step") else 0
            steps = max(steps, step)
            if row.get("val/Set5/psnr_y"):
                curve.append((step, float(row["val/Set5/psnr_y"])))
    return steps, curve


def report(args: argparse.Namespace) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads((args.work / "eval" / "results.json").read_text())
    rows = {(r["method"], r["benchmark"]): r for r in results["results"]}
    names = [n for n in _runs(args.only) if (n, "Set5") in rows]
    lines = ["| run | Set5 PSNR-Y / SSIM-Y | Set14 PSNR-Y / SSIM-Y | params | MACs (256² LR) | ms/MP | steps | s/step "
             "| train GFLOP/s | wall (min) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for bicubic in sorted({m for m, _ in rows if m.startswith("bicubic")}):
        s5, s14 = rows[(bicubic, "Set5")], rows[(bicubic, "Set14")]
        lines.append(f"| {bicubic} | {s5['psnr_y']:.3f} / {s5['ssim_y']:.4f} | {s14['psnr_y']:.3f} / {s14['ssim_y']:.4f} "
                     "| — | — | — | — | — | — | — |")
    fig, (ax_front, ax_curve) = plt.subplots(1, 2, figsize=(13, 5))
    for name in sorted(names, key=lambda n: -rows[(n, "Set5")]["psnr_y"]):
        s5, s14 = rows[(name, "Set5")], rows[(name, "Set14")]
        run = args.work / "runs" / name
        steps, curve = _steps_and_curve(run)
        wall = json.loads((run / "wall.json").read_text())["wall_s"] / 60 if (run / "wall.json").is_file() else float("nan")
        ms, step_s = s5.get("ms_per_mp"), args.minutes * 60 / max(steps, 1)
        # fwd + bwd ~ 3 forwards of 2 FLOP per MAC, on a batch of 16 48x48 LR patches (MACs scale with pixels);
        # the exported net's MACs: SPAN's training forward adds the (small) kernel fusion on top
        gflops = 6 * s5["macs_256"] * (48 * 48) / (256 * 256) * 16 / step_s / 1e9
        lines.append(f"| {name} | {s5['psnr_y']:.3f} / {s5['ssim_y']:.4f} | {s14['psnr_y']:.3f} / {s14['ssim_y']:.4f} "
                     f"| {s5['params'] / 1e3:.0f} K | {s5['macs_256'] / 1e9:.1f} G | {ms:.0f} | {steps} | {step_s:.2f} "
                     f"| {gflops:.0f} | {wall:.1f} |")
        ax_front.scatter(ms, s5["psnr_y"])
        left = len(ax_front.texts) % 2  # alternate above right / below left: neighbours' labels do not overlap
        ax_front.annotate(name, (ms, s5["psnr_y"]), textcoords="offset points", xytext=(-5, -11) if left else (5, 3),
                          ha="right" if left else "left", fontsize=8)
        ax_curve.plot(*zip(*curve), marker=".", label=name) if curve else None
    ax_front.set(xscale="log", xlabel=f"CPU ms per output megapixel (fp32, {args.speed_threads} thread(s))",
                 ylabel="Set5 PSNR-Y (dB)", title=f"x4 after {args.minutes} CPU-minutes of training each")
    ax_front.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax_front.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_front.set_xticks([200, 300, 500, 1000, 2000, 5000])
    ax_curve.set(xlabel="training batch (16 x 48² LR)", ylabel="Set5 PSNR-Y (dB)", title="validation while training")
    ax_curve.legend(fontsize=8)
    for ax in (ax_front, ax_curve):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "frontier.png", dpi=120)
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    subprocess.run([sys.executable, "-m", "srlab.compare", *(str(args.work / "runs" / n) for n in names),
                    "-o", str(HERE / "report")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs and the evaluation")
    parser.add_argument("--data", default="data/sunhays_x4", help="pairs prepared by srlab.prepare")
    parser.add_argument("--benchmarks", default="../shared/datasets", help="folder holding Set5/ and Set14/")
    parser.add_argument("--steps", default="train,evaluate,report")
    parser.add_argument("--only", help="comma-separated run names (default: all of RUNS)")
    parser.add_argument("--minutes", type=float, default=8.0, help="CPU minutes of training per run")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (one thread each)")
    parser.add_argument("--speed-threads", type=int, default=2, help="threads for the evaluation's speed column")
    parser.add_argument("--autogroup-nice", type=int, help="e.g. -15: give the runs the CPU first (root)")
    parser.add_argument("extra", nargs="*", help="more overrides for every training run")
    args = parser.parse_args()
    for step in args.steps.split(","):
        {"train": train, "evaluate": evaluate, "report": report}[step](args)


if __name__ == "__main__":
    main()
