"""Figures from Lightning CSV logs: the origin report's training curves."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs write PNGs, they never open windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from srlab.metrics.perceptual import PERCEPTUAL, TITLES  # noqa: E402

# panel title -> metric columns drawn in it (those present in a log are drawn)
PANELS: dict[str, list[str]] = {
    "Generator loss": ["train/g_loss", "train/loss"],
    "Discriminator loss": ["train/d_loss"],
    "D(x) and D(G(z))": ["train/d_real", "train/d_fake"],
    "G and D losses combined": ["train/g_loss", "train/d_loss"],
    "PSNR (dB, RGB)": ["train/psnr", "val/psnr", "val/psnr_bicubic"],
    "SSIM (RGB)": ["train/ssim", "val/ssim"],
    "Loss parts": ["train/l_pix", "train/l_percep", "train/l_adv"],
}
# data.val_sets logs val/<set>/<metric>: one panel per set and metric, beside the bicubic line
# (the Y channel, as published tables; the RGB figures are in the CSV)
_VAL_SET_TITLES = {"psnr_y": "PSNR (dB, Y)", "ssim_y": "SSIM (Y)", **{m: f"{TITLES[m]} (lower is better)" for m in PERCEPTUAL}}
_VAL_SET_METRIC = re.compile(rf"^val/([^/]+)/({'|'.join(_VAL_SET_TITLES)})(?:_step|_epoch)?$")
# one colour per run, the same in every panel and in the report's table (matplotlib's tab10 names)
RUN_COLOURS = ["blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan"]
# with several runs colour tells the runs apart and line style the metrics within a panel
METRIC_STYLES = ["-", ":", "-.", (0, (5, 1))]


def run_colours(labels: list[str]) -> dict[str, str]:
    """Each run label's colour name (``tab:<name>`` in matplotlib), in the order given."""
    return {label: RUN_COLOURS[i % len(RUN_COLOURS)] for i, label in enumerate(labels)}


def _line_style(cols: list[str], col: str):
    return "--" if col.endswith("bicubic") else METRIC_STYLES[cols.index(col) % len(METRIC_STYLES)]


def read_metrics(csv_path: str | Path) -> pd.DataFrame:
    """Read a Lightning ``metrics.csv``; one row per logged step, NaN where a metric was not logged."""
    frame = pd.read_csv(csv_path)
    if "step" not in frame.columns:
        frame["step"] = range(len(frame))
    return frame


def _series(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    # Lightning writes "_step"/"_epoch" suffixes when a metric is logged both ways
    for name in (column, f"{column}_step", f"{column}_epoch"):
        if name in frame.columns:
            data = frame[["step", name]].dropna()
            if len(data):
                return data.rename(columns={name: "value"})
    return pd.DataFrame(columns=["step", "value"])


def _panels(runs: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """:data:`PANELS` plus one panel per benchmark set and metric found in the logs (Y first)."""
    found = {(m[1], m[2]) for frame in runs.values() for c in frame.columns if (m := _VAL_SET_METRIC.match(c))}
    order = list(_VAL_SET_TITLES)
    sets = sorted(found, key=lambda sm: (order.index(sm[1]), sm[0]))
    extra = {f"{name} {_VAL_SET_TITLES[metric]}": [f"val/{name}/{metric}", f"val/{name}/{metric}_bicubic"]
             for name, metric in sets}
    return {**PANELS, **extra}


def plot_runs(runs: dict[str, pd.DataFrame], out_path: str | Path, title: str | None = None,
              colours: dict[str, str] | None = None) -> Path | None:
    """Draw every panel that has data, one line per (run, metric), shared x axis (optimizer steps).

    A single run gets one colour per metric. Several runs (or any given ``colours``) get one colour
    per run (:func:`run_colours` of their order, named in one legend above the panels) and one line
    style per metric in a panel.

    Args:
        runs: run label -> metrics frame.
        out_path: PNG to write.
        title: figure title.
        colours: run label -> colour name (default: :func:`run_colours` of ``runs``), so a report
            that leaves out a run without log keeps every other run's colour.

    Returns:
        The written path, or None when no panel had data.
    """
    from matplotlib.lines import Line2D

    panels = [(name, cols) for name, cols in _panels(runs).items() if any(
        len(_series(frame, c)) for frame in runs.values() for c in cols)]
    if not panels:
        return None
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 3.6 * nrows), squeeze=False, layout="constrained")
    several = len(runs) > 1 or colours is not None  # a report's runs keep their colours, even alone
    colours = colours or run_colours(list(runs))
    for ax, (name, cols) in zip(axes.flat, panels):
        drawn: list[str] = []
        for label, frame in runs.items():
            for col in cols:
                data = _series(frame, col)
                if len(data) == 0:
                    continue
                marker = "o" if len(data) < 30 else None
                colour = f"tab:{colours[label]}" if several else None
                if col.endswith("bicubic") and len(data) == 1:  # measured once: a level, not a point
                    ax.axhline(data["value"].iloc[0], linestyle="--", color=colour or "tab:gray", label=col, gid=label)
                    drawn += [col] if col not in drawn else []
                    continue
                ax.plot(data["step"], data["value"], linestyle=_line_style(cols, col), color=colour, marker=marker,
                        markersize=3, label=col, gid=label)
                drawn += [col] if col not in drawn else []
        if several:  # the metrics by line style; the runs by colour are in the figure's legend
            handles = [Line2D([], [], color="black", linestyle=_line_style(cols, c), label=c) for c in drawn]
            ax.legend(handles=handles, fontsize=7)
        else:
            ax.legend(fontsize=7)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if several:
        handles = [Line2D([], [], color=f"tab:{colours[label]}", linewidth=3, label=label) for label in runs]
        # the title heads the runs' legend: a suptitle would be drawn over an "outside upper center" legend
        fig.legend(handles=handles, loc="outside upper center", ncols=ncols, fontsize=9, frameon=False,
                   title=title or None)
    elif title:
        fig.suptitle(title)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_perception_distortion(runs: dict[str, pd.DataFrame], out_path: str | Path,
                               colours: dict[str, str] | None = None) -> Path | None:
    """PSNR-Y against LPIPS (else DISTS, else LPIPS-VGG) on each ``data.val_sets`` benchmark: the GAN-vs-PSNR trade.

    One panel per set; each run is a path through its validation steps (first and last step labelled, the
    last point larger), bicubic a black star. Better is up (PSNR) and left (a distance).

    Args:
        runs: run label -> metrics frame (Lightning's CSV log).
        out_path: PNG to write.
        colours: run label -> colour name (default: :func:`run_colours` of ``runs``).

    Returns:
        The written path, or None when no run logged a perceptual metric beside PSNR-Y.
    """
    colours = colours or run_colours(list(runs))
    panels = []  # (set, perceptual metric)
    for name in sorted({m[1] for frame in runs.values() for c in frame.columns if (m := _VAL_SET_METRIC.match(c))}):
        metric = next((m for m in ("lpips", "dists", "lpips_vgg")
                       if any(len(_series(f, f"val/{name}/{m}")) for f in runs.values())), None)
        if metric:
            panels.append((name, metric))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False, layout="constrained")
    for ax, (name, metric) in zip(axes.flat, panels):
        bicubic = None
        for label, frame in runs.items():
            both = _series(frame, f"val/{name}/psnr_y").merge(_series(frame, f"val/{name}/{metric}"), on="step",
                                                               suffixes=("_psnr", "_perceptual"))
            if len(both) == 0:
                continue
            colour = f"tab:{colours[label]}"
            x, y = both["value_perceptual"], both["value_psnr"]
            ax.plot(x, y, "-o", color=colour, markersize=3, label=label)
            ax.plot(x.iloc[-1], y.iloc[-1], "o", color=colour, markersize=8)
            for i in sorted({0, len(both) - 1}):
                ax.annotate(f"step {int(both['step'].iloc[i])}", (x.iloc[i], y.iloc[i]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
            b_x, b_y = _series(frame, f"val/{name}/{metric}_bicubic"), _series(frame, f"val/{name}/psnr_y_bicubic")
            if bicubic is None and len(b_x) and len(b_y):
                bicubic = (b_x["value"].iloc[-1], b_y["value"].iloc[-1])
        if bicubic is not None:
            ax.plot(*bicubic, "*", color="black", markersize=12, label="bicubic")
        ax.set_xlabel(f"{TITLES[metric]} (lower is better)")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.set_title(f"{name}: perception-distortion (better: up and left)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
