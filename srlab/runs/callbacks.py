"""Callbacks that turn a run into pictures: validation comparison grids and training curves."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from srlab.runs.plots import plot_runs, read_metrics

GRID_COLUMNS = ("LQ (bicubic x{scale})", "output", "HQ")


class ComparisonGrid(L.Callback):
    """Saves a fixed set of validation images as ``LQ bicubic | output | HQ`` rows each validation epoch.

    Validation crops go to ``output_dir/val_epoch{E}.png``; each ``data.val_sets`` benchmark gets its
    own grid of whole images, ``output_dir/<set>/val_epoch{E}.png``. Under DDP rank 0 draws what it
    validated (its shard of each benchmark).

    Args:
        output_dir: folder for ``val_epoch{E}.png`` files.
        num_images: how many validation images per grid (the first ones, so the same every epoch).
    """

    def __init__(self, output_dir: str, num_images: int = 4) -> None:
        self.output_dir = Path(output_dir)
        self.num_images = num_images
        self._rows: dict[str | None, list[torch.Tensor]] = {}  # None: the validation crops
        self.last_path: Path | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = {}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking or not isinstance(outputs, dict):
            return
        rows = self._rows.setdefault(outputs.get("set"), [])
        for lq_up, sr, gt in zip(outputs["lq_bicubic"], outputs["sr"], outputs["gt"]):
            if len(rows) < self.num_images:
                rows.append(torch.stack([lq_up, sr, gt]).float().cpu())  # (3, C, H, W)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        labels = [c.format(scale=getattr(pl_module, "scale", "")) for c in GRID_COLUMNS]
        for name, rows in self._rows.items():
            if not rows:
                continue
            title = f"{name + ', ' if name else ''}epoch {trainer.current_epoch}, step {trainer.global_step}"
            folder = self.output_dir / name if name else self.output_dir
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"val_epoch{trainer.current_epoch:03d}.png"
            render_grid(rows, labels, title=title).save(path)
            if name is None:
                self.last_path = path
            for logger in trainer.loggers:
                # W&B (and any logger with log_image) receives the same picture
                if hasattr(logger, "log_image"):
                    key = f"val/{name}/comparison" if name else "val/comparison"
                    logger.log_image(key=key, images=[str(path)], step=trainer.global_step)


def render_grid(rows: list[torch.Tensor], labels: list[str], title: str = "") -> Image.Image:
    """Lay out rows of same-size images (each (K, C, H, W) in [0, 1]) under column labels."""
    size = max(max(r.shape[-2] for r in rows), max(r.shape[-1] for r in rows))
    padded = []
    for row in rows:  # pad to a common size so rows of different shapes fit in one grid
        h, w = row.shape[-2:]
        padded.append(torch.nn.functional.pad(row, (0, size - w, 0, size - h), value=1.0))
    grid = make_grid(torch.cat(padded), nrow=len(labels), padding=4, pad_value=1.0)
    array = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    header = 18 if not title else 34
    canvas = Image.new("RGB", (array.shape[1], array.shape[0] + header), "white")
    canvas.paste(Image.fromarray(array), (0, header))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill="black")
    cell = size + 4
    for i, label in enumerate(labels):
        draw.text((4 + i * cell + 2, header - 14), label, fill="black")
    return canvas


class CurvePlots(L.Callback):
    """Redraws the run's training curves (losses, D scores, PSNR/SSIM) from its CSV log.

    Args:
        output_dir: folder for ``curves.png``.
    """

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    @rank_zero_only
    def _draw(self, trainer: L.Trainer) -> None:
        csv_logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if csv_logger is None:
            return
        csv_logger.save()  # flush buffered rows first
        metrics_file = Path(csv_logger.log_dir) / "metrics.csv"
        if metrics_file.is_file() and metrics_file.stat().st_size > 0:
            plot_runs({"run": read_metrics(metrics_file)}, self.output_dir / "curves.png")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._draw(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._draw(trainer)
