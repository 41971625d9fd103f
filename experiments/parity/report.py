"""The parity report: ``results.md``, ``results.json`` and ``parity.png`` from the runs and evaluations in ``--work``.

Called by ``parity.py --steps report``. Iteration ``k`` means "after k optimizer steps" on both sides:
srlab logs step ``s`` (0-based) for its (s+1)-th batch, BasicSR logs its 1-based ``current_iter``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from srlab.bench.utils import commit_label, cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
COLORS = {"srlab": "tab:blue", "basicsr": "tab:orange"}
NAMES = {"srlab": "srlab", "basicsr": "BasicSR 1.4.2"}
_BSR_LINE = re.compile(r"iter:\s*(\d+), lr:\((\S+?),\)\].*l_pix: (\S+)")


def scores(work: Path, tool: str, seed: int) -> tuple[dict, dict]:
    """``{bench: {iteration: row}}`` of one run and ``{bench: bicubic row}`` from its evaluate results.json."""
    rows = json.loads((work / "eval" / f"{tool}_s{seed}" / "results.json").read_text())["results"]
    out, bicubic = {}, {}
    for r in rows:
        if r["method"].startswith("bicubic"):
            bicubic[r["benchmark"]] = r
        else:
            out.setdefault(r["benchmark"], {})[int(r["method"].removeprefix("it"))] = r
    return out, bicubic


def train_log(work: Path, tool: str, seed: int) -> tuple[dict[int, float], dict[int, float]]:
    """``({iteration: L1 loss}, {iteration: learning rate})`` as each tool logged them (every 10 iterations)."""
    loss, lr = {}, {}
    run = work / "runs" / f"{tool}_s{seed}"
    if tool == "srlab":
        with open(run / "csv" / "metrics.csv") as f:
            for r in csv.DictReader(f):
                if r.get("train/loss"):
                    loss[int(r["step"]) + 1] = float(r["train/loss"])
                if r.get("lr-Adam"):
                    lr[int(r["step"]) + 1] = float(r["lr-Adam"])
    else:
        for log in sorted(run.glob("experiments/*/train_*.log")):
            for m in _BSR_LINE.finditer(log.read_text()):
                lr[int(m.group(1))], loss[int(m.group(1))] = float(m.group(2)), float(m.group(3))
    return loss, lr


def seconds_per_iteration(ckpts: dict[int, Path]) -> float | None:
    """From the first to the last saved generator's file times: startup and worker spin-up excluded."""
    its = sorted(ckpts)
    if len(its) < 2:
        return None
    return (ckpts[its[-1]].stat().st_mtime - ckpts[its[0]].stat().st_mtime) / (its[-1] - its[0])


def machine(bsr_python: str) -> dict:
    bsr = subprocess.run([bsr_python, "-c", "import importlib.metadata as m; print(m.version('basicsr'))"],
                         capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "commit": commit_label(),
            "python": platform.python_version(), "torch": torch.__version__, "basicsr": bsr}


def _band(ax, xs, per_seed: list[list[float]], tool: str, label: str) -> None:
    a = np.array(per_seed)
    ax.plot(xs, a.mean(0), color=COLORS[tool], label=label)
    ax.fill_between(xs, a.min(0), a.max(0), color=COLORS[tool], alpha=0.25, linewidth=0)


def plot(path: Path, curves: dict, losses: dict, bicubic: dict, benches: list[str]) -> None:
    fig, axes = plt.subplots(1, len(benches) + 1, figsize=(5.2 * (len(benches) + 1), 4.2))
    for ax, bench in zip(axes, benches):
        for tool, per_seed in curves[bench].items():
            xs = sorted(per_seed[0])
            _band(ax, xs, [[s[i] for i in xs] for s in per_seed], tool,
                  f"{NAMES[tool]} (mean, band = {len(per_seed)} seeds)")
        ax.axhline(bicubic[bench]["psnr_y"], color="gray", linestyle="--", label="bicubic")
        ax.set(title=f"{bench}: PSNR Y (srlab.evaluate, crop 4)", xlabel="iteration", ylabel="dB")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[-1]
    for tool, per_seed in losses.items():
        xs = sorted(set.intersection(*(set(s) for s in per_seed)))
        k = min(10, len(xs))  # 100-iteration moving average of the per-batch losses both tools log every 10 iterations
        smooth = [np.convolve([s[i] for i in xs], np.ones(k) / k, mode="valid") for s in per_seed]
        _band(ax, xs[k - 1:], smooth, tool, NAMES[tool])
    ax.set(title="training L1 (moving mean of 10 logged batches)", xlabel="iteration", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(args, recipe: dict, ckpts: dict) -> None:
    """Collect scores, losses, learning rates and timings of every run; write the table and the plot."""
    work, tools = args.work, ("srlab", "basicsr")
    # a tool's runs are the asked seeds it has evaluations of (a seed may be finished for one tool only)
    seeds = {t: [s for s in args.seeds if (work / "eval" / f"{t}_s{s}" / "results.json").is_file()] for t in tools}
    timings = json.loads((work / "timings.json").read_text())
    final, curves, losses, lr_check, runs, bicubic = recipe["iters"], {}, {}, {}, {}, {}
    for tool in tools:
        for seed in seeds[tool]:
            sc, bic = scores(work, tool, seed)
            bicubic = {b: {k: r[k] for k in ("psnr_y", "ssim_y")} for b, r in bic.items()}
            for bench, by_it in sc.items():
                curves.setdefault(bench, {}).setdefault(tool, []).append({i: r["psnr_y"] for i, r in by_it.items()})
            loss, lr = train_log(work, tool, seed)
            losses.setdefault(tool, []).append(loss)
            lr_check.setdefault(seed, {})[tool] = lr
            name = f"{tool}_s{seed}"
            runs[name] = {"tool": tool, "seed": seed, **timings.get(name, {}),
                          "s_per_iter": seconds_per_iteration(ckpts[(tool, seed)]),
                          "final": {b: {k: by_it[final][k] for k in ("psnr_y", "ssim_y", "psnr_rgb")}
                                    for b, by_it in sc.items()}}
    benches = list(curves)
    # the same learning rate at every iteration both tools logged, seed by seed
    lr_diffs = [abs(v["srlab"][i] - v["basicsr"][i]) for v in lr_check.values() if len(v) == 2
                for i in set(v["srlab"]) & set(v["basicsr"])]
    means = {t: {b: {k: float(np.mean([runs[f"{t}_s{s}"]["final"][b][k] for s in seeds[t]])) for k in ("psnr_y", "ssim_y")}
                 for b in benches} for t in tools}
    result = {"recipe": recipe, "seeds": seeds, "machine": machine(args.bsr_python), "runs": runs,
              "mean_final": means, "bicubic": bicubic,
              "lr_check": {"iterations_compared": len(lr_diffs), "max_abs_diff": max(lr_diffs, default=None)},
              "curves_psnr_y": {b: {t: [{str(i): v for i, v in s.items()} for s in c] for t, c in tc.items()}
                                for b, tc in curves.items()}}
    result["stats"] = stats(result, benches, seeds)
    result["stats"]["loss_step_corr"] = {t: loss_step_correlation(losses[t]) for t in tools}
    (HERE / "results.json").write_text(json.dumps(result, indent=1))
    plot(HERE / "parity.png", curves, losses, bicubic, benches)
    (HERE / "results.md").write_text(markdown(result, benches, tools, seeds))
    print((HERE / "results.md").read_text())
    write_readme(HERE / "README.md", result, benches)


def markdown(res: dict, benches: list[str], tools, seeds) -> str:
    r, runs, means = res["recipe"], res["runs"], res["mean_final"]
    m = res["machine"]
    head = "| run | " + " | ".join(f"{b} PSNR-Y | {b} SSIM-Y" for b in benches) + " |"
    lines = [f"# Parity table (written by report.py, commit {m['commit']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, torch {m['torch']}, BasicSR {m['basicsr']}.",
             f"Scores after {r['iters']} iterations (`srlab.evaluate`, x4, pil bicubic LR, Y, crop 4).", "",
             head, "|---" * (1 + 2 * len(benches)) + "|",
             "| bicubic (pil) | " + " | ".join(f"{res['bicubic'][b]['psnr_y']:.3f} | {res['bicubic'][b]['ssim_y']:.4f}" for b in benches) + " |"]
    for tool in tools:
        for s in seeds[tool]:
            f = runs[f"{tool}_s{s}"]["final"]
            lines.append(f"| {NAMES[tool]} seed {s} | " + " | ".join(f"{f[b]['psnr_y']:.3f} | {f[b]['ssim_y']:.4f}" for b in benches) + " |")
        lines.append(f"| **{NAMES[tool]} mean** | " + " | ".join(
            f"**{means[tool][b]['psnr_y']:.3f}** | {means[tool][b]['ssim_y']:.4f}" for b in benches) + " |")
    lines.append("| srlab - BasicSR (means) | " + " | ".join(
        f"{means['srlab'][b]['psnr_y'] - means['basicsr'][b]['psnr_y']:+.3f} dB | "
        f"{means['srlab'][b]['ssim_y'] - means['basicsr'][b]['ssim_y']:+.4f}" for b in benches) + " |")
    lines += ["", "| run | started | wall (s) | CPU (s) | s/iteration | load avg start / end |", "|---|---|---|---|---|---|"]
    for name, v in runs.items():
        spi = f"{v['s_per_iter']:.3f}" if v.get("s_per_iter") else "n/a"
        lines.append(f"| {name} | {v.get('started', '?')} | {v.get('wall_s', '?')} | {v.get('cpu_s', '?')} | {spi} | "
                     f"{v.get('load_start', 0):.1f} / {v.get('load_end', 0):.1f} |")
    lines += ["", "Mean PSNR-Y gap (srlab - BasicSR, dB) at every saved iteration:", "",
              "| iteration | " + " | ".join(benches) + " |", "|---" * (1 + len(benches)) + "|"]
    gaps = res["stats"]["gap_by_iteration"]
    for it in gaps[benches[0]]:
        lines.append(f"| {it} | " + " | ".join(f"{gaps[b][it]:+.3f}" for b in benches) + " |")
    corr = res["stats"]["loss_step_corr"]
    lines += ["", "Correlation between seeds of the batch-to-batch change of the logged log-loss (mean over seed pairs; "
              "high when two runs see the same images in the same batches): "
              + ", ".join(f"{NAMES[t]} {c:+.2f}" for t, c in corr.items()) + "."]
    lc = res["lr_check"]
    lines += ["", f"Learning rate logged by both tools at {lc['iterations_compared']} common iterations: "
                  f"largest difference {lc['max_abs_diff']}.", ""]
    return "\n".join(lines)


def stats(res: dict, benches: list[str], seeds) -> dict:
    """Seed spread per tool, the standard error of the difference of means, the gap at every checkpoint."""
    out = {"gap_by_iteration": {}}
    for b in benches:
        finals = {t: [res["runs"][f"{t}_s{s}"]["final"][b]["psnr_y"] for s in seeds[t]] for t in seeds}
        sd = {t: float(np.std(v, ddof=1)) for t, v in finals.items()}
        out[b] = {"gap": res["mean_final"]["srlab"][b]["psnr_y"] - res["mean_final"]["basicsr"][b]["psnr_y"],
                  "sd": sd, "se_gap": float(np.sqrt(sum(sd[t] ** 2 / len(seeds[t]) for t in seeds)))}
        curves = res["curves_psnr_y"][b]
        out["gap_by_iteration"][b] = {it: float(np.mean([c[it] for c in curves["srlab"]]) - np.mean([c[it] for c in curves["basicsr"]]))
                                      for it in sorted(curves["srlab"][0], key=int)}
    return out


def loss_step_correlation(per_seed: list[dict[int, float]]) -> float:
    """Mean over seed pairs of the correlation of ``diff(log loss)`` at the iterations both logged."""
    out = []
    for i, a in enumerate(per_seed):
        for b in per_seed[i + 1:]:
            its = sorted(set(a) & set(b))
            da, db = (np.diff(np.log([s[k] for k in its])) for s in (a, b))
            out.append(float(np.corrcoef(da, db)[0, 1]))
    return float(np.mean(out))


def verdict(res: dict, benches: list[str]) -> str:
    st, n = res["stats"], ", ".join(f"{len(v)} {NAMES[t]}" for t, v in res["seeds"].items())
    parts = [f"{b} {st[b]['gap']:+.3f} dB (seed std {st[b]['sd']['srlab']:.3f} / {st[b]['sd']['basicsr']:.3f}, standard "
             f"error of the gap {st[b]['se_gap']:.3f}, so {abs(st[b]['gap']) / st[b]['se_gap']:.1f} standard errors)"
             for b in benches]
    within = all(abs(st[b]["gap"]) <= 0.1 for b in benches)
    return (f"With the same recipe (seeds: {n}), srlab's mean PSNR-Y after {res['recipe']['iters']} iterations "
            f"is, against BasicSR's: {'; '.join(parts)}. The issue's bar (within 0.1 dB) is "
            f"{'met' if within else 'not met on the means'}.")


def _demote(md: str) -> str:
    """One heading level down: the generated files' ``#`` titles become sections of the README."""
    return "\n".join("#" + ln if ln.startswith("#") else ln for ln in md.splitlines())


def write_readme(readme: Path, res: dict, benches: list[str]) -> None:
    """Replace the README's generated block (between the markers) with the verdict, table, figure and checks."""
    start, end = "<!-- report.py: results start -->", "<!-- report.py: results end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return
    checks = HERE / "checks.md"
    block = [start, "", "**Verdict (computed by report.py).** " + verdict(res, benches), "",
             "![PSNR-Y of every saved generator, both tools; training loss](parity.png)", "",
             _demote((HERE / "results.md").read_text()).replace("## Parity table", "## Table", 1), ""]
    if checks.is_file():
        block += [_demote(checks.read_text()), ""]
    block.append(end)
    head, rest = text.split(start, 1)
    readme.write_text(head + "\n".join(block) + rest.split(end, 1)[1])
