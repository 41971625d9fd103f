"""Measure where srlab's and BasicSR 1.4.2's training recipes could differ: net, init, data, augmentation, step.

Run with the BasicSR virtualenv's interpreter (it sees srlab through the repository root):

    basicsr-venv/bin/python experiments/parity/checks.py [--work parity_work] [--parts nets,data,...]

Writes ``checks.md`` beside this file: the sections of ``--parts`` (default all), the others kept as they
are there. ``--work`` must hold the pairs ``parity.py --steps prepare`` made.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import torchvision.transforms._functional_tensor as _functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)  # renamed in torchvision 0.17
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from basicsr.archs.rrdbnet_arch import RRDBNet as BasicRRDBNet  # noqa: E402
from basicsr.data.paired_image_dataset import PairedImageDataset  # noqa: E402
from basicsr.data.transforms import augment as basic_augment  # noqa: E402

from srlab.data import transforms as T  # noqa: E402
from srlab.data.datasets import PairedFolderDataset  # noqa: E402
from srlab.nets.rrdbnet import RRDBNet  # noqa: E402

from lockstep import STEPS, lockstep  # noqa: E402 - beside this file, needs the alias above
from lockstep_gan import lockstep_gan  # noqa: E402

NET = {"num_feat": 32, "num_block": 2, "num_grow_ch": 16}
DRAWS = 80_000


def nets() -> list[str]:
    """Same names and shapes, same output for the same weights, same init for the same torch seed."""
    torch.manual_seed(0)
    ours = RRDBNet(**NET)
    torch.manual_seed(0)
    theirs = BasicRRDBNet(3, 3, scale=4, **NET)
    a, b = ours.state_dict(), theirs.state_dict()
    same_shapes = list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    init_equal = all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(1)
    theirs = BasicRRDBNet(3, 3, scale=4, **NET)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    # init statistics over 5 seeds: the 0.1-scaled dense-block convs and the default-init rest
    stds = {"srlab": [], "basicsr": []}
    for seed in range(5):
        for name, make in (("srlab", lambda: RRDBNet(**NET)), ("basicsr", lambda: BasicRRDBNet(3, 3, scale=4, **NET))):
            torch.manual_seed(100 + seed)
            sd = make().state_dict()
            stds[name].append([sd[k].std().item() for k in ("body.0.rdb1.conv1.weight", "body.1.rdb3.conv5.weight",
                                                            "conv_first.weight", "conv_hr.weight")])
    s, b = np.mean(stds["srlab"], 0), np.mean(stds["basicsr"], 0)
    return [
        f"- state dict: {len(a)} tensors, names and shapes identical: **{same_shapes}**",
        f"- initialization with the same torch seed is bitwise identical: **{init_equal}** (both build the "
        "layers in the same order and scale the dense-block convs' Kaiming-normal weights by 0.1, zero biases)",
        f"- weight std over 5 seeds, srlab / BasicSR: body.0.rdb1.conv1 {s[0]:.5f} / {b[0]:.5f}, body.1.rdb3.conv5 "
        f"{s[1]:.5f} / {b[1]:.5f}, conv_first {s[2]:.4f} / {b[2]:.4f}, conv_hr {s[3]:.4f} / {b[3]:.4f}",
        f"- forward with BasicSR's weights loaded into srlab's net (strict): max |difference| = {diff:.2e}",
    ]


def data(work: Path) -> list[str]:
    """The same prepared pair read by both datasets without cropping: identical tensors?"""
    hq, lq = work / "pairs" / "HQ", work / "pairs" / "LQ"
    basic = PairedImageDataset({"dataroot_gt": str(hq), "dataroot_lq": str(lq), "io_backend": {"type": "disk"},
                                "filename_tmpl": "{}", "phase": "val", "scale": 4})
    ours = PairedFolderDataset(hq, lq, scale=4, patch_size=64, train=False, val_patch_size=None)
    by_name = {Path(p["gt_path"]).name: i for i, p in enumerate(basic.paths)}  # BasicSR lists in scandir order
    worst, n = 0.0, 20
    for i in range(0, len(ours.items), len(ours.items) // n)[:n]:
        a = ours[i]
        b = basic[by_name[Path(a["path"]).name]]
        worst = max(worst, (a["gt"] - b["gt"]).abs().max().item(), (a["lq"] - b["lq"]).abs().max().item())
    return [f"- {n} pairs read whole by srlab's PairedFolderDataset and BasicSR's PairedImageDataset (cv2, BGR->RGB): "
            f"max |gt or lq difference| = {worst:.1e} (RGB float in [0, 1] on both sides)",
            "- random crop: both draw the LQ top-left uniformly over every position (srlab `rng.integers(0, h - p + 1)`, "
            "BasicSR `random.randint(0, h - p)`) and take the HQ patch at scale x that offset"]


def _symmetry(img: np.ndarray, ref: dict) -> int:
    return ref[img.tobytes()]


def augmentation() -> list[str]:
    """Frequencies of the 8 square symmetries each tool's augmentation draws."""
    base = np.arange(9, dtype=np.float32).reshape(3, 3, 1)  # no symmetry of its own: 8 distinct images
    images = {np.ascontiguousarray(np.rot90(f, k)).tobytes() for f in (base, base[:, ::-1]) for k in range(4)}
    ref = {b: i for i, b in enumerate(sorted(images))}
    out = []
    for label, rot90 in (("srlab, rot90=0.75 (the parity runs)", 0.75), ("srlab, rot90=0.5 (srlab's default)", 0.5)):
        cfg, rng = T.augment_config({"rot90": rot90}), np.random.default_rng(0)
        counts = Counter(_symmetry(T.apply_flips(base, T.draw_augment(cfg, rng, allow_affine=False)), ref) for _ in range(DRAWS))
        out.append((label, counts))
    random.seed(0)
    counts = Counter(_symmetry(np.ascontiguousarray(basic_augment(base.copy(), True, True)), ref) for _ in range(DRAWS))
    out.append(("BasicSR, use_hflip + use_rot", counts))
    lines = [f"- {len(ref)} symmetries, {DRAWS} draws each; share of each symmetry (uniform = 0.125):"]
    for label, c in out:
        shares = [c[i] / DRAWS for i in range(len(ref))]
        lines.append(f"  - {label}: min {min(shares):.4f}, max {max(shares):.4f}")
    return lines


SECTIONS = {  # --parts name -> (heading, lines)
    "nets": ("Net and initialization", lambda work: nets()),
    "data": ("Data", data),
    "augmentation": ("Augmentation", lambda work: augmentation()),
    "lockstep": ("Training step (lockstep.py)", lockstep),
    "gan": ("Adversarial training steps (lockstep_gan.py)", lambda work, steps: lockstep_gan(work, steps)[0]),
}


def _sections(text: str) -> dict[str, list[str]]:
    """``## heading`` -> its lines, from a checks.md written before."""
    out, head = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            head = line[3:]
            out[head] = []
        elif head is not None:
            out[head].append(line)
    return {k: "\n".join(v).strip("\n").splitlines() for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("parity_work"))
    p.add_argument("--parts", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    p.add_argument("--gan-steps", type=int, default=STEPS, help="steps of the adversarial lockstep")
    args = p.parse_args()
    out = HERE / "checks.md"
    kept = _sections(out.read_text()) if out.is_file() else {}
    for part in args.parts.split(","):
        heading, make = SECTIONS[part]
        kept[heading] = make(args.work, args.gan_steps) if part == "gan" else make(args.work)
    text = "\n".join(["# Recipe checks (written by checks.py)", ""]
                     + [line for heading, _ in SECTIONS.values() if heading in kept
                        for line in (f"## {heading}", "", *kept[heading], "")])
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
