"""Benchmark harness: ``python -m srlab.bench [--sections ...] [--quick]`` (or ``make bench``); run by hand.

Measures and prints one markdown report and writes it, with the machine description, to
``experiments/benchmarks/results/<host>-<date>.md`` and ``.json``; a full default run also puts
it into ``experiments/benchmarks/README.md`` as the latest table for this machine.

Sections (default: all but ``levers`` and ``degradation``):

- ``ceilings``: fp32 GEMM and 3x3 conv GFLOP/s (NCHW, channels_last, bf16) -- :mod:`srlab.bench.ceilings`
- ``train``: a step of every model from its real config in ``Trainer.fit`` -- :mod:`srlab.bench.train`
- ``overhead``: the ESRGAN step in Lightning vs a bare loop -- :mod:`srlab.bench.step`
- ``profile``: where the ESRGAN step's time goes -- :mod:`srlab.bench.step`
- ``data``: DataLoader samples/s per source and worker count -- :mod:`srlab.bench.data`
- ``infer``: tiled RRDBNet x4 inference speed and peak memory -- :mod:`srlab.bench.infer`; every x4
  generator on a 1000x1000 output, torch and onnxruntime, with its params, MACs and ms/MP --
  :mod:`srlab.bench.infer_nets` (alone with ``--models``: the nets named)
- ``levers``: A/B of the speed levers on the bare ESRGAN step (slow) -- :mod:`srlab.bench.levers`
- ``degradation``: the Real-ESRGAN degradation's share of a training step -- :mod:`srlab.bench.degradation`

All timings compare candidates interleaved and report medians (with min-max), so that the load
of other processes on a shared machine hits every candidate alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402

from srlab.bench.utils import REPO_ROOT, machine_info  # noqa: E402
from srlab.config import model_names  # noqa: E402
from srlab.errors import SRLabError, user_errors  # noqa: E402

SECTIONS = ("ceilings", "train", "overhead", "profile", "data", "infer", "levers", "degradation")
DEFAULT_SECTIONS = SECTIONS[:-2]
OUT_DIR = REPO_ROOT / "experiments" / "benchmarks"
README_START, README_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_sections(args: argparse.Namespace, device: torch.device, say) -> dict:
    """Run the chosen sections in order; returns ``{section: result}`` (each printed as it finishes)."""
    from srlab.bench import ceilings, data, degradation, infer, infer_nets, levers, step, train

    results: dict = {}
    ceiling = None
    if args.sections & {"ceilings", "train", "infer"}:
        results["ceilings"] = ceiling = ceilings.run(device, args.quick)
        say("ceilings", ceilings.table(ceiling))
    if "train" in args.sections:
        models = tuple(args.models.split(",")) if args.models else train.MODELS
        results["train"] = train.run(device, ceiling, args.quick, models, args.set)
        say("train", train.table(results["train"]))
    if "overhead" in args.sections:
        results["overhead"] = step.overhead(device, args.quick)
        say("overhead", step.overhead_table(results["overhead"]))
    if "profile" in args.sections:
        results["profile"] = step.profile_step(device, args.quick)
        say("profile", step.profile_table(results["profile"]))
    if "data" in args.sections:
        esrgan = [r for r in results.get("train", {}).get("rows", []) if r["model"] == "esrgan"]
        s_per_step = esrgan[0]["s_per_step"] if esrgan else results.get("overhead", {}).get("lightning_s")
        steps = {r["model"]: r["s_per_step"] for r in results.get("train", {}).get("rows", []) if r.get("s_per_step")}
        results["data"] = data.run(s_per_step, args.quick, steps)
        say("data", data.table(results["data"]))
    if "infer" in args.sections:
        if args.models:  # the nets named: their table only, not the RRDBNet tiling and memory study (minutes)
            results["infer"] = {"nets": infer_nets.run(device, ceiling, args.quick, tuple(args.models.split(",")))}
            say("infer", infer_nets.table(results["infer"]["nets"]))
        else:
            results["infer"] = infer.run(device, ceiling, args.quick, args.tile)
            results["infer"]["nets"] = infer_nets.run(device, ceiling, args.quick)
            say("infer", infer.table(results["infer"]) + infer_nets.table(results["infer"]["nets"]))
    if "degradation" in args.sections:
        models = tuple(args.models.split(",")) if args.models else degradation.MODELS
        results["degradation"] = degradation.run(device, args.quick, models, args.set)
        say("degradation", degradation.table(results["degradation"]))
    if "levers" in args.sections:
        names = args.levers.split(",") if args.levers else [
            *levers.TRAIN_LEVERS, *(f"infer:{x}" for x in levers.INFER_LEVERS)]
        train_names = [x for x in names if x in levers.TRAIN_LEVERS + levers.OPTIONAL_TRAIN_LEVERS]
        infer_names = [x[len("infer:"):] for x in names if x.startswith("infer:")]
        known_infer = levers.INFER_LEVERS + levers.OPTIONAL_INFER_LEVERS
        unknown = [x for x in names if x not in train_names and x[len("infer:"):] not in known_infer]
        if unknown:
            raise SRLabError(f"--levers: unknown {', '.join(unknown)}; training levers: "
                             f"{', '.join(levers.TRAIN_LEVERS + levers.OPTIONAL_TRAIN_LEVERS)}; "
                             f"inference: {', '.join('infer:' + x for x in known_infer)}")
        reps = 2 if args.quick else 3
        if train_names:
            results["levers"] = levers.train_levers(device, args.lever_model, tuple(train_names), reps=reps)
            say("levers (training)", levers.table(results["levers"]))
        if infer_names:
            results["levers_infer"] = levers.infer_levers(device, args.tile or 128, tuple(infer_names), reps=reps)
            say("levers (inference)", levers.infer_table(results["levers_infer"]))
    return results


def machine_lines(info: dict) -> list[str]:
    gpu = f"{info['gpu']} ({info.get('gpu_memory_gib')} GiB)" if info["gpu"] else "none"
    if info.get("tf32"):
        gpu += (f", TF32 for fp32 convs {'on' if info['tf32']['cudnn_conv'] else 'off'}"
                f" / matmuls {'on' if info['tf32']['matmul'] else 'off'}")
    load = ", ".join(f"{x:.1f}" for x in info["load_average_at_start"] or [])
    return [
        f"- CPU: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), {info['cpu_capability']}, "
        + (f"native bf16 ({info['cpu_bf16']})" if info.get("cpu_bf16") else "no native bf16 (no amx_bf16/avx512_bf16)"),
        f"- GPU: {gpu}; benchmark device: {info['device']}",
        f"- torch {info['torch']} ({info['torch_threads']} threads, {info['torch_interop_threads']} interop, "
        f"oneDNN {'on' if info['mkldnn'] else 'off'}, denormals flushed: {info.get('flush_denormal', False)}), "
        f"lightning {info['lightning']}, Python {info['python']}",
        f"- host {info['host']}, {info['date']}, commit {info['commit']}"
        + (" (with local changes)" if info["dirty"] else ""),
        f"- load average at start (1, 5, 15 min): {load}",
    ]


def write_report(markdown: str, data: dict, out_dir: Path, update_readme: bool) -> Path:
    """Write ``results/<host>-<date>.md/.json``; optionally replace the README's latest block."""
    results = out_dir / "results"
    results.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", f"{data['machine']['host']}-{data['machine']['date']}")
    (results / f"{stem}.md").write_text(markdown)
    (results / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    readme = out_dir / "README.md"
    if update_readme and readme.is_file():
        text = readme.read_text()
        if README_START in text and README_END in text:
            head, rest = text.split(README_START, 1)
            tail = rest.split(README_END, 1)[1]
            note = f"_Written by the command below into `results/{stem}.md`._"
            demoted = re.sub(r"^(#+) ", r"\1## ", markdown, flags=re.M)  # under the README's own headings
            block = f"{README_START}\n{note}\n\n{demoted}\n{README_END}"
            readme.write_text(head + block + tail)
    return results / f"{stem}.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srlab.bench", description=__doc__.splitlines()[0])
    p.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                   help=f"comma-separated, from {', '.join(SECTIONS)} (default: all but levers and degradation)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (minutes, noisier)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--models", default=None,
                   help="train, infer and degradation sections: comma-separated conf/model names, all run (also "
                   "with --quick); infer then runs its every-net table only (params, MACs, ms/MP, conv ceiling share), "
                   "and takes stored weights too: a shipped model's name or a weights file, e.g. srvgg-x4-bicubic")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="train and degradation sections: a config override for every model (repeatable), e.g. "
                   "--set model.channels_last=true --set trainer.precision=16-mixed")
    p.add_argument("--tile", type=int, default=None, help="infer section: tile size (default 128 CPU, 512 GPU)")
    p.add_argument("--levers", default=None, help="levers section: comma-separated names; training ones as they are "
                   "(baseline first), inference ones as infer:NAME (infer:nchw first); also compile, cl_bf16, cl_fused, "
                   "cl_compile, infer:compile")
    p.add_argument("--lever-model", default="esrgan", help="levers section: the model to step")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="folder for results/ and README.md")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    args.sections = set(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = args.sections - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    return args


def _check_models(models: list[str], sections: set[str]) -> None:
    """conf/model names for every section; the infer section also times stored weights (shipped names, files)."""
    from srlab import zoo

    unknown = sorted(set(models) - set(model_names()))
    if sections == {"infer"}:
        unknown = [m for m in unknown if m not in zoo.names() and not Path(m).is_file()]
        also = f"; with --sections infer alone, also a shipped model ({', '.join(zoo.names())}) or a weights file"
    else:
        also = "; stored weights (shipped names, files) are timed by --sections infer alone"
    if unknown:
        raise SRLabError(f"--models {','.join(unknown)}: no such conf/model (known: {', '.join(model_names())}){also}")


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry: measure the chosen sections, print and write the report."""
    args = parse_args(argv)
    if args.models:
        _check_models(args.models.split(","), args.sections)
    device = _device(args.device)
    # as srlab.train.run: denormal floats from freshly initialised nets slow CPU kernels several-fold
    flushing = torch.set_flush_denormal(True)
    info = {**machine_info(device), "flush_denormal": flushing}
    command = "python -m srlab.bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    parts = ["# srlab benchmark", "", f"Command: `{command.strip()}`", "", *machine_lines(info)]
    print("\n".join(parts), flush=True)
    started = time.perf_counter()

    def say(section: str, lines: list[str]) -> None:
        block = ["", f"## {section}", "", *lines]
        parts.extend(block)
        print("\n".join(block), flush=True)

    results = run_sections(args, device, say)
    parts += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s."]
    markdown = "\n".join(parts) + "\n"
    if not args.no_write:
        full = args.sections == set(DEFAULT_SECTIONS) and not args.quick and not args.set
        path = write_report(markdown, {"command": command, "machine": info, "results": results}, args.out, full)
        print(f"\nwritten: {path}" + ("" if full else " (README.md keeps its table: not a full default run)"))
    return 0

