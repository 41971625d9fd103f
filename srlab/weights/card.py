"""Model cards: what a generator was trained for, read back and told to the user.

A model only suits inputs degraded the way its training data were: a net trained to undo bicubic
+ blur over-sharpens a photo that was never blurred. The card says so. It is a small JSON-able
dict that ``srlab.train`` writes into every checkpoint (:mod:`srlab.runs.card`) and ``srlab.export``
copies into every export; :func:`srlab.weights.read_card` reads it from any of them. Here:
:func:`summary`, the one line ``upscale`` and ``evaluate`` print, and the benchmark rows a shipped
model's card carries (:func:`benchmark_rows` from an ``srlab.evaluate`` ``results.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from srlab.errors import SRLabError

CARD_VERSION = 1
UNKNOWN = "unknown training data (no model card)"


def _settings(card: dict | None) -> dict:
    return ((card or {}).get("degradation") or {}).get("settings") or {}


def degradation_kind(card: dict | None) -> str | None:
    """``bicubic`` (blurred or not), ``realesrgan``, ...; None when the card does not say."""
    settings = _settings(card)
    return settings.get("kind", "bicubic") if settings else None


def blur_radius(card: dict | None) -> float:
    """The Gaussian blur radius of the training LQ (0 when none or unknown)."""
    if degradation_kind(card) != "bicubic":
        return 0.0
    try:
        return float(_settings(card).get("blur_radius") or 0)
    except (TypeError, ValueError):
        return 0.0


def suits_sharp_inputs(card: dict | None) -> bool:
    """Trained on unblurred bicubic LQ or on real-world degradations: the model for ordinary photos."""
    return degradation_kind(card) in ("bicubic", "realesrgan") and blur_radius(card) == 0


def describe_degradation(card: dict | None) -> str:
    """``bicubic + blur 1.5 (report)``, ``bicubic (matlab)``, ``real-world degradations (realesrgan)`` ..."""
    deg = (card or {}).get("degradation") or {}
    settings = deg.get("settings")
    if not settings:
        return "given LQ images (unknown degradation)" if deg.get("lq") == "given pairs" else "unknown degradation"
    kind = settings.get("kind", "bicubic")
    if kind == "realesrgan":
        text = f"real-world degradations ({_realesrgan(settings)})"
    elif kind != "bicubic":
        text = f"{settings.get('preset') or kind} degradation"
    else:
        resize = settings.get("resize") or settings.get("bicubic") or "pil"
        radius = blur_radius(card)
        text = "bicubic" + (f" ({resize})" if resize != "pil" else "") + (f" + blur {radius:g}" if radius else "")
        report = radius == 1.5 and resize == "pil" and settings.get("order", "resize_then_blur") == "resize_then_blur"
        text += " (report)" if report else ""
    if deg.get("lq") == "prepared by srlab.prepare":
        text += ", prepared pairs"
    return text


def _span(settings: dict, key: str) -> str | None:
    """``0.2-3`` for a ``[low, high]`` setting, ``0.2-3 then 0.2-1.5`` with its second stage (``key2``)."""
    def text(value: object) -> str | None:
        try:
            low, high = value
            return f"{low:g}-{high:g}"
        except (TypeError, ValueError):
            return None
    first, second = text(settings.get(key)), text(settings.get(f"{key}2"))
    return first if second in (None, first) else f"{first} then {second}"


def _realesrgan(settings: dict) -> str:
    """Real-ESRGAN's settings that say how hard its inputs were: blur, noise, JPEG of both stages."""
    parts = [f"{label} {span}" for label, key in (("blur sigma", "blur_sigma"), ("noise", "noise_range"),
                                                  ("JPEG quality", "jpeg_range")) if (span := _span(settings, key))]
    parts += ["sharpened targets"] if settings.get("gt_usm") else []
    return "Real-ESRGAN: " + ", ".join(parts) if parts else "Real-ESRGAN"


def _human(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _macs(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.1f}G" if n >= 1e9 else f"{n / 1e6:.1f}M"


def describe_efficiency(eff: dict | None) -> str:
    """``1.21M params, 79.2G MACs per 256x256 LR, 10131 ms/MP fp32 on AMD EPYC (2 threads, 128x128 LR)``.

    With bf16 timed too (a CPU with native bf16): ``..., 900 ms/MP fp32, 400 ms/MP bf16 on ...``.

    ``eff`` is the ``efficiency`` of a card (:func:`srlab.infer.efficiency.efficiency`); the speed
    part says where it was measured, or that it was not (a training run's card: params and MACs only).
    """
    if not eff:
        return "not recorded (a card written before srlab measured it; srlab.export adds it)"
    text = f"{_human(eff.get('params'))} params, {_macs(eff.get('macs_256'))} MACs per 256x256 LR"
    speeds = eff.get("ms_per_mp") or {}
    if not speeds:
        return text + " (ms/MP not measured: srlab.export measures it)"
    times = ", ".join(f"{ms:.0f} ms/MP {precision}" for precision, ms in speeds.items())
    where = eff.get("gpu") or eff.get("cpu") or eff.get("device") or "?"
    n = eff.get("threads")
    threads = f"{n} thread{'s' if n != 1 else ''}, " if n and not eff.get("gpu") else ""
    return f"{text}, {times} on {where} ({threads}{eff.get('speed_lr', '?')}x{eff.get('speed_lr', '?')} LR)"


def efficiency_line(card: dict | None) -> str:
    """``cost: <describe_efficiency>`` for a card (what ``upscale --list-models`` prints under a model)."""
    return f"cost: {describe_efficiency((card or {}).get('efficiency'))}"


def describe_validation(card: dict) -> str:
    val = card.get("validation") or {}
    if val.get("best") is None:
        return "no validation score"
    unit = " dB" if "psnr" in str(val.get("monitor", "")) else ""
    return f"best {val.get('monitor')} {val['best']:.2f}{unit}"


def summary(card: dict | None) -> str:
    """One line: ``quickstart x4 (RRDBNet, 71.2k params), trained for bicubic + blur 1.5 (report) on samples
    (8 images), best val/psnr 23.17 dB``; the ``UNKNOWN`` line for weights without a card."""
    if not card:
        return UNKNOWN
    gen, data = card.get("generator") or {}, card.get("data") or {}
    images = data.get("source_images") or data.get("images")
    where = f" on {data.get('folder')}" + (f" ({images} images)" if images else "") if data.get("folder") else ""
    net = f"{gen.get('class', '?')}, {_human(gen.get('params'))} params"
    return (f"{card.get('name', 'model')} x{card.get('scale', '?')} ({net}), trained for {describe_degradation(card)}"
            f"{where}, {describe_validation(card)}")


def model_line(label: str, card: dict | None, notes: list[str] | tuple[str, ...] = ()) -> str:
    """The one line every tool prints about the model it runs: ``model LABEL: <card summary>[; notes]``.

    Args:
        label: what the user called the weights (a shipped model's name or a path).
        card: its model card, or None.
        notes: what srlab decided that the file did not say (detected family, input range).
    """
    extra = "".join(f"; {note}" for note in notes)
    return f"model {label}: {summary(card)}{extra}"


def benchmark_lines(card: dict | None) -> list[str]:
    """One line per benchmark row of a shipped model's card.

    E.g. ``Set5, LR by matlab bicubic: 30.12 dB / 0.8512 (Y), bicubic 28.42 dB``.
    """
    lines = []
    for row in (card or {}).get("benchmarks") or []:
        blur = f" + blur {row['blur_radius']:g}" if row.get("degradation") == "blur" else ""
        lr = f"{row.get('resize')} bicubic{blur}"
        if row.get("degradation") == "realesrgan":
            lr = f"Real-ESRGAN's degradation (seed {row.get('seed')})"
        bicubic = f", bicubic {row['bicubic_psnr_y']:.2f} dB" if row.get("bicubic_psnr_y") is not None else ""
        lines.append(f"{row['benchmark']}, LR by {lr}: {row['psnr_y']:.2f} dB / {row['ssim_y']:.4f} (Y){bicubic}")
    return lines


def benchmark_rows(results_json: str | Path, method: str | None = None) -> list[dict]:
    """The rows of one model from an ``srlab.evaluate`` ``results.json`` (with each set's bicubic row).

    Args:
        results_json: ``OUT/results.json`` of ``python -m srlab.evaluate``.
        method: its label for the model; may be left out when the file measured a single model.

    Raises:
        SRLabError: unreadable file, or no/several models and ``method`` does not pick one.
    """
    path = Path(results_json)
    try:
        report = json.loads(path.read_text())
        rows, config = report["results"], report.get("config") or {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SRLabError(f"{path}: not a results.json of srlab.evaluate ({exc})") from None
    baseline = f"bicubic ({config.get('resize', 'pil')})"  # evaluate's label for its bicubic row, never a model's
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != baseline))
    if method is None and len(methods) != 1:
        raise SRLabError(f"{path}: measures {len(methods)} models ({', '.join(methods) or 'none'}); "
                         "name one with --method")
    method = method or methods[0]
    if method not in methods:
        raise SRLabError(f"--method {method}: not in {path} (models: {', '.join(methods) or 'none'})")
    bicubic = {r["benchmark"]: r for r in rows if r["method"] == baseline}
    out = []
    for r in rows:
        if r["method"] == method:
            ref = bicubic.get(r["benchmark"], {})
            out.append({"benchmark": r["benchmark"], "images": r.get("images"), "resize": config.get("resize"),
                        "degradation": config.get("degradation"),
                        "blur_radius": config.get("blur_radius") if config.get("degradation") == "blur" else 0,
                        **({"seed": config.get("seed")} if config.get("degradation") == "realesrgan" else {}),
                        "psnr_y": r["psnr_y"], "ssim_y": r["ssim_y"],
                        "psnr_rgb": r.get("psnr_rgb"), "ssim_rgb": r.get("ssim_rgb"),
                        "bicubic_psnr_y": ref.get("psnr_y"), "bicubic_ssim_y": ref.get("ssim_y")})
    return out
