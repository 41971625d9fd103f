"""The adversarial steps in lockstep: srlab's ``AdversarialModule`` against BasicSR 1.4.2's ``SRGANModel`` and
``ESRGANModel`` and Real-ESRGAN 0.3.0's ``RealESRGANModel``.

Each pair runs the source's recipe (its options file's networks, loss weights, Adam betas, EMA decay) at a
small size: the same initial G and D, the same random VGG19 features (one state dict both load), the same
batches, ``STEPS`` steps (``checks.py --gan-steps``). srlab's side is its shipped model config with the
changes listed in ``RECIPES`` (what srlab's own config does differently), trained by a Lightning
``Trainer``; the source's side is its model driven as ``train_pipeline`` drives it. Run through
``checks.py`` with the BasicSR virtualenv.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import hydra
import torch
import torchvision
from omegaconf import OmegaConf, open_dict
from torch.utils.data import DataLoader

from lockstep import STEPS, batches
from srlab.config import compose_train
from srlab.data.realesrgan.ops import usm_sharpen
from srlab.train import build_model

BATCH = 2  # a batch, small: the relativistic means and BatchNorm work across it
RRDB = {"num_feat": 32, "num_block": 2, "num_grow_ch": 16}  # the L1 parity net
VGG_D = {"num_feat": 32}  # the source's architecture at half width; it takes 128 (or 256) px patches only
SOURCE_VGG_D = {"_target_": "basicsr.archs.discriminator_arch.VGGStyleDiscriminator", "num_in_ch": 3, **VGG_D}
# srlab's shipped config -> the source's recipe (keys under model.); what every model shares comes first
COMMON = {"optimizer_g.fused": False, "optimizer_d.fused": False, "ema_decay": 0.999, "channels_last": False}

SMALL_RRDB = {f"generator.{k}": v for k, v in RRDB.items()}
RECIPES = {
    "ESRGAN": {
        "source": "BasicSR `ESRGANModel`, `train_ESRGAN_x4.yml`", "model": "esrgan", "model_type": "ESRGANModel",
        "network_g": {"type": "RRDBNet", **RRDB}, "network_d": {"type": "VGGStyleDiscriminator", **VGG_D},
        "patch": 128, "weights": (1e-2, 1.0, 5e-3), "layers": {"conv5_4": 1.0},
        "srlab": {**SMALL_RRDB, "discriminator": SOURCE_VGG_D}},
    "SRGAN": {
        "source": "BasicSR `SRGANModel`, `train_MSRGAN_x4.yml`", "model": "srgan", "model_type": "SRGANModel",
        "network_g": {"type": "MSRResNet", "num_feat": 32, "num_block": 4, "upscale": 4},
        "network_d": {"type": "VGGStyleDiscriminator", **VGG_D}, "patch": 128, "weights": (1e-2, 1.0, 5e-3),
        "layers": {"conv5_4": 1.0},
        "srlab": {"discriminator": SOURCE_VGG_D, "generator": {"_target_": "srlab.nets.srresnet.MSRResNet",
                                                                 "num_feat": 32, "num_block": 4, "upscale": 4},
                  "pixel_loss.criterion": "l1", "perceptual_loss.layer": "conv5_4", "perceptual_loss.criterion": "l1",
                  "loss_weights": {"pixel": 1e-2, "perceptual": 1.0, "adversarial": 5e-3},
                  "optimizer_g.betas": [0.9, 0.99], "optimizer_d.betas": [0.9, 0.99]}},
    "Real-ESRGAN": {
        "source": "Real-ESRGAN `RealESRGANModel`, `train_realesrgan_x4plus.yml`", "model": "realesrgan",
        "model_type": "RealESRGANModel", "network_g": {"type": "RRDBNet", **RRDB},
        "network_d": {"type": "UNetDiscriminatorSN", "num_feat": 32, "skip_connection": True},
        "patch": 64, "weights": (1.0, 1.0, 0.1),
        "layers": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
        "srlab": {**SMALL_RRDB, "discriminator.num_feat": 32}},
}
# srlab's logged name (train/<name>) -> the source's log_dict name
LOSSES = {"l_pix": "l_g_pix", "l_percep": "l_g_percep", "l_adv": "l_g_gan"}


def milestones(steps: int) -> list[int]:
    return [steps // 2, steps * 3 // 4]  # as the L1 lockstep: both lr decays happen within the run


def schedule(steps: int) -> dict:
    """srlab's G and D schedulers with the source's MultiStepLR at the lockstep's milestones."""
    step_lr = {"_target_": "torch.optim.lr_scheduler.MultiStepLR", "_partial_": True, "milestones": milestones(steps),
               "gamma": 0.5}
    return {"scheduler_g": step_lr, "scheduler_d": step_lr}


def vgg_features(work: Path) -> tuple[Path, dict]:
    """One random torchvision VGG19 ``features`` state dict, written where srlab's ``vgg_weights`` reads it."""
    path = work / "lockstep_gan" / "vgg19_features_random.pth"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(19)
        state = torchvision.models.vgg19(weights=None).features.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def _srlab(recipe: dict, vgg_file: Path, steps: int) -> object:
    cfg = compose_train([f"model={recipe['model']}", "trainer=cpu", "trainer.precision=32-true", f"vgg_weights={vgg_file}"])
    with open_dict(cfg):
        for key, value in {**COMMON, **schedule(steps), **recipe["srlab"]}.items():
            OmegaConf.update(cfg.model, key, value, merge=False)
    return cfg, build_model(cfg)


def _train_srlab(cfg, model, drawn: list[dict]) -> dict:
    """Per-step logs, learning rates and D's mean logits on real and fake (the last two D calls of a batch)."""
    rec = {"lr": [], "d_real": [], "d_fake": [], **{k: [] for k in (*LOSSES, "d_loss")}}
    outputs: list[float] = []
    model.discriminator.register_forward_hook(lambda m, i, out: outputs.append(out.detach().mean().item()))

    class Record(hydra.utils.get_class("lightning.pytorch.Callback")):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            rec["lr"].append(trainer.optimizers[0].param_groups[0]["lr"])

        def on_train_batch_end(self, trainer, module, out, batch, batch_idx):
            for k in (*LOSSES, "d_loss"):
                rec[k].append(float(trainer.callback_metrics[f"train/{k}_step"]))
            rec["d_real"].append(outputs[-2])
            rec["d_fake"].append(outputs[-1])

    trainer = hydra.utils.instantiate(cfg.trainer, max_epochs=1, max_steps=-1, callbacks=[Record()], logger=False,
                                      enable_checkpointing=False, enable_progress_bar=False,
                                      enable_model_summary=False, default_root_dir=None)
    trainer.fit(model, train_dataloaders=DataLoader(drawn, batch_size=None))
    return rec


def _source_model(recipe: dict, features: dict, steps: int):
    """The source's model on the CPU, its VGG19 built from ``features`` (no download)."""
    import basicsr.archs.vgg_arch as vgg_arch
    import realesrgan  # noqa: F401 - registers RealESRGANModel and Real-ESRGAN's UNetDiscriminatorSN
    from basicsr.models import build_model as build_source

    def vgg19(pretrained=False, **kwargs):  # what vgg_arch calls when its pretrained file is absent
        net = torchvision.models.vgg19(weights=None)
        net.features.load_state_dict(features)
        return net

    pix, percep, gan = recipe["weights"]
    opt = {
        "name": "lockstep", "model_type": recipe["model_type"], "scale": 4, "num_gpu": 0, "is_train": True,
        "dist": False, "rank": 0, "world_size": 1,
        "network_g": {"num_in_ch": 3, "num_out_ch": 3, **recipe["network_g"]},
        "network_d": {"num_in_ch": 3, **recipe["network_d"]},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999, "total_iter": steps, "warmup_iter": -1, "net_d_iters": 1, "net_d_init_iters": 0,
            **{f"optim_{n}": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]} for n in "gd"},
            "scheduler": {"type": "MultiStepLR", "milestones": milestones(steps), "gamma": 0.5},
            "pixel_opt": {"type": "L1Loss", "loss_weight": pix, "reduction": "mean"},
            "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": recipe["layers"], "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "perceptual_weight": percep,
                               "style_weight": 0, "criterion": "l1"},
            "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                        "loss_weight": gan}},
        # Real-ESRGAN: paired data (its degradation off), USM-sharpened pixel/perceptual targets, D on the plain GT
        "high_order_degradation": False, "l1_gt_usm": True, "percep_gt_usm": True, "gan_gt_usm": False,
    }
    saved = vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg, torch.nn.Module.cuda
    vgg_arch.VGG_PRETRAIN_PATH = "/nonexistent"
    vgg_arch.vgg = type("vgg", (), {"vgg19": staticmethod(vgg19)})
    torch.nn.Module.cuda = lambda self, *a, **k: self  # RealESRGANModel puts its JPEG and USM modules on CUDA
    try:
        return build_source(opt)
    finally:
        vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg, torch.nn.Module.cuda = saved


def _train_source(model, drawn: list[dict]) -> dict:
    rec = {"lr": [], "d_real": [], "d_fake": [], **{k: [] for k in (*LOSSES, "d_loss")}}
    for it, batch in enumerate(drawn, start=1):  # as basicsr.train.train_pipeline calls them
        model.update_learning_rate(it, warmup_iter=-1)
        rec["lr"].append(model.get_current_learning_rate()[0])
        model.feed_data({k: batch[k] for k in ("lq", "gt")})
        model.optimize_parameters(it)
        log = model.log_dict
        for ours, theirs in LOSSES.items():
            rec[ours].append(log[theirs])
        rec["d_loss"].append(log["l_d_real"] + log["l_d_fake"])
        rec["d_real"].append(log["out_d_real"])
        rec["d_fake"].append(log["out_d_fake"])
    return rec


def _max_diff(a: dict, b: dict, keys) -> float:
    return max(((a[k].float() - b[k].float()).abs().max().item() for k in keys), default=0.0)


def _rel(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def _pair(name: str, recipe: dict, drawn: list[dict], vgg_file: Path, features: dict) -> dict:
    """Train both sides from the same weights on the same batches; what differs after them."""
    torch.manual_seed(0)
    cfg, ours = _srlab(recipe, vgg_file, len(drawn))
    init_g = copy.deepcopy(ours.generator.state_dict())
    init_d = copy.deepcopy(ours.discriminator.state_dict())
    theirs = _source_model(recipe, features, len(drawn))
    for net, state in ((theirs.net_g, init_g), (theirs.net_g_ema, init_g), (theirs.net_d, init_d)):
        net.load_state_dict(state)
    if name == "Real-ESRGAN":  # srlab's targets come from its degradation step: here the source's USM of the GT
        drawn = [{**b, "gt_usm": theirs.usm_sharpener(b["gt"])} for b in drawn]
    rec_s, rec_b = _train_srlab(cfg, ours, drawn), _train_source(theirs, drawn)
    g_s, g_b = ours.generator.state_dict(), theirs.net_g.state_dict()
    d_s, d_b = ours.discriminator.state_dict(), theirs.net_d.state_dict()
    params = {k for k, _ in theirs.net_d.named_parameters()}
    ema_s, ema_b = ours.generator_ema.state_dict(), theirs.net_g_ema.state_dict()
    return {
        "lr": rec_s["lr"] == rec_b["lr"], "rel": {k: _rel(rec_s[k], rec_b[k]) for k in rec_s if k != "lr"},
        "g": _max_diff(g_s, g_b, g_b), "d": _max_diff(d_s, d_b, params),
        "d_buffers": {k: _max_diff(d_s, d_b, [k]) for k in d_b if k not in params},
        "ema": _max_diff(ema_s, ema_b, g_b), "ema_moved": (_max_diff(ema_s, init_g, g_b), _max_diff(ema_b, init_g, g_b)),
        "moved": (_max_diff(g_b, init_g, g_b), _max_diff(d_b, init_d, params)), "records": (rec_s, rec_b),
    }


def d_backward(discriminator, real: torch.Tensor, fake: torch.Tensor, together: bool) -> dict:
    """D's gradients from ``BCE(D(real), 1) + BCE(D(fake), 0)``: one backward of the sum (srlab) or one per term (BasicSR)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    d = copy.deepcopy(discriminator)
    if together:
        out_r, out_f = d(real), d(fake)
        (bce(out_r, torch.ones_like(out_r)) + bce(out_f, torch.zeros_like(out_f))).backward()
    else:
        out = d(real)
        bce(out, torch.ones_like(out)).backward()
        out = d(fake)
        bce(out, torch.zeros_like(out)).backward()
    return {k: p.grad for k, p in d.named_parameters()}


def isolate(drawn_small: list[dict]) -> dict:
    """What the lockstep leaves to rounding, measured alone: D's backward, srlab's U-Net D and USM against the source's."""
    from basicsr.archs.discriminator_arch import VGGStyleDiscriminator
    from basicsr.utils import USMSharp
    from realesrgan.archs.discriminator_arch import UNetDiscriminatorSN as SourceUNet

    from srlab.nets.discriminators import UNetDiscriminatorSN
    from srlab.nets.discriminators import VGGStyleDiscriminator as OurVGG

    out = {}
    torch.manual_seed(0)
    real, fake = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128)
    for key, make in (("backward_sn", lambda: UNetDiscriminatorSN(3, 32)), ("backward_bn", lambda: VGGStyleDiscriminator(3, 32))):
        torch.manual_seed(1)
        d = make().train()
        one, two = d_backward(d, real, fake, True), d_backward(d, real, fake, False)
        out[key] = max(((one[k] - two[k]).abs().max() / two[k].abs().max()).item() for k in one)
    torch.manual_seed(1)
    ours = UNetDiscriminatorSN(3, 32).train()
    theirs = SourceUNet(3, 32).train()
    theirs.load_state_dict(ours.state_dict())
    a, b = d_backward(ours, real, fake, False), d_backward(theirs, real, fake, False)
    out["unet_grad"] = _max_diff(a, b, a)
    usm = USMSharp()
    out["usm"] = max((usm_sharpen(batch["gt"]) - usm(batch["gt"])).abs().max().item() for batch in drawn_small)
    out["usm_patches"] = len(drawn_small) * BATCH
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    out["vgg_d_params"] = (count(OurVGG(3, 64)), count(VGGStyleDiscriminator(3, 64)))
    return out


def lockstep_gan(work: Path, steps: int = STEPS) -> tuple[list[str], dict]:
    """checks.md lines and the figures; ``<work>/lockstep_gan/results_<steps>steps.json`` is reused when there (delete it to rerun)."""
    from lockstep_gan_report import render
    saved = work / "lockstep_gan" / f"results_{steps}steps.json"
    if saved.is_file():
        results = json.loads(saved.read_text())
        return render(results), results
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    drawn = {p: batches(work, seed=1, patch=p, batch=BATCH, steps=steps) for p in {r["patch"] for r in RECIPES.values()}}
    vgg_file, features = vgg_features(work)
    results = {"steps": steps, "milestones": milestones(steps), "pairs": {}}
    for name, recipe in RECIPES.items():
        results["pairs"][name] = _pair(name, recipe, drawn[recipe["patch"]], vgg_file, features)
        print(f"{name}: G {results['pairs'][name]['g']:.1e}, D {results['pairs'][name]['d']:.1e}", flush=True)
    results["isolated"] = isolate(drawn[64])
    saved.write_text(json.dumps(results, indent=1))
    return render(results), results
