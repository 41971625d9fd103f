"""Every published weights file of ``../shared/published_weights`` through srlab's one door, against its reference.

    python experiments/published_weights/check.py [--root ../shared/published_weights] [--out results.md]

For each file of the manifest: ``srlab.infer.load_generator(file)`` with no model name and no input
range (the architecture is detected, the input range probed), fp32 on the CPU, one forward of
``refs/lr.png``; then the largest absolute difference to ``refs/<name>_sr.npy`` (the source
repository's own output, float in [0, 1]), the PSNR of srlab's output against it, and whether the
probed input range is the one the manifest records. Also every file with ``--input-range`` given.
A check to run by hand (the test suite must not need ``../shared``); the table goes to stdout and ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from srlab.bench.utils import machine_info  # noqa: E402
from srlab.infer import load_generator  # noqa: E402


def check(root: Path, entry: dict) -> dict:
    lr = np.asarray(Image.open(root / "refs" / "lr.png").convert("RGB"))
    ref = np.load(root / entry["sr_npy"])
    start = time.perf_counter()
    gen = load_generator(str(root / entry["file"]), device="cpu", precision="fp32")
    with torch.inference_mode():
        sr = gen(torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255)
    out = sr.clamp(0, 1)[0].permute(1, 2, 0).numpy()
    diff = float(np.abs(out - ref).max())
    mse = float(np.mean((out - ref) ** 2))
    probed = next((n for n in gen.notes if n.startswith("input range")), "fixed by layout ([0, 1])")
    chosen = 255.0 if probed.startswith("input range [0, 255]") else 1.0
    return {
        "family": entry["family"], "file": entry["short_name"], "detected": next(
            (n.removeprefix("detected ") for n in gen.notes if n.startswith("detected")), type(gen.net).__name__),
        "max_diff": diff, "psnr_vs_ref": 10 * np.log10(1 / max(mse, 1e-20)),
        "range": chosen, "range_ok": chosen == float(entry["input_range_used"]), "probe": probed,
        "seconds": time.perf_counter() - start,
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "published_weights")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)  # as the references were computed
    entries = json.loads((args.root / "manifest.json").read_text())
    lines = ["| family | file | detected | max abs diff | PSNR vs reference (dB) | input range (manifest) | probe |",
             "|---|---|---|---:|---:|---|---|"]
    failed = 0
    for entry in entries:
        try:
            r = check(args.root, entry)
        except Exception as exc:  # noqa: BLE001 - a row per file, whatever happens
            failed += 1
            lines.append(f"| {entry['family']} | {entry['short_name']} | FAILED: {exc} | | | | |")
            continue
        ok = r["max_diff"] <= 1 / 255 and r["range_ok"]
        failed += not ok
        lines.append(f"| {r['family']} | {r['file']} | {r['detected']} | {r['max_diff']:.2e} | {r['psnr_vs_ref']:.1f} | "
                     f"{r['range']:g} ({entry['input_range_used']:g}){'' if r['range_ok'] else ' WRONG'} | {r['probe']} |")
    info = machine_info(torch.device("cpu"))
    lines += ["", f"{len(entries) - failed}/{len(entries)} within 1/255 of the reference with the right input range "
              f"(fp32, CPU: {info.get('cpu')}, torch {torch.__version__})"]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
