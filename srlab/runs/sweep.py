"""Run folders and sweeps: find the runs under a path, sum each up, and write a sweep's summary table.

A run folder holds ``csv/metrics.csv`` (and, from the CLI, ``.hydra/``); a sweep folder
(``multirun/<date>/<time>/``) holds one run folder per job. :class:`SweepSummary` is a Hydra
callback that writes ``summary.csv`` and ``summary.md`` into the sweep folder when a multirun ends.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from srlab.errors import SRLabError
from srlab.metrics.perceptual import PERCEPTUAL, lower_is_better
from srlab.runs.naming import MULTIRUN_YAML, name_of_run_dir, short_values, shown_path

log = logging.getLogger(__name__)
METRICS_CSV = Path("csv") / "metrics.csv"
HYDRA_CONFIG = Path(".hydra") / "config.yaml"
# conf/train.yaml's `monitor` and the checkpoint callback's mode: what a run without a record was ranked by
DEFAULT_MONITOR = ("val/psnr", "max")
# summary columns: (title, key of summarize_run's dict, number format)
SUMMARY_COLUMNS = [
    ("best val/psnr", "best_psnr", "{:.3f}"),
    ("last val/psnr", "last_psnr", "{:.3f}"),
    ("best val/ssim", "best_ssim", "{:.4f}"),
    ("last val/ssim", "last_ssim", "{:.4f}"),
    ("val/psnr_bicubic", "psnr_bicubic", "{:.3f}"),
    ("last step", "steps", "{:.0f}"),
]


def is_run_dir(path: Path) -> bool:
    """True for a training run's folder (its CSV log or its Hydra config is there)."""
    return (path / METRICS_CSV).is_file() or (path / HYDRA_CONFIG).is_file()


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(path: str | Path) -> list[Path]:
    """The run folders at ``path``: the folder itself if it is a run, else every run below it (a sweep).

    Raises:
        SRLabError: ``path`` does not exist or holds no run.
    """
    path = Path(path)
    if not path.is_dir():
        raise SRLabError(f"{path}: no such folder")
    if is_run_dir(path):
        return [path]
    runs: list[Path] = []
    stack = [path]
    while stack:  # stop descending at a run: a two-stage run's stage1/ belongs to it
        folder = stack.pop()
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if is_run_dir(child):
                runs.append(child)
            elif child.name not in ("wandb", "checkpoints", "images", "plots", "csv"):
                stack.append(child)
    if not runs:
        raise SRLabError(
            f"{path}: not a run or sweep folder (no {METRICS_CSV} or {HYDRA_CONFIG} in it or below); "
            "pass a run folder like outputs/<date>/<time> or a sweep folder like multirun/<date>/<time>"
        )
    return sorted(runs, key=_natural_key)


def read_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides the run was started with (``.hydra/overrides.yaml``), or []."""
    file = run_dir / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return []
    return [str(o) for o in (yaml.safe_load(file.read_text()) or [])]


def _column(frame, name: str):
    for column in (name, f"{name}_epoch", f"{name}_step"):
        if column in frame.columns and frame[column].notna().any():
            return frame[column].dropna()
    return None


def val_set_names(frame) -> list[str]:
    """The benchmark sets of ``data.val_sets`` that a run's log holds (``val/<name>/psnr_y``), sorted."""
    return sorted({m[1] for c in frame.columns if (m := re.match(r"^val/([^/]+)/psnr_y(?:_epoch|_step)?$", c))})


def monitor_of(run_dir: Path) -> tuple[str, str]:
    """The metric the run picked its best checkpoint by and its mode: ``monitor`` and
    ``callbacks.model_checkpoint.mode`` of ``.hydra/config.yaml`` (``val/psnr``, ``max`` where unset)."""
    monitor, mode = DEFAULT_MONITOR
    file = run_dir / HYDRA_CONFIG
    if file.is_file():
        cfg = OmegaConf.create(yaml.safe_load(file.read_text()) or {})
        for key, default in (("monitor", monitor), ("callbacks.model_checkpoint.mode", mode)):
            try:  # an interpolation that cannot resolve outside the run keeps the default
                value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
            except Exception:
                value = None
            if key == "monitor":
                monitor = str(value) if value else default
            else:
                mode = str(value) if value in ("max", "min") else default
    return monitor, mode


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Best/last validation metrics, the best of its monitored metric and its step count, from its logs (NaN where missing).

    A ``data.val_sets`` benchmark's best is its highest PSNR/SSIM and its lowest LPIPS/DISTS (``best_<set>_lpips``,
    present only where logged), each over validation epochs.
    """
    from srlab.runs.plots import read_metrics

    nan = float("nan")
    row: dict[str, Any] = {key: nan for _, key, _ in SUMMARY_COLUMNS}
    monitor, mode = monitor_of(run_dir)
    row.update(dir=shown_path(run_dir), overrides=" ".join(read_overrides(run_dir)), status="no metrics",
               monitor=monitor, mode=mode, best_monitor=nan)
    metrics_file = run_dir / METRICS_CSV
    if not metrics_file.is_file() or metrics_file.stat().st_size == 0:
        return row
    frame = read_metrics(metrics_file)
    for name in val_set_names(frame):  # data.val_sets: whole-image benchmark scores (Y, as published)
        for metric in ("psnr_y", "ssim_y", *PERCEPTUAL):
            series, bicubic = _column(frame, f"val/{name}/{metric}"), _column(frame, f"val/{name}/{metric}_bicubic")
            if series is None and metric in PERCEPTUAL:
                continue  # not measured: no column
            best = (series.min() if lower_is_better(metric) else series.max()) if series is not None else nan
            row[f"best_{name}_{metric}"] = float(best)
            row[f"{name}_{metric}_bicubic"] = float(bicubic.iloc[-1]) if bicubic is not None else nan
    for name, best_key, last_key in (("val/psnr", "best_psnr", "last_psnr"), ("val/ssim", "best_ssim", "last_ssim")):
        values = _column(frame, name)
        if values is not None:
            row[best_key], row[last_key] = float(values.max()), float(values.iloc[-1])
    bicubic = _column(frame, "val/psnr_bicubic")
    if bicubic is not None:
        row["psnr_bicubic"] = float(bicubic.iloc[-1])
    if "step" in frame.columns and frame["step"].notna().any():
        row["steps"] = float(frame["step"].max())
    monitored = _column(frame, monitor)
    if monitored is not None:
        row["best_monitor"] = float(monitored.max() if mode == "max" else monitored.min())
    row["status"] = "ok" if not math.isnan(row["best_monitor"]) else "no validation"
    return row


def _fmt(value: Any, pattern: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return pattern.format(value) if isinstance(value, (int, float)) else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _rank_key(row: dict[str, Any]) -> tuple[bool, float]:
    """Sort key: best monitored value first (the lowest for a ``min`` monitor), jobs without one last."""
    value = row["best_monitor"]
    if math.isnan(value):
        return True, 0.0
    return False, -value if row["mode"] == "max" else value


def _monitor_columns(rows: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str, str]]]:
    """How the summary names its ranking metric, and the columns it adds to show it.

    One ``monitor`` shared by the jobs that logged: ranked by it, with its own column unless the
    table has it already (``best val/psnr``); monitors that differ: each job's, in two columns.
    """
    monitors = list(dict.fromkeys(r["monitor"] for r in rows if r["status"] != "no metrics")) or [DEFAULT_MONITOR[0]]
    if len(monitors) > 1:
        return "each job's `monitor`", [("monitor", "monitor", "{}"), ("best monitored", "best_monitor", "{:.4g}")]
    title = f"best {monitors[0]}"
    if any(title == t for t, _, _ in SUMMARY_COLUMNS):
        return f"`{monitors[0]}`", []
    return f"`{monitors[0]}`", [(title, "best_monitor", "{:.4f}")]


def write_summary(sweep_dir: str | Path) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``: one row per job, ranked by the
    metric the jobs monitored (top-level ``monitor``: ``val/psnr``, or e.g. ``val/Set5/psnr_y`` for a
    run validated only on ``data.val_sets``), best first.

    Jobs are shown by their run name (the overrides the sweep varies), folders relative to the
    current folder.
    """
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    rows = []
    for run_dir in find_runs(sweep_dir):
        row = summarize_run(run_dir)
        row["job"] = str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name
        row["run"] = name_of_run_dir(run_dir) or "-"  # a job that died before Hydra wrote .hydra/
        rows.append(row)
    rows.sort(key=_rank_key)
    ranked_by, extra = _monitor_columns(rows)
    shown = [*extra, *SUMMARY_COLUMNS]
    csv_path = sweep_dir / "summary.csv"
    csv_columns = ["job", "run", "overrides", "monitor", "best_monitor", *[key for _, key, _ in SUMMARY_COLUMNS],
                   "status", "dir"]
    pd.DataFrame(rows, columns=csv_columns).rename(columns={"best_monitor": "best monitored", **{
        key: title for title, key, _ in SUMMARY_COLUMNS}}).to_csv(csv_path, index=False)
    # the names show what differs between jobs; what they share goes above the table
    known = [r["overrides"].split() for r in rows if r["overrides"]]
    common = set.intersection(*map(set, known)) if known else set()
    shared = " ".join(o for o in known[0] if o in common) if known else ""
    header = ["job", "run", *[title for title, _, _ in shown], "status"]
    table = [[r["job"], r["run"], *[_fmt(r[k], f) for _, k, f in shown], r["status"]] for r in rows]
    md_path = sweep_dir / "summary.md"
    where = shown_path(sweep_dir)
    md_path.write_text(
        f"# Sweep {where}\n\n{len(rows)} jobs, best {ranked_by} first. "
        f"Overrides shared by all jobs: `{short_values(shared) or '(none)'}`\n\n{markdown_table(header, table)}\n\n"
        f"Report with curves and images: `python -m srlab.compare {where} -o {Path(where) / 'report'}`\n"
    )
    return csv_path, md_path


class SweepSummary(Callback):
    """Hydra callback: record the sweep's command line when a multirun starts; sum the jobs up when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # the grid sweeper saves this itself before the first job; Optuna's does not, and the jobs
        # are named by what the command line sweeps (srlab.runs.naming)
        sweep_dir = Path(config.hydra.sweep.dir)
        if not (sweep_dir / MULTIRUN_YAML).is_file():
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(config, sweep_dir / MULTIRUN_YAML)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            csv_path, md_path = write_summary(sweep_dir)
        except SRLabError as exc:  # e.g. every job failed before writing a log: say so, don't crash the sweep
            log.warning("sweep summary skipped: %s", exc)
            return
        log.info("sweep summary: %s (and %s)", md_path, csv_path.name)
