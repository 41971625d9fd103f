"""Both training loops in lockstep: same initial weights, same batches, then compare losses, lr and weights.

Rules out (or finds) a difference in the optimization itself (loss, Adam, schedule, step order) apart
from the random crops each tool draws. srlab's side is the parity runs' configured
``RestorationModule`` (composed from ``parity.srlab_command``'s overrides) trained by a Lightning
``Trainer`` from ``trainer=cpu``; BasicSR's side is its ``SRModel`` driven as ``train_pipeline``
drives it (``update_learning_rate``, ``feed_data``, ``optimize_parameters`` per 1-based iteration).
Run through ``checks.py`` with the BasicSR virtualenv's interpreter.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import hydra
import torch
from torch.utils.data import DataLoader

import parity
from srlab.config import compose_train
from srlab.data.datasets import PairedFolderDataset
from srlab.train import build_model

STEPS = 40
MILESTONES = [STEPS // 2, STEPS * 3 // 4]  # the recipe's 1/2 and 3/4, so both decays happen


def batches(work: Path, seed: int, patch: int = parity.RECIPE["patch"], batch: int = parity.RECIPE["batch"],
            steps: int = STEPS) -> list[dict]:
    """``steps`` training batches drawn by srlab's dataset (random crops, flips, quarter turns), float in [0, 1]."""
    r = parity.RECIPE
    ds = PairedFolderDataset(work / "pairs" / "HQ", work / "pairs" / "LQ", scale=r["scale"], patch_size=patch,
                             augment={"rot90": 0.75}, train=True)
    torch.manual_seed(seed)
    order = torch.randperm(len(ds))[: steps * batch].view(steps, batch)
    out = []
    for idx in order:
        samples = [ds[int(i)] for i in idx]
        # the dataset sends uint8 (srlab's module converts on the device); BasicSR's models take floats
        out.append({k: torch.stack([s[k] for s in samples]).float() / 255.0 for k in ("lq", "gt")})
    return out


def _srlab(work: Path, batches: list[dict], init: dict, fused: bool) -> tuple[dict, list[float], list[float]]:
    overrides = [str(a) for a in parity.srlab_command(work, 0, work / "lockstep")[3:] if not str(a).startswith("hydra.")]
    overrides += [f"model.scheduler.milestones={MILESTONES}", f"model.optimizer.fused={str(fused).lower()}"]
    cfg = compose_train(overrides)
    model = build_model(cfg)
    model.generator.load_state_dict(init)
    losses, lrs = [], []

    class Record(hydra.utils.get_class("lightning.pytorch.Callback")):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = hydra.utils.instantiate(cfg.trainer, default_root_dir=str(work / "lockstep"), max_steps=STEPS,
                                      callbacks=[Record()], logger=False, enable_checkpointing=False,
                                      enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    return {k: v.detach().clone() for k, v in model.generator.state_dict().items()}, losses, lrs


def _basicsr(work: Path, batches: list[dict], init: dict) -> tuple[dict, list[float], list[float]]:
    from basicsr.models.sr_model import SRModel

    opt = copy.deepcopy(parity.basicsr_options(work, 0, "lockstep"))
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    opt["train"]["scheduler"]["milestones"] = MILESTONES
    model = SRModel(opt)
    model.net_g.load_state_dict(init)
    losses, lrs = [], []
    for it, batch in enumerate(batches, start=1):  # as basicsr.train.train_pipeline calls them
        model.update_learning_rate(it, warmup_iter=opt["train"]["warmup_iter"])
        lrs.append(model.get_current_learning_rate()[0])
        model.feed_data(batch)
        model.optimize_parameters(it)
        losses.append(float(model.log_dict["l_pix"]))
    return {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}, losses, lrs


def lockstep(work: Path) -> list[str]:
    """Markdown lines: loss, lr and weight differences after ``STEPS`` identical steps."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_flush_denormal(True)  # as srlab.train and basicsr_train.py set it
    torch.set_num_threads(1)  # as the parity runs (OMP_NUM_THREADS=1)
    drawn = batches(work, seed=0)
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in build_model(compose_train(["model=rrdbnet", *parity.net_overrides(
        "model.generator")])).generator.state_dict().items()}
    theirs, loss_b, lr_b = _basicsr(work, drawn, init)
    moved = max((theirs[k] - init[k]).abs().max().item() for k in init)
    lines = [f"- {STEPS} steps from the same initial weights on the same {STEPS} batches (drawn once by srlab's "
             f"dataset), milestones {MILESTONES}; BasicSR's largest weight change from init: {moved:.2e}"]
    losses = {}
    for fused in (True, False):
        ours, loss_s, lr_s = _srlab(work, drawn, init, fused)
        losses[fused] = loss_s
        dw = max((ours[k] - theirs[k]).abs().max().item() for k in init)
        dloss = max(abs(a - b) / b for a, b in zip(loss_s, loss_b))
        same_lr = lr_s == lr_b
        label = "srlab as configured (Adam fused=true)" if fused else "srlab with model.optimizer.fused=false"
        lines.append(f"- {label}: learning rate identical at every step: **{same_lr}**; largest relative loss "
                     f"difference {dloss:.1e}; largest weight difference after {STEPS} steps {dw:.2e}")
    lines.append(f"- losses, srlab (fused) / BasicSR, steps 1, {STEPS // 2}, {STEPS}: "
                 + ", ".join(f"{losses[True][i]:.5f} / {loss_b[i]:.5f}" for i in (0, STEPS // 2 - 1, STEPS - 1)))
    return lines
