"""Compare runs: ``python -m srlab.compare RUN_OR_SWEEP_DIRS... -o OUT_DIR``.

Writes ``OUT_DIR/report.html`` (self-contained, images embedded) and ``OUT_DIR/report.md`` with
PNGs beside it: a metrics table per run, the training curves of all runs on shared axes, and each
run's latest validation grid side by side. Works from the run folders alone (CSV logs, checkpoints).
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from srlab.errors import user_errors
from srlab.runs.sweep import (METRICS_CSV, SUMMARY_COLUMNS, find_runs, markdown_table, short_overrides,
                         summarize_run)

COLUMNS = [*SUMMARY_COLUMNS, ("generator params", "params", "{:,.0f}"), ("s/step", "step_time", "{:.3g}")]


@dataclass
class RunInfo:
    """One run's numbers for the report."""

    label: str
    path: Path
    row: dict = field(default_factory=dict)
    grid: Path | None = None


def count_params(run_dir: Path) -> tuple[float, str]:
    """Generator parameter count from a checkpoint's state dict, and the generator's class name."""
    from srlab.weights import safe_torch_load, stored_net_config

    ckpts = sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.name != "last.ckpt")
    if not ckpts:
        return float("nan"), ""
    ckpt = safe_torch_load(ckpts[0])
    state = ckpt.get("state_dict", {}) if isinstance(ckpt, dict) else {}
    params = sum(t.numel() for k, t in state.items() if k.startswith("generator."))
    target = str((stored_net_config(ckpt, str(ckpts[0])).config or {}).get("_target_", ""))
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
    """The run's last ``images/val_epochNNN.png`` comparison grid."""
    grids = sorted((run_dir / "images").glob("val_epoch*.png"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    return grids[-1] if grids else None


def _labels(runs: list[Path]) -> list[str]:
    if len(runs) == 1:
        return [runs[0].name]
    root = Path(os.path.commonpath([str(r.resolve()) for r in runs]))
    return [str(r.resolve().relative_to(root)) or r.name for r in runs]


def collect(paths: list[str | Path]) -> list[RunInfo]:
    """Expand run and sweep folders into the runs to compare (each once, in the order given)."""
    from srlab.runs.plots import read_metrics

    runs: list[Path] = []
    for path in paths:
        runs += [r for r in find_runs(path) if r.resolve() not in {x.resolve() for x in runs}]
    infos = []
    for label, run_dir in zip(_labels(runs), runs):
        row = summarize_run(run_dir)
        row["params"], generator = count_params(run_dir)
        row["model"] = model_name(run_dir, generator)
        metrics_file = run_dir / METRICS_CSV
        frame = read_metrics(metrics_file) if metrics_file.is_file() and metrics_file.stat().st_size else None
        row["step_time"], row["step_time_source"] = seconds_per_step(run_dir, frame) if frame is not None else (
            float("nan"), "")
        row["frame"] = frame
        infos.append(RunInfo(label, run_dir, row, latest_grid(run_dir)))
    return infos


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def _varying_overrides(infos: list[RunInfo]) -> list[str]:
    known = [i.row["overrides"].split() for i in infos if i.row["overrides"]]
    common = set.intersection(*map(set, known)) if len(known) > 1 else set()
    varying = [" ".join(o for o in i.row["overrides"].split() if o not in common) for i in infos]
    return [short_overrides(v) or "-" for v in varying]


def _table(infos: list[RunInfo]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "model", "overrides", *[title for title, _, _ in COLUMNS]]
    rows = []
    for info, overrides in zip(infos, _varying_overrides(infos)):
        cells = [_fmt(info.row[key], pattern) for _, key, pattern in COLUMNS]
        if info.row["step_time_source"] == "file times" and cells[-1] != "-":
            cells[-1] += " *"
        rows.append([info.label, info.row["model"], overrides, *cells])
    return header, rows


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "run"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2}td,th{white-space:nowrap}td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}
td:nth-child(3){white-space:normal;max-width:420px;font-family:monospace;font-size:12px}
td.best{font-weight:bold;background:#e8f5e9}
.grids{display:flex;gap:12px;overflow-x:auto;align-items:flex-start}
figure{margin:0;flex:1 1 0;min-width:260px;max-width:520px}figcaption{font-size:13px;margin-bottom:4px}
.grids img{width:100%;box-sizing:border-box;image-rendering:pixelated;border:1px solid #ddd}.note{color:#666;font-size:12px}"""


def render_html(infos: list[RunInfo], curves: Path | None, title: str) -> str:
    """The self-contained HTML report (every image a base64 data URI)."""
    header, rows = _table(infos)
    best = {}
    for col, (_, key, _) in enumerate(COLUMNS, start=3):  # highlight the best run per quality metric
        values = [i.row[key] for i in infos]
        if key.startswith(("best_", "last_")) and any(not math.isnan(v) for v in values):
            best[col] = max(range(len(values)), key=lambda j: -math.inf if math.isnan(values[j]) else values[j])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=best" if best.get(c) == r else ""}>{html.escape(v)}</td>'
                         for c, v in enumerate(row)) + "</tr>" for r, row in enumerate(rows))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<h2>Metrics</h2><table><tr>{head}</tr>{body}</table>",
             "<p class=note>best/last over validation epochs; * s/step from file times (fit start to last log "
             "write, validation included); bold: best run per column.</p>",
             "<p class=note>" + "<br>".join(f"{html.escape(i.label)}: {html.escape(str(i.path))}" for i in infos)
             + "</p>"]
    if curves:
        parts.append(f"<h2>Training curves</h2><img alt='curves' style='max-width:100%' src='{_data_uri(curves)}'>")
    grids = [i for i in infos if i.grid]
    if grids:
        parts.append("<h2>Latest validation images (LQ bicubic | output | HQ)</h2><div class=grids>")
        parts += [f"<figure><figcaption>{html.escape(i.label)} ({html.escape(i.grid.name)})</figcaption>"
                  f"<img alt='{html.escape(i.label)}' src='{_data_uri(i.grid)}'></figure>" for i in grids]
        parts.append("</div>")
    return "".join(parts) + "</body></html>\n"


def render_markdown(infos: list[RunInfo], curves: Path | None, grids: dict[str, str], title: str) -> str:
    """The Markdown report; images are files beside it."""
    header, rows = _table(infos)
    lines = [f"# {title}", "", "## Metrics", "", markdown_table(header, rows), "",
             "best/last over validation epochs; * s/step from file times (fit start to last log write, "
             "validation included).", "", *[f"- `{i.label}`: `{i.path}`" for i in infos], ""]
    if curves:
        lines += ["## Training curves", "", f"![curves]({curves.name})", ""]
    if grids:
        lines += ["## Latest validation images (LQ bicubic | output | HQ)", "",
                  "| " + " | ".join(grids) + " |", "|" + " --- |" * len(grids),
                  "| " + " | ".join(f"![{label}]({path})" for label, path in grids.items()) + " |", ""]
    return "\n".join(lines)


def build_report(paths: list[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Compare the runs under ``paths``; write ``report.html`` and ``report.md`` into ``out_dir``."""
    from srlab.runs.plots import plot_runs

    infos = collect(paths)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    frames = {i.label: i.row.pop("frame") for i in infos}
    curves = plot_runs({k: f for k, f in frames.items() if f is not None}, out_dir / "curves.png",
                       title="all runs, shared axes") if any(f is not None for f in frames.values()) else None
    grids = {}
    for info in infos:
        if info.grid:
            copy = out_dir / "images" / f"{_slug(info.label)}_{info.grid.name}"
            shutil.copyfile(info.grid, copy)
            grids[info.label] = str(copy.relative_to(out_dir))
    title = f"srlab comparison of {len(infos)} run{'s' if len(infos) != 1 else ''}, " \
            f"{datetime.now():%Y-%m-%d %H:%M}"
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(render_html(infos, curves, title))
    md_path.write_text(render_markdown(infos, curves, grids, title))
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
