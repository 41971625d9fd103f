"""Benchmark generators against bicubic: ``python -m srlab.evaluate weights=... 'benchmarks=[...]' out=DIR``.

For every benchmark image: HR is modcropped to the scale, LR is made from it (``degradation``,
``resize``) unless the folder holds LQ files (:mod:`srlab.data.benchmarks`, as training validation
on ``data.val_sets`` makes it), and bicubic plus every generator upscale LR.
PSNR/SSIM follow BasicSR (uint8, ``crop_border``, RGB and Y); LPIPS/DISTS (``metrics``) are torchmetrics'
networks on the same uint8 images (:mod:`srlab.metrics.perceptual`); beside them each generator's cost:
parameters, MACs per 256x256 LR and ms per output megapixel (:mod:`srlab.infer.efficiency`).
Writes ``results.csv``, ``results.json``, ``per_image.csv``, ``results.md`` (also printed) and
comparison figures to ``out``.
"""

from __future__ import annotations

import csv
import json
import logging
import shlex
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from srlab.weights.card import model_line
from srlab.config import CONFIG_DIR, TILE_PAD
from srlab.data.benchmarks import Benchmark, check_lq_protocol, find_benchmark, load_pair
from srlab.data.resize import resize_uint8
from srlab.errors import SRLabError, user_errors
from srlab.infer import SRGenerator, load_generator, tile_count, upscale_array
from srlab.infer.efficiency import efficiency
from srlab.infer.progress import TileProgress
from srlab.metrics import METRICS, PERCEPTUAL, PerceptualMetric, mean_metric, measure
from srlab.metrics.perceptual import TITLES, check_names, ensure_weights
from srlab.runs.naming import name_of_run_dir

log = logging.getLogger(__name__)
_GENERIC_STEMS = {"last", "best", "generator", "model", "net_g", "params"}


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def _default_label(path: Path, weights: list[str]) -> str:
    if path.parent.name == "checkpoints":  # a training run's checkpoint: the run's name in every report
        name = name_of_run_dir(path.parent.parent)
        if name:  # several files of one run (best and last) are told apart by file
            same_run = sum(Path(w).parent == path.parent for w in weights) > 1
            return f"{name} ({path.stem})" if same_run else name
    return f"{path.parent.name}/{path.name}" if path.stem in _GENERIC_STEMS else path.stem


def method_labels(weights: list[str], labels: list[str]) -> list[str]:
    """Display names: given labels, else a run's name for its checkpoint, else the file stem (with its
    folder when the stem is generic)."""
    if labels and len(labels) != len(weights):
        raise SRLabError(f"labels: {len(labels)} names for {len(weights)} weights; give one per weights file")
    out = []
    for i, w in enumerate(weights):
        name = str(labels[i]) if labels else _default_label(Path(w), weights)
        out.append(name if name not in out and name != "bicubic" else f"{name}#{i + 1}")
    return out


def load_methods(cfg: DictConfig) -> list[tuple[str, SRGenerator]]:
    """Load every ``weights`` file (or shipped model's name) as a generator of ``cfg.scale``; print its card line."""
    weights = [str(w) for w in _as_list(cfg.weights)]
    # model=NAME: its generator node is the architecture of weights that carry no config of their own
    model = OmegaConf.to_container(cfg.model.generator, resolve=True) if cfg.get("model") else None
    methods = []
    for label, path in zip(method_labels(weights, [str(x) for x in _as_list(cfg.labels)]), weights):
        gen = load_generator(path, model=model, device=cfg.device, precision=cfg.precision,
                             input_range=cfg.get("input_range"))
        if gen.scale != cfg.scale:
            raise SRLabError(f"weights={path}: a x{gen.scale} generator, but scale={cfg.scale}; set scale={gen.scale}")
        print(model_line(label, gen.card, gen.notes))  # what each model was trained for, before its numbers
        methods.append((label, gen))
    return methods


def method_costs(methods: list[tuple[str, SRGenerator]], speed: bool) -> dict[str, dict]:
    """Each generator's efficiency (:mod:`srlab.infer.efficiency`): params, MACs per 256x256 LR and, with
    ``speed``, ms per output megapixel timed now as it runs here (its device and precision)."""
    costs = {}
    for label, gen in methods:
        device = next(gen.parameters(), torch.empty(0)).device
        costs[label] = efficiency(gen, gen.scale, device=device, measure_speed=speed, precisions=(gen.precision,))
    return costs


def add_costs(summary: list[dict], costs: dict[str, dict]) -> list[dict]:
    """The summary rows with ``params``, ``macs_256`` and ``ms_per_mp`` columns (None for bicubic); unchanged
    without generators, so a bicubic-only table keeps its columns."""
    if not costs:
        return summary
    out = []
    for row in summary:
        cost = costs.get(row["method"], {})
        speed = cost.get("ms_per_mp") or {}
        out.append({**row, "params": cost.get("params"), "macs_256": cost.get("macs_256"),
                    "ms_per_mp": next(iter(speed.values()), None)})
    return out


def cost_note(costs: dict[str, dict]) -> str:
    """How the cost columns were measured, for the table's head (empty without generators)."""
    if not costs:
        return ""
    text = ("Cost: params; MACs of one forward on a 256x256 LR input (PyTorch's FLOP counter, MACs = FLOPs / 2: "
            "convolutions, matmuls, attention)")
    timed = [c for c in costs.values() if c.get("ms_per_mp")]
    if not timed:
        return text + "; ms/MP not measured (speed=false)."
    where = {c.get("gpu") or f"{c['cpu']}, {c['threads']} thread{'s' if c['threads'] != 1 else ''}" for c in timed}
    lr = timed[0]["speed_lr"]
    return (text + f"; ms/MP: wall milliseconds per output megapixel, {lr}x{lr} LR untiled, timed just now in each "
            f"generator's precision on {'; '.join(sorted(where))}.")


def perceptual_metrics(cfg: DictConfig, methods) -> tuple[list[str], dict[str, PerceptualMetric], dict[str, str]]:
    """The perceptual metrics ``metrics`` asks for; those whose backbone is on disk (or downloaded now), and
    for each of the others the one line that says which file to place where."""
    wanted = check_names(_as_list(cfg.get("metrics")), key="metrics")
    if str(cfg.get("lpips")).lower() in ("false", "off", "none", "0"):  # the older switch
        return [], {}, {}
    device = next((p.device for _, gen in methods for p in gen.parameters()), torch.device("cpu"))
    usable, missing = {}, {}
    for name in wanted:
        reason = ensure_weights(name, cfg.get("hub_dir"))
        if reason:
            log.warning("%s: n/a: %s", TITLES[name], reason)
            missing[name] = reason
        else:
            usable[name] = PerceptualMetric(name, cfg.get("hub_dir"), device)
    return wanted, usable, missing


_FASTER = "faster: precision=auto (bf16 where the CPU or GPU has it natively), device=cuda, or a smaller model"


def evaluate_benchmark(bench: Benchmark, methods, cfg: DictConfig, perceptual: dict, out: Path) -> list[dict]:
    """Per-image metric rows of bicubic and every method on one benchmark; saves its figures."""
    rows = []
    bicubic = f"bicubic ({cfg.resize})"
    for i, path in enumerate(tqdm(bench.hr, desc=bench.name, unit="img")):
        hr, lq = load_pair(bench, path, cfg.scale, cfg.degradation, cfg.resize, cfg.blur_radius, cfg.seed)
        outputs = {bicubic: resize_uint8(lq, hr.shape[:2], cfg.resize)}
        tiles = tile_count(*lq.shape[:2], cfg.tile)
        # a tiled image gets a tile bar under the image bar: a large one shows movement from its first tile
        progress = None
        if tiles > 1 and methods:
            progress = TileProgress(tiles * len(methods), f"  {path.name}", faster=_FASTER, leave=False)
        for label, gen in methods:
            outputs[label] = upscale_array(gen, lq, cfg.tile, TILE_PAD if cfg.tile_pad is None else cfg.tile_pad, progress)
        if progress is not None:
            progress.close()
        per = {m: measure(sr, hr, cfg.crop_border, perceptual) for m, sr in outputs.items()}
        for m, values in per.items():
            rows.append({"method": m, "benchmark": bench.name, "image": path.name, **values})
        if i < cfg.figures.count:
            fig = out / "figures" / f"{bench.name}_{path.stem}.png"
            save_figure(fig, hr, lq, outputs, per, cfg.figures.crop, cfg.scale)
    return rows


def summarize(per_image: list[dict]) -> list[dict]:
    """Mean per (method, benchmark), in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in per_image:
        groups.setdefault((r["method"], r["benchmark"]), []).append(r)
    out = []
    for (method, bench), rs in groups.items():
        keys = [k for k in (*METRICS, *PERCEPTUAL) if k in rs[0]]
        means = {k: mean_metric([r[k] for r in rs]) for k in keys}
        out.append({"method": method, "benchmark": bench, "images": len(rs), **means})
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fmt(v: float, digits: int) -> str:
    return "inf" if v == float("inf") else f"{v:.{digits}f}"


def precision_note(methods: list[tuple[str, SRGenerator]], requested: str) -> str:
    """The precision the generators ran in, e.g. ``fp32 (auto: CPU without native bf16 (AVX2, ...))``."""
    used = {f"{gen.precision} ({'auto: ' if requested == 'auto' else ''}{gen.precision_why})" for _, gen in methods}
    return ", ".join(sorted(used)) or "n/a (no generator)"


def _count(n: int | None, unit: float, suffix: str) -> str:
    return "—" if n is None else f"{n / unit:.2f}{suffix}"


def results_markdown(summary: list[dict], cfg: DictConfig, command: str, perceptual: list[str] | None = None,
                     missing: dict[str, str] | None = None, precision: str = "", costs: str = "") -> str:
    """One markdown table per benchmark, with the protocol stated above it (and the generators' precision).

    ``perceptual`` columns (``lpips``, ``lpips_vgg``, ``dists``) follow SSIM Y, marked lower-is-better; one
    that ``missing`` names reads n/a, its reason under the tables.

    Rows that carry cost columns (:func:`add_costs`) get params, MACs and ms/MP beside their scores;
    ``costs`` is the note saying how those were measured (:func:`cost_note`).
    """
    lq = {"bicubic": f"{cfg.resize} bicubic 1/{cfg.scale}",
          "blur": f"{cfg.resize} bicubic 1/{cfg.scale} + Gaussian blur radius {cfg.blur_radius}",
          "realesrgan": f"Real-ESRGAN's degradation (conf/data/degradation/realesrgan.yaml), seed {cfg.seed}"}[cfg.degradation]
    lines = [
        "# srlab evaluation", "", f"`{command}`", "",
        f"x{cfg.scale}; LR: {lq} of the modcropped HR (LQ files used where the benchmark has them); "
        f"bicubic row: {cfg.resize} bicubic; metrics as BasicSR: uint8, {cfg.crop_border} px border cropped, "
        "Y = BT.601 luma; SSIM 11x11 Gaussian (sigma 1.5). Means over images."
        + (f" Generators ran in {precision}." if precision else ""), "",
    ]
    if costs:
        lines += [costs, ""]
    perceptual, missing = list(perceptual or []), dict(missing or {})
    if perceptual:
        names = ", ".join(TITLES[m] + (" (AlexNet)" if m == "lpips" else "") for m in perceptual)
        lines += [f"{names}: torchmetrics' networks on the same uint8 RGB images and border crop; distances, "
                  "lower is better (↓).", ""]
    for bench in dict.fromkeys(r["benchmark"] for r in summary):
        rows = [r for r in summary if r["benchmark"] == bench]
        cost = "params" in rows[0]
        head = "| method | PSNR RGB | SSIM RGB | PSNR Y | SSIM Y |" + "".join(f" {TITLES[m]} ↓ |" for m in perceptual)
        lines += [f"## {bench} ({rows[0]['images']} images)", "",
                  head + (" params | MACs (256² LR) | ms/MP |" if cost else ""),
                  "|---|---|---|---|---|" + "---|" * len(perceptual) + ("---:|---:|---:|" if cost else "")]
        for r in rows:
            line = (f"| {r['method']} | {_fmt(r['psnr_rgb'], 3)} | {_fmt(r['ssim_rgb'], 4)} | "
                    f"{_fmt(r['psnr_y'], 3)} | {_fmt(r['ssim_y'], 4)} |")
            line += "".join(f" {_fmt(r[m], 4) if m in r else 'n/a'} |" for m in perceptual)
            if cost:
                ms = "—" if r["ms_per_mp"] is None else f"{r['ms_per_mp']:.0f}"
                line += f" {_count(r['params'], 1e6, 'M')} | {_count(r['macs_256'], 1e9, 'G')} | {ms} |"
            lines.append(line)
        lines.append("")
    lines += [f"{TITLES[m]}: n/a ({reason})" for m, reason in missing.items()]
    if missing:
        lines.append("")
    return "\n".join(lines)


def _detailed_crop(hr: np.ndarray, size: int, scale: int) -> tuple[int, int]:
    """Top-left (y, x) of the size x size HR crop with the most gradient energy (on a scale-aligned grid)."""
    g = np.asarray(Image.fromarray(hr).convert("L"), dtype=np.float64)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    step = max(scale, size // 4 // scale * scale)
    best, pos = -1.0, (0, 0)
    for y in range(0, max(1, hr.shape[0] - size + 1), step):
        for x in range(0, max(1, hr.shape[1] - size + 1), step):
            e = energy[y : y + size, x : x + size].sum()
            if e > best:
                best, pos = e, (y, x)
    return pos


def save_figure(path: Path, hr, lq, outputs: dict, per: dict, crop: int, scale: int) -> None:
    """LR (nearest) | bicubic | each model | HR on one crop, labelled with each image's Y PSNR/SSIM."""
    crop = max(scale, min(crop, hr.shape[0], hr.shape[1]) // scale * scale)
    y, x = _detailed_crop(hr, crop, scale)
    lq_crop = lq[y // scale : (y + crop) // scale, x // scale : (x + crop) // scale]
    panels = [("LR (nearest)", np.asarray(Image.fromarray(lq_crop).resize((crop, crop), Image.NEAREST)))]
    for m, img in outputs.items():
        label = f"{m}\n{_fmt(per[m]['psnr_y'], 2)} dB / {per[m]['ssim_y']:.4f} (Y)"
        panels.append((label, img[y : y + crop, x : x + crop]))
    panels.append(("HR", hr[y : y + crop, x : x + crop]))
    zoom = max(1, 192 // crop)
    side, head, pad = crop * zoom, 34, 4
    canvas = Image.new("RGB", (len(panels) * (side + pad) + pad, side + head + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    for i, (label, img) in enumerate(panels):
        left = pad + i * (side + pad)
        canvas.paste(Image.fromarray(np.ascontiguousarray(img)).resize((side, side), Image.NEAREST), (left, head))
        draw.multiline_text((left, 2), label, fill="black", font=font, spacing=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def run(cfg: DictConfig) -> list[dict]:
    """Evaluate as configured; returns the summary rows (also written to ``cfg.out``)."""
    check_lq_protocol(cfg.degradation, cfg.resize, cfg.blur_radius)
    check_names(_as_list(cfg.get("metrics")), key="metrics")  # before any weights are loaded
    benches = [find_benchmark(b, cfg.scale) for b in _as_list(cfg.benchmarks)]
    if not benches:
        raise SRLabError("benchmarks: give at least one folder, e.g. 'benchmarks=[data/Set5]'")
    methods = load_methods(cfg)
    costs = method_costs(methods, bool(cfg.get("speed", True)))
    wanted, perceptual, missing = perceptual_metrics(cfg, methods)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    per_image = [r for b in benches for r in evaluate_benchmark(b, methods, cfg, perceptual, out)]
    summary = add_costs(summarize(per_image), costs)
    _write_csv(out / "results.csv", summary)
    _write_csv(out / "per_image.csv", per_image)
    precision = precision_note(methods, str(cfg.precision)) if methods else ""
    text = results_markdown(summary, cfg, _command(), wanted, missing, precision, cost_note(costs))
    report = {"command": _command(), "config": OmegaConf.to_container(cfg, resolve=True),
              "perceptual": {m: missing.get(m, "ok") for m in wanted},
              "precision": precision or None,
              "models": {label: gen.card for label, gen in methods},
              "efficiency": costs,
              "results": [{k: _json_value(v) for k, v in r.items()} for r in summary]}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "results.md").write_text(text)
    print(text)
    log.info("results in %s", out)
    return summary


def _json_value(v):
    # strict JSON has no Infinity: a perfect reconstruction's PSNR is written as the string "inf"
    return "inf" if isinstance(v, float) and v == float("inf") else v


def _command() -> str:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return "python -m srlab.evaluate " + " ".join(shlex.quote(o) for o in HydraConfig.get().overrides.task)
    return "srlab.evaluate.run(cfg)"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@user_errors(hydra_task=True)
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main(argv: list[str] | None = None) -> None:
    """CLI entry; ``argv`` (Hydra overrides) lets tests run it in-process. Exits 2 on user errors."""
    if argv is None:
        _hydra_main()
        return
    saved = sys.argv
    sys.argv = [saved[0] if saved else "srlab.evaluate", *argv]
    try:
        _hydra_main()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
