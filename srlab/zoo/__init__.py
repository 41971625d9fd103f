"""Models shipped inside srlab, found by listing this folder (no list to keep in step with it).

A shipped model is ``srlab/zoo/NAME.safetensors`` (net config and model card in its header, see
:mod:`srlab.weights.card`) with ``NAME.card.json`` beside it for people to read. ``default.txt`` names the
one ``upscale`` uses without ``--weights`` (with a single model, that model). Add one with
``python -m srlab.export CKPT --to-zoo NAME --benchmarks results.json [--default]``.
"""

from __future__ import annotations

from pathlib import Path

from srlab.errors import SRLabError
from srlab.weights.card import (
    blur_radius,
    degradation_kind,
    describe_degradation,
    model_line,
    suits_sharp_inputs,
    summary,
)

ZOO_DIR = Path(__file__).resolve().parent  # tests point it at a temporary folder
DEFAULT_FILE = "default.txt"
SUFFIX = ".safetensors"


def names() -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in ZOO_DIR.glob(f"*{SUFFIX}") if p.is_file())


def path_of(name: str) -> Path:
    """The weights file of shipped model ``name`` (which need not exist yet)."""
    return ZOO_DIR / f"{name}{SUFFIX}"


def _scale_of(name: str) -> int | None:
    from srlab.weights import read_card

    return (read_card(path_of(name)) or {}).get("scale")


def default_names() -> list[str]:
    """The shipped models ``default.txt`` names (one per line, at most one per scale), the first the default of defaults."""
    file = ZOO_DIR / DEFAULT_FILE
    listed = file.read_text().split() if file.is_file() else []
    known = names()
    return [n for n in listed if n in known]


def default_name(scale: int | None = None) -> str | None:
    """The model ``upscale`` uses without ``--weights``: of ``scale`` when given, else the first default.

    ``default.txt`` names one model per scale; where it names none (of that scale), a single shipped
    model (of that scale) is the default; else there is none.
    """
    listed = default_names()
    if scale is None:
        known = names()
        return listed[0] if listed else (known[0] if len(known) == 1 else None)
    of_scale = [n for n in listed if _scale_of(n) == scale]
    if of_scale:
        return of_scale[0]
    shipped = [n for n in names() if _scale_of(n) == scale]
    return shipped[0] if len(shipped) == 1 else None


def make_default(name: str) -> Path:
    """Make shipped model ``name`` the default of its scale in ``default.txt`` (the x4 default stays first)."""
    scale = _scale_of(name)
    kept = [n for n in default_names() if n != name and _scale_of(n) != scale]
    ordered = sorted([*kept, name], key=lambda n: _scale_of(n) != 4)  # x4 first: what upscale uses without --scale
    file = ZOO_DIR / DEFAULT_FILE
    file.write_text("\n".join(ordered) + "\n")
    return file


def scales() -> dict[int, list[str]]:
    """The shipped models by scale."""
    out: dict[int, list[str]] = {}
    for name in names():
        out.setdefault(_scale_of(name), []).append(name)
    return out


def _known() -> str:
    known = names()
    return f"shipped models: {', '.join(known)}" if known else "this install ships no models"


def resolve_weights(weights: str | Path | None, scale: int | None = None) -> Path:
    """The file a ``weights`` argument means: an existing path, a shipped model's name, or (None) the default
    (of ``scale`` when given).

    Raises:
        SRLabError: no such file or shipped model (the message lists the shipped names), or no
            default model to use.
    """
    if weights is None or str(weights) == "":
        name = default_name(scale)
        if name is None and scale is not None:
            shipped = ", ".join(f"x{s}: {', '.join(n)}" for s, n in sorted(scales().items(), key=lambda kv: kv[0] or 0))
            raise SRLabError(f"no shipped x{scale} model ({shipped or 'none shipped'}); pass --weights FILE of a x{scale} model")
        if name is None:
            raise SRLabError(f"no weights given and no default shipped model ({_known()}); "
                             "pass --weights FILE (a .ckpt of srlab.train, an srlab.export file or published weights)")
        return path_of(name)
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    text = str(weights)
    if text in names():
        return path_of(text)
    if "/" not in text and "\\" not in text:  # a bare word: meant as a shipped model's name
        raise SRLabError(f"weights={text}: no such file and no shipped model of that name ({_known()})")
    raise SRLabError(f"weights={path}: no such file")


def cards() -> dict[str, dict | None]:
    """Each shipped model's card, by name."""
    from srlab.weights import read_card

    return {name: read_card(path_of(name)) for name in names()}


def listing() -> list[str]:
    """What ``upscale --list-models`` prints: a line per model (its card), its cost, then its benchmark rows.

    The cost (parameters, MACs per 256x256 LR, CPU ms per output megapixel) is the card's, measured
    when the model was exported (:mod:`srlab.infer.efficiency`; the line names the CPU): listing
    stays instant, and the figures are those the benchmark rows were shipped with.
    """
    from srlab.weights.card import benchmark_lines, efficiency_line

    found = cards()
    if not found:
        return [f"no shipped models in this install ({ZOO_DIR} holds none); use --weights FILE"]
    defaults = {default_name(s) for s in scales()}
    lines = [f"shipped models ({ZOO_DIR}); use one with --weights NAME (or the default of a scale with --scale N):"]
    for name, card in found.items():
        scale = (card or {}).get("scale")
        mark = f" (default{'' if name == default_name() else f' for --scale {scale}'})" if name in defaults else ""
        lines.append(f"  {name}{mark}: {summary(card)}")
        lines.append(f"      {efficiency_line(card)}")
        lines += [f"      {line}" for line in benchmark_lines(card)]
        lines += [f"      about: {card['about']}"] if (card or {}).get("about") else []
    return lines


def model_notes(label: str, card: dict | None, scale: int, notes: list[str] | tuple[str, ...] = ()) -> tuple[str, str | None]:
    """What ``upscale`` says about the model it uses: its card line, and a warning for blur-trained models.

    A model trained to undo a blur sharpens every edge as if it were blurred: on an ordinary sharp
    photo that is ringing. The warning names a shipped model of the same scale trained without blur
    when there is one (that scale's default where it is one).
    """
    line, radius = model_line(label, card, notes), blur_radius(card)
    if radius <= 0:
        return line, None
    fitting = {n: c for n, c in cards().items() if c and c.get("scale") == scale and suits_sharp_inputs(c)}
    sharp = [n for n, c in fitting.items() if degradation_kind(c) == "bicubic"]  # real-world ones smooth sharp photos
    default = default_name(scale)
    sharp.sort(key=lambda n: n != default)  # the scale's default first, then by name
    real = [n for n, c in fitting.items() if degradation_kind(c) == "realesrgan"]
    if sharp:
        advice = f"for sharp photos use --weights {sharp[0]} ({describe_degradation(fitting[sharp[0]])})"
        advice += f", for noisy or compressed ones --weights {real[0]}" if real else ""
    elif real:
        advice = f"use --weights {real[0]} ({describe_degradation(fitting[real[0]])}) or a model trained without blur"
    else:
        advice = ("for sharp photos use a model trained without blur "
                  "(python -m srlab.train data.degradation.blur_radius=0, or real-world degradations)")
    return line, (f"warning: {label} was trained on blurred inputs (blur {radius:g}); on photos that were not "
                  f"blurred it over-sharpens (ringing around edges); {advice}")
