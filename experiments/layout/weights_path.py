"""The modules ``upscale`` passes through to open a generator, traced as it runs.

    python experiments/layout/weights_path.py WEIGHTS [--tree PATH]

Runs ``srlab.upscale`` on one tiny image with ``--weights WEIGHTS`` under ``sys.setprofile`` and
records each call that enters an srlab module other than the caller's, from the first call into the
inference modules (``srlab.inference`` before, ``srlab.infer`` after the regrouping) until the tile
progress bar is made (by then the generator is built and its card line printed). Prints the sequence of modules, the
number of stops, of distinct modules, of returns to a module already visited, and of calls that
climb to a higher layer (the layers of ``tests/test_layers.py``; the pre-regrouping modules get
the layer of their new home: ``inference``, ``deploy``, ``progress`` 4, ``card`` 3, ``precision`` 0). ``--tree`` runs
another checkout's srlab (e.g. a worktree of an older commit) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


LAYERS = {
    "errors": 0, "config": 0, "device": 0, "precision": 0, "nets": 1, "metrics": 1, "data": 2, "weights": 3, "card": 3,
    "infer": 4, "inference": 4, "deploy": 4, "progress": 4, "zoo": 4, "losses": 4, "models": 5, "runs": 6, "bench": 8,
}  # fmt: skip


def _layer(module: str) -> int:
    """The layer of ``srlab.<name>...``; anything else (the commands) 7."""
    parts = module.split(".")
    return LAYERS.get(parts[1], 7) if len(parts) > 1 else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[2])
    args = p.parse_args()
    sys.path.insert(0, str(args.tree))
    from PIL import Image

    import srlab

    assert Path(srlab.__file__).resolve().parent.parent == args.tree.resolve(), srlab.__file__
    try:
        from srlab.upscale import main as upscale
    except ImportError:
        from srlab.upscale import main as upscale  # noqa: F811 - older trees: srlab/upscale.py
    new = (args.tree / "srlab/infer").is_dir()
    inference, progress = ("srlab.infer", "srlab.infer.progress") if new else ("srlab.inference", "srlab.progress")
    seq: list[str] = []
    calls: list[tuple[str, str]] = []
    counted = {"resolve_weights": 0, "read_tensors": 0, "extract_generator_state_dict": 0}

    class Done(Exception):
        pass

    def profile(frame, event, arg):  # noqa: ANN001
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name in counted and module.startswith("srlab"):
            counted[frame.f_code.co_name] += 1  # a name resolved, a file read, a state dict canonicalized
        if module == progress and frame.f_code.co_name == "__init__":
            raise Done  # the generator is built and its card line printed: the path ends here
        if not seq and not module.startswith(inference):
            return  # (the command's own resolve_weights before it is still counted above)
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if module.startswith("srlab") and module != caller:
            calls.append((caller, module))
            if not seq or seq[-1] != module:
                seq.append(module)

    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(Path(tmp) / "a.png")
        sys.setprofile(profile)
        try:
            upscale([str(Path(tmp) / "a.png"), "-o", str(Path(tmp) / "out"), "--weights", args.weights, "-q"])
        except Done:
            pass
        finally:
            sys.setprofile(None)
    seen, revisits = set(), 0
    for module in seq:
        revisits += module in seen
        seen.add(module)
    climbs = [(a, b) for a, b in calls if a.startswith("srlab") and _layer(b) > _layer(a)]
    print(" -> ".join(m.removeprefix("srlab.") for m in seq))
    print(f"{len(seq)} stops in {len(seen)} modules, {revisits} returns to a module already visited, "
          f"{len(climbs)} calls up a layer{': ' if climbs else ''}"
          + ", ".join(f"{a.removeprefix('srlab.')} -> {b.removeprefix('srlab.')}" for a, b in sorted(set(climbs))))
    print("calls from the command's start: " + ", ".join(f"{k} {v}x" for k, v in counted.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
