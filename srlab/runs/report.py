"""The comparison report's pages: its metrics table, best-per-column marks and verdicts, in HTML and Markdown.

``srlab.compare`` gathers one :class:`RunInfo` per run and renders them here. Runs are shown by
their :func:`srlab.runs.naming.run_name` and their curve colour; folders relative to the folder the
report was made in, so a committed report names no path of the machine that made it.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from srlab.metrics.perceptual import PERCEPTUAL, TITLES
from srlab.runs.sweep import SUMMARY_COLUMNS, markdown_table

COLUMNS = [*SUMMARY_COLUMNS, ("generator params", "params", "{:,.0f}"), ("s/step", "step_time", "{:.3g}")]
HEADER = ["run", "colour", "model", *[title for title, _, _ in COLUMNS]]
_SET_KEY = re.compile(r"^best_(.+)_(psnr_y|ssim_y)$")


def set_columns(infos: list["RunInfo"]) -> list[tuple[str, str, str]]:
    """Columns of the ``data.val_sets`` benchmarks any run was validated on: best PSNR-Y, SSIM-Y, bicubic PSNR-Y,
    and the best (lowest) of each perceptual metric any run logged for the set."""
    names = sorted({m[1] for i in infos for key in i.row if (m := _SET_KEY.match(key))})
    columns = []
    for name in names:
        columns += [(f"best {name} PSNR-Y", f"best_{name}_psnr_y", "{:.3f}"),
                    (f"best {name} SSIM-Y", f"best_{name}_ssim_y", "{:.4f}"),
                    (f"{name} bicubic PSNR-Y", f"{name}_psnr_y_bicubic", "{:.3f}")]
        columns += [(f"best {name} {TITLES[m]} ↓", f"best_{name}_{m}", "{:.4f}") for m in PERCEPTUAL
                    if any(f"best_{name}_{m}" in i.row for i in infos)]
    return columns


def lower_is_better_key(key: str) -> bool:
    """A report key of a distance (``best_<set>_lpips``, ``<set>_dists_bicubic``): its best is its lowest."""
    return any(key.removesuffix("_bicubic").endswith(f"_{m}") for m in PERCEPTUAL)


def columns(infos: list["RunInfo"]) -> list[tuple[str, str, str]]:
    """The table's columns: :data:`COLUMNS` with the benchmark-set ones before the parameter count."""
    return [*SUMMARY_COLUMNS, *set_columns(infos), *COLUMNS[len(SUMMARY_COLUMNS):]]


def header(infos: list["RunInfo"]) -> list[str]:
    """The table's header cells for these runs."""
    return ["run", "colour", "model", *[title for title, _, _ in columns(infos)]]
NOTE = ("best/last over validation epochs (the lowest for ↓ columns, LPIPS/DISTS distances); * s/step from file "
        "times (fit start to last log write, validation included); bold: best run per column.")


@dataclass
class RunInfo:
    """One run's numbers for the report."""

    label: str
    path: Path
    row: dict = field(default_factory=dict)
    grid: Path | None = None
    colour: str = ""
    shown_path: str = ""


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def _best(infos: list[RunInfo], key: str) -> int | None:
    """The row of the best run in column ``key``: the highest value, the lowest for a distance."""
    sign = -1 if lower_is_better_key(key) else 1
    values = [i.row.get(key, math.nan) for i in infos]
    if not any(not math.isnan(v) for v in values):
        return None
    return max(range(len(values)), key=lambda j: -math.inf if math.isnan(values[j]) else sign * values[j])


def best_cells(infos: list[RunInfo]) -> dict[int, int]:
    """Column index (in :func:`header`) -> row index of the best run, for each quality metric column."""
    offset = HEADER.index(COLUMNS[0][0])
    best = {col: _best(infos, key) for col, (_, key, _) in enumerate(columns(infos), start=offset)
            if key.startswith(("best_", "last_"))}
    return {col: row for col, row in best.items() if row is not None}


def table_rows(infos: list[RunInfo]) -> list[list[str]]:
    """One row of formatted cells per run, in :func:`header` order."""
    rows = []
    for info in infos:
        cells = [_fmt(info.row.get(key, math.nan), pattern) for _, key, pattern in columns(infos)]
        if info.row["step_time_source"] == "file times" and cells[-1] != "-":
            cells[-1] += " *"
        rows.append([info.label, info.colour, info.row["model"], *cells])
    return rows


def verdicts(infos: list[RunInfo]) -> list[str]:
    """One line per metric: the best run (the lowest for LPIPS/DISTS), its margin over bicubic and over the next run."""
    lines = []
    sets = []  # (title, key, unit, digits) of each benchmark set's best PSNR-Y, SSIM-Y, LPIPS ...
    for title, key, _ in set_columns(infos):
        if key.endswith("psnr_y") and key.startswith("best_"):
            sets.append((title.removeprefix("best "), key, " dB", 3))
        elif key.endswith("ssim_y") or (key.startswith("best_") and lower_is_better_key(key)):
            sets.append((title.removeprefix("best ").removesuffix(" ↓"), key, "", 4))
    for metric, key, unit, digits in (("val/psnr", "best_psnr", " dB", 3), ("val/ssim", "best_ssim", "", 4), *sets):
        best = _best(infos, key)
        if best is None:
            if not sets:  # runs validated on benchmarks only have no crop scores: nothing to say about them
                lines.append(f"{metric}: no run was validated")
            continue
        lower = lower_is_better_key(key)
        value = infos[best].row[key]
        line = f"{metric}: `{infos[best].label}` is best at {value:.{digits}f}{unit}" + (" (lower is better)" if lower else "")
        bicubic = infos[best].row.get(key.removeprefix("best_") + "_bicubic", float("nan"))
        if math.isnan(bicubic):
            line += " (no bicubic value logged to compare with)"
        else:
            line += f", {value - bicubic:+.{digits}f}{unit} {'against' if lower else 'over'} bicubic ({bicubic:.{digits}f}{unit})"
        others = sorted((i.row.get(key, math.nan) for j, i in enumerate(infos)
                         if j != best and not math.isnan(i.row.get(key, math.nan))),
                        reverse=not lower)
        if others:
            line += f", {value - others[0]:+.{digits}f}{unit} {'against' if lower else 'over'} the next run"
        lines.append(line)
    return lines


def _swatch(colour: str) -> str:
    from matplotlib.colors import to_hex

    return f'<span style="color:{to_hex("tab:" + colour)}">&#9632;</span> {colour}' if colour else ""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2}td,th{white-space:nowrap}td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}
td:first-child{white-space:normal;max-width:360px;font-family:monospace;font-size:12px}
td.best{font-weight:bold;background:#e8f5e9}
.grids{display:flex;gap:12px;overflow-x:auto;align-items:flex-start}
figure{margin:0;flex:1 1 0;min-width:260px;max-width:520px}figcaption{font-size:13px;margin-bottom:4px}
.grids img{width:100%;box-sizing:border-box;image-rendering:pixelated;border:1px solid #ddd}.note{color:#666;font-size:12px}"""


def _run_notes(infos: list[RunInfo]) -> list[tuple[str, str, str]]:
    return [(i.label, i.shown_path, i.row["overrides"] or "-") for i in infos]


TRADE = ("Perception-distortion: PSNR-Y against LPIPS (or DISTS) on each benchmark, one path per run through its "
         "validation steps; better is up and left.")


def render_html(infos: list[RunInfo], curves: Path | None, title: str, trade: Path | None = None) -> str:
    """The self-contained HTML report (every image a base64 data URI); ``trade``: the perception-distortion plot."""
    best = best_cells(infos)
    colour_col = HEADER.index("colour")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header(infos))
    body = "".join(
        "<tr>" + "".join(f'<td{" class=best" if best.get(c) == r else ""}>'
                         f'{_swatch(v) if c == colour_col else html.escape(v)}</td>'
                         for c, v in enumerate(row)) + "</tr>" for r, row in enumerate(table_rows(infos)))
    notes = "<br>".join(f"<code>{html.escape(label)}</code>: folder <code>{html.escape(path)}</code>, overrides "
                        f"<code>{html.escape(overrides)}</code>" for label, path, overrides in _run_notes(infos))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<h2>Metrics</h2><table><tr>{head}</tr>{body}</table>",
             f"<p class=note>{html.escape(NOTE)}</p>",
             f"<p class=note>{notes}<br>(folders relative to where the report was made)</p>"]
    if curves:
        parts.append(f"<h2>Training curves</h2><img alt='curves' style='max-width:100%' src='{_data_uri(curves)}'>")
    if trade:
        parts.append(f"<h2>Perception-distortion</h2><p class=note>{html.escape(TRADE)}</p>"
                     f"<img alt='perception-distortion' style='max-width:100%' src='{_data_uri(trade)}'>")
    grids = [i for i in infos if i.grid]
    if grids:
        parts.append("<h2>Latest validation images (LQ bicubic | output | HQ)</h2><div class=grids>")
        parts += [f"<figure><figcaption>{_swatch(i.colour)}: <code>{html.escape(i.label)}</code> "
                  f"({html.escape(i.grid.name)})</figcaption>"
                  f"<img alt='{html.escape(i.label)}' src='{_data_uri(i.grid)}'></figure>" for i in grids]
        parts.append("</div>")
    parts.append("<h2>Verdict</h2><ul>" + "".join(
        "<li>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(v)) + "</li>" for v in verdicts(infos)) + "</ul>")
    return "".join(parts) + "</body></html>\n"


def render_markdown(infos: list[RunInfo], curves: Path | None, grids: dict[str, str], title: str,
                    trade: Path | None = None) -> str:
    """The Markdown report; images are files beside it (``grids``: run label -> relative image path; ``trade``:
    the perception-distortion plot)."""
    best = best_cells(infos)
    rows = [[f"**{v}**" if best.get(c) == r else v for c, v in enumerate(row)]
            for r, row in enumerate(table_rows(infos))]
    lines = [f"# {title}", "", "## Metrics", "", markdown_table(header(infos), rows), "", NOTE, "",
             *[f"- `{label}`: folder `{path}`, overrides `{overrides}`" for label, path, overrides in _run_notes(infos)],
             "", "(folders relative to where the report was made)", ""]
    if curves:
        lines += ["## Training curves", "", f"![curves]({curves.name})", ""]
    if trade:
        lines += ["## Perception-distortion", "", TRADE, "", f"![perception-distortion]({trade.name})", ""]
    if grids:
        colours = {i.label: i.colour for i in infos}
        lines += ["## Latest validation images (LQ bicubic | output | HQ)", "",
                  "| " + " | ".join(f"{colours[label]}: `{label}`" for label in grids) + " |",
                  "|" + " --- |" * len(grids),
                  "| " + " | ".join(f"![{label}]({path})" for label, path in grids.items()) + " |", ""]
    lines += ["## Verdict", "", *[f"- {v}" for v in verdicts(infos)], ""]
    return "\n".join(lines)
