"""Run BasicSR 1.4.2's own training loop (``basicsr.train.train_pipeline``) on an options YAML.

Run with the interpreter of the separate BasicSR virtualenv (see ``parity.py``), never srlab's:

    basicsr-venv/bin/python experiments/parity/basicsr_train.py OPTIONS.yml ROOT

``ROOT`` replaces the root BasicSR would derive from its install folder (``python -m basicsr.train``
writes ``experiments/`` into site-packages): models land in ``ROOT/experiments/<name>/models``.
"""

from __future__ import annotations

import sys

# BasicSR 1.4.2 imports torchvision.transforms.functional_tensor, renamed in torchvision 0.17
import torchvision.transforms._functional_tensor as _functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)

import torch  # noqa: E402


def main() -> None:
    opt_path, root = sys.argv[1], sys.argv[2]
    # srlab.train sets this itself: RRDBNet's 0.1-scaled init makes denormal activations that slow CPU
    # convolutions; set here too so that s/iteration compares the training loops, not this flag
    torch.set_flush_denormal(True)
    from basicsr.train import train_pipeline

    sys.argv = [sys.argv[0], "-opt", opt_path]  # BasicSR parses its own command line
    train_pipeline(root)


if __name__ == "__main__":
    main()
