"""Figures from Lightning CSV logs: the origin report's training curves."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs write PNGs, they never open windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

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


def plot_runs(runs: dict[str, pd.DataFrame], out_path: str | Path, title: str | None = None) -> Path | None:
    """Draw every panel that has data, one line per (run, metric), shared x axis (optimizer steps).

    Args:
        runs: run label -> metrics frame.
        out_path: PNG to write.
        title: figure title.

    Returns:
        The written path, or None when no panel had data.
    """
    panels = [(name, cols) for name, cols in PANELS.items() if any(
        len(_series(frame, c)) for frame in runs.values() for c in cols)]
    if not panels:
        return None
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (name, cols) in zip(axes.flat, panels):
        for label, frame in runs.items():
            for col in cols:
                data = _series(frame, col)
                if len(data) == 0:
                    continue
                style = "--" if col.endswith("bicubic") else "-"
                marker = "o" if len(data) < 30 else None
                line_label = col if len(runs) == 1 else f"{label}: {col}"
                ax.plot(data["step"], data["value"], style, marker=marker, markersize=3, label=line_label)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
