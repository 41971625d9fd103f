"""Export a trained generator for other tools: ``python -m srlab.export CKPT -o OUT_DIR``.

Writes ``generator.safetensors`` (the EMA weights when the checkpoint has them, else the trained
ones; the net config and input normalization in its header), ``generator.pth`` in BasicSR's layout
(``{"params": ..., "params_ema": ...}``, which BasicSR and Real-ESRGAN load, EMA preferred) and
``generator.json``, the generator's Hydra config (``hydra.utils.instantiate`` builds the net from
it). ``srlab.upscale --weights OUT_DIR/generator.safetensors`` and ``srlab.evaluate`` read them back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from srlab.errors import SRLabError, user_errors
from srlab.inference import build_net
from srlab.weights import export_metadata, load_generator_weights, safe_torch_load, stored_net_config


def _prefixed(state_dict: dict, prefix: str) -> dict[str, torch.Tensor]:
    # contiguous, cloned tensors: safetensors refuses shared or strided storage
    n = len(prefix)
    return {k[n:]: v.detach().cpu().contiguous().clone() for k, v in state_dict.items() if k.startswith(prefix)}


def export_generator(ckpt: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the generator of an srlab Lightning checkpoint as safetensors, BasicSR .pth and json.

    Args:
        ckpt: a ``.ckpt`` written by ``srlab.train`` (``state_dict`` with ``generator.``/
            ``generator_ema.`` keys, ``hyper_parameters["net_config"]``).
        out_dir: folder to write into (created).

    Returns:
        the written paths by kind: ``safetensors``, ``pth``, ``json``.
    """
    ckpt = Path(ckpt).expanduser()
    obj = safe_torch_load(ckpt)
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise SRLabError(f"{ckpt}: not a Lightning checkpoint of srlab.train (no 'state_dict')")
    net_config, normalized = stored_net_config(obj, str(ckpt))
    if not isinstance(net_config, dict) or "_target_" not in net_config:
        raise SRLabError(
            f"{ckpt}: hyper_parameters has no net_config (the generator's Hydra config); "
            "export needs a checkpoint written by srlab.train"
        )
    params = _prefixed(obj["state_dict"], "generator.")
    params_ema = _prefixed(obj["state_dict"], "generator_ema.")
    if not params:
        raise SRLabError(f"{ckpt}: its state_dict has no 'generator.' weights")
    chosen = params_ema or params
    # build and load now, so a broken checkpoint fails here and not in someone else's tool
    load_generator_weights(build_net(net_config, str(ckpt)), chosen, strict=True)

    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"generator.{k}" for k in ("safetensors", "pth", "json")}
    header, pth_meta = export_metadata(net_config, normalized)
    save_file(chosen, str(paths["safetensors"]), metadata={**header, "format": "pt"})
    basicsr = {"params": params, **({"params_ema": params_ema} if params_ema else {}), **pth_meta}
    torch.save(basicsr, paths["pth"])
    paths["json"].write_text(json.dumps(net_config, indent=2) + "\n")
    return paths


@user_errors
def main(argv: list[str] | None = None) -> int:
    """CLI entry; one-line ``error:`` and exit 2 on user errors."""
    p = argparse.ArgumentParser(prog="python -m srlab.export", description=__doc__.splitlines()[0])
    p.add_argument("ckpt", help="Lightning checkpoint written by srlab.train")
    p.add_argument("-o", "--output", required=True, help="output folder")
    args = p.parse_args(argv)
    paths = export_generator(args.ckpt, args.output)
    for kind, path in paths.items():
        print(f"wrote {path}")
    if paths:
        print(f"use: python -m srlab.upscale IMAGES -o OUT --weights {paths['safetensors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
