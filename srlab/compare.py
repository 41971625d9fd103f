"""Compare runs: ``python -m srlab.compare RUN_OR_SWEEP_DIRS... -o OUT_DIR``.

Writes ``OUT_DIR/report.html`` (self-contained, images embedded) and ``OUT_DIR/report.md`` with
PNGs beside it: a metrics table with a row per run, the training curves of all runs on shared
axes, PSNR against LPIPS/DISTS per run and validation step (where ``data.val_sets`` measured them),
each run's latest validation grid side by side and a verdict per metric (the lowest LPIPS/DISTS wins). Each run is shown
by its :func:`~srlab.runs.naming.run_name` and one colour. Works from the run folders alone (CSV
logs, checkpoints, ``.hydra/``).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path

from srlab.errors import user_errors
from srlab.runs.naming import name_of_run_dir, shown_path
from srlab.runs.report import RunInfo, render_html, render_markdown
from srlab.runs.sweep import METRICS_CSV, find_runs, summarize_run


def count_params(run_dir: Path) -> tuple[float, str]:
    """Generator parameter count from a checkpoint's state dict, and the generator's class name."""
    from srlab.errors import SRLabError
    from srlab.infer import read_stored

    ckpts = sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.name != "last.ckpt")
    if not ckpts:
        return float("nan"), ""
    try:
        stored = read_stored(ckpts[0])
    except SRLabError:
        return float("nan"), ""
    params = sum(t.numel() for t in stored.state_dict.values())
    target = str((stored.stored.config or {}).get("_target_", ""))
    return float(params) if params else float("nan"), target.rsplit(".", 1)[-1]


def model_name(run_dir: Path, generator: str) -> str:
    """``<model config> (<generator class>)``, e.g. ``esrgan (RRDBNet)``; the config choice needs ``.hydra/``."""
    import yaml

    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    choice = ""
    if hydra_file.is_file():
        hydra_cfg = (yaml.safe_load(hydra_file.read_text()) or {}).get("hydra", {})
        choice = str((hydra_cfg.get("runtime", {}).get("choices") or {}).get("model", ""))
    if choice and generator:
        return f"{choice} ({generator})"
    return choice or generator or "-"


def seconds_per_step(run_dir: Path, frame) -> tuple[float, str]:
    """Mean seconds per optimizer step: a logged ``train/step_time`` column, else the log files' times.

    File times span fit start (``csv/hparams.yaml``) to the last log write, validation included.
    """
    for column in ("train/step_time", "train/step_time_step"):
        if column in frame.columns and frame[column].notna().any():
            return float(frame[column].dropna().mean()), "logged"
    starts = [p for p in (run_dir / "csv" / "hparams.yaml", run_dir / ".hydra" / "config.yaml") if p.is_file()]
    steps = frame["step"].max() if "step" in frame.columns and len(frame) else float("nan")
    if not starts or not steps or math.isnan(steps):
        return float("nan"), ""
    elapsed = (run_dir / METRICS_CSV).stat().st_mtime - starts[0].stat().st_mtime
    return (elapsed / steps, "file times") if elapsed > 0 else (float("nan"), "")


def latest_grid(run_dir: Path) -> Path | None:
    """The run's last ``images/val_epochNNN.png`` comparison grid (of the first benchmark set's, ``images/<set>/``)."""
    folders = [run_dir / "images", *sorted(p for p in (run_dir / "images").glob("*") if p.is_dir())]
    found = next((g for folder in folders if (g := list(folder.glob("val_epoch*.png")))), [])
    grids = sorted(found, key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    return grids[-1] if grids else None


def _folder_labels(runs: list[Path]) -> list[str]:
    if len(runs) == 1:
        return [runs[0].name]
    root = Path(os.path.commonpath([str(r.resolve()) for r in runs]))
    return [str(r.resolve().relative_to(root)) or r.name for r in runs]


def run_labels(runs: list[Path]) -> list[str]:
    """Each run's :func:`~srlab.runs.naming.run_name` (its folder without a Hydra record), made unique.

    Two runs of the same name (the same sweep made twice) get their folders appended.
    """
    folders = _folder_labels(runs)
    names = [name_of_run_dir(r) or f for r, f in zip(runs, folders)]
    return [f"{n} ({f})" if names.count(n) > 1 else n for n, f in zip(names, folders)]


def collect(paths: list[str | Path]) -> list[RunInfo]:
    """Expand run and sweep folders into the runs to compare (each once, in the order given)."""
    from srlab.runs.plots import read_metrics

    runs: list[Path] = []
    for path in paths:
        runs += [r for r in find_runs(path) if r.resolve() not in {x.resolve() for x in runs}]
    from srlab.runs.plots import run_colours

    infos = []
    labels = run_labels(runs)
    colours = run_colours(labels)
    for label, run_dir in zip(labels, runs):
        row = summarize_run(run_dir)
        row["params"], generator = count_params(run_dir)
        row["model"] = model_name(run_dir, generator)
        metrics_file = run_dir / METRICS_CSV
        frame = read_metrics(metrics_file) if metrics_file.is_file() and metrics_file.stat().st_size else None
        row["step_time"], row["step_time_source"] = seconds_per_step(run_dir, frame) if frame is not None else (
            float("nan"), "")
        row["frame"] = frame
        infos.append(RunInfo(label, run_dir, row, latest_grid(run_dir), colours[label], shown_path(run_dir)))
    return infos


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "run"


def build_report(paths: list[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Compare the runs under ``paths``; write ``report.html`` and ``report.md`` into ``out_dir``."""
    from srlab.runs.plots import plot_perception_distortion, plot_runs

    infos = collect(paths)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    frames = {i.label: f for i in infos if (f := i.row.pop("frame")) is not None}
    colours = {i.label: i.colour for i in infos}
    curves = plot_runs(frames, out_dir / "curves.png", title="all runs, shared axes", colours=colours) if frames else None
    trade = plot_perception_distortion(frames, out_dir / "perception_distortion.png", colours) if frames else None
    grids = {}
    for info in infos:
        if info.grid:
            copy = out_dir / "images" / f"{_slug(info.label)}_{info.grid.name}"
            shutil.copyfile(info.grid, copy)
            grids[info.label] = str(copy.relative_to(out_dir))
    title = f"srlab comparison of {len(infos)} run{'s' if len(infos) != 1 else ''}, " \
            f"{datetime.now():%Y-%m-%d %H:%M}"
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(render_html(infos, curves, title, trade))
    md_path.write_text(render_markdown(infos, curves, grids, title, trade))
    return html_path, md_path


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry point; SRLabError becomes ``error: <message>`` and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m srlab.compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run folders (outputs/<date>/<time>) or sweep folders (multirun/...)")
    parser.add_argument("-o", "--out", default="report", help="output folder (default: ./report)")
    args = parser.parse_args(argv)
    html_path, md_path = build_report(args.paths, args.out)
    print(f"wrote {html_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
