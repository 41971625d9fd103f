"""The text of the adversarial lockstep's section in ``checks.md``, from the figures ``lockstep_gan.py`` measured."""

from __future__ import annotations

from lockstep_gan import BATCH, COMMON, LOSSES, RECIPES, schedule


def _by_kind(buffers: dict) -> dict:
    """Largest difference per buffer kind (``running_mean``, ``num_batches_tracked``, ``weight_u`` ...)."""
    out: dict[str, float] = {}
    for name, value in buffers.items():
        kind = name.rsplit(".", 1)[1]
        out[kind] = max(out.get(kind, 0.0), value)
    return out


def _value(v) -> str:
    if isinstance(v, dict) and "_target_" in v:  # a class: its name and arguments
        args = ", ".join(f"{k}={_value(a)}" for k, a in v.items() if not k.startswith("_"))
        return f"{v['_target_'].rsplit('.', 1)[1]}({args})"
    return str(v).lower() if isinstance(v, bool) else str(v)


def _changes(recipe: dict, steps: int) -> str:
    """The keys under ``model.`` that turn srlab's shipped config into the source's recipe at the lockstep's size."""
    changes = {**COMMON, **schedule(steps), **recipe["srlab"]}
    text = ", ".join(f"`{k}={_value(v)}`" for k, v in changes.items() if k != "discriminator")
    return text + (", and the source's `VGGStyleDiscriminator` class as D" if "discriminator" in changes else "")


def render(res: dict) -> list[str]:
    """checks.md lines from the figures of :func:`lockstep_gan`."""
    pairs, iso = res["pairs"], res["isolated"]
    lines = [f"- {res['steps']} steps, batch {BATCH}, the same batches (drawn once by srlab's dataset), the same initial "
             f"G and D; milestones {res['milestones']} on G and D; one random VGG19 (srlab reads it as `vgg_weights=<file>`, "
             "the source's `VGGFeatureExtractor` gets the same tensors); EMA 0.999; fp32 on both sides",
             *[f"- {name}: the source's recipe at small size; srlab's side is `model={r['model']}` with "
               f"{_changes(r, res['steps'])}" for name, r in RECIPES.items()],
             "", "| pair (source, GT patch) | lr equal | largest relative difference over the steps: pixel / "
             "perceptual / GAN / D loss / D(real) / D(fake) | G weights | D weights | source's G / D change from "
             "init |", "|---|---|---|---|---|---|---|"]
    for name, r in pairs.items():
        rel = " / ".join(f"{r['rel'][k]:.1e}" for k in (*LOSSES, "d_loss", "d_real", "d_fake"))
        lines.append(f"| {name} ({RECIPES[name]['source']}, {RECIPES[name]['patch']} px) | {r['lr']} | {rel} | "
                     f"{r['g']:.1e} | {r['d']:.1e} | {r['moved'][0]:.1e} / {r['moved'][1]:.1e} |")
    buffers = {name: _by_kind(r["d_buffers"]) for name, r in pairs.items()}
    fmt = lambda d: ", ".join(f"{k} {v:.1e}" for k, v in d.items()) or "none"  # noqa: E731
    es, rg = pairs["ESRGAN"], pairs["Real-ESRGAN"]
    lines += [
        "", "Every difference, and what became of it (all explained, none a bug; nothing changed in srlab):", "",
        f"- **D's loss backpropagated as one sum (srlab) or per term (the sources).** With spectral norm each conv "
        f"weight reaches the loss twice per forward (through W and through sigma(W)), and the four gradient parts "
        f"add up in another order: relative gradient difference {iso['backward_sn']:.1e} for the U-Net D, "
        f"{iso['backward_bn']:.1e} for the VGG-style D (two parts, whose sum does not depend on the order). This is "
        f"what the Real-ESRGAN row's differences are made of (G {rg['g']:.1e}, D {rg['d']:.1e} after "
        f"{res['steps']} steps); srlab's `UNetDiscriminatorSN` itself gives the source's gradients to "
        f"{iso['unet_grad']:.1e} on the same weights and inputs. Kept: the same sum.",
        f"- **ESRGAN's D buffers.** The source's D step runs D on the output twice (`net_d(self.output).detach()` for "
        f"the relativistic mean, then `net_d(self.output.detach())`), 5 D forwards per batch against srlab's 4, so "
        f"BatchNorm's running statistics differ ({fmt(buffers['ESRGAN'])}); the training does not (BN normalises "
        f"with batch statistics in train mode, neither tool runs D in eval mode): weights equal. srlab keeps the "
        f"forward it saves. SRGAN ({fmt(buffers['SRGAN'])}) and Real-ESRGAN's spectral-norm vectors "
        f"({fmt(buffers['Real-ESRGAN'])}) follow the weights.",
        f"- **Logged values, not the training.** ESRGAN's GAN loss: srlab weighs the mean of the two relativistic "
        f"terms, the source averages the weighted terms (the value may round apart, here by {es['rel']['l_adv']:.1e}; "
        f"the gradients are equal); the D "
        f"loss is the source's `l_d_real + l_d_fake` summed here in double, srlab's in fp32 (relative "
        f"{max(r['rel']['d_loss'] for r in pairs.values()):.1e}). srlab logs `train/d_real`/`d_fake` as mean "
        f"sigmoid probabilities, the sources mean logits: the rows compare logits, read from D's outputs.",
        f"- **EMA (deliberate).** srlab ramps the decay, `min(0.999, (1 + n) / (10 + n))` after n steps, the sources "
        f"use 0.999 from the first step: after {res['steps']} steps the EMA copies differ by up to "
        + ", ".join(f"{r['ema']:.1e} ({name})" for name, r in pairs.items())
        + f"; srlab's moved up to {es['ema_moved'][0]:.1e} from the initial weights, the source's "
        f"{es['ema_moved'][1]:.1e} (ESRGAN). The training weights are not affected.",
        f"- **USM sharpening.** srlab's `usm_sharpen` (the 51-tap Gaussian as two matrix products) against BasicSR's "
        f"`USMSharp` (a 2-D filter) on the same {iso['usm_patches']} GT patches: max |difference| {iso['usm']:.1e}. "
        "The Real-ESRGAN row feeds the source's sharpened GT to both. In training srlab sharpens the degraded crop "
        "and cuts the patch from it, the source sharpens the cut patch again (deliberate: real context at the "
        "patch border, one pass less; `srlab/data/realesrgan/pipeline.py`).",
        f"- **srlab's VGG-style D (deliberate).** `conf/model/esrgan.yaml` and `srgan.yaml` use srlab's "
        f"`VGGStyleDiscriminator` (8 conv blocks, global average pooling, any patch >= 16 px; "
        f"{iso['vgg_d_params'][0]:,} parameters at 64 features) where BasicSR's (10 convs, a 4x4 map flattened, "
        f"128 or 256 px only; {iso['vgg_d_params'][1]:,} parameters) is the source's: the rows run the source's class "
        "in srlab's module.",
        "- **srlab's SRGAN is the report's (deliberate).** `conf/model/srgan.yaml` is the origin report's SRGAN "
        "(SRResNet with BatchNorm, 6 blocks, VGG relu5_4 MSE, no pixel loss, GAN weight 1e-3, Adam betas (0.9, 0.999), "
        "no EMA, no schedule); the row runs BasicSR's `train_MSRGAN_x4.yml` recipe through srlab's module with the "
        "changes listed above.",
        "- **Adam `fused=true` (srlab's default).** Rounding only, as in the L1 lockstep above; the rows use "
        "`fused=false`, the sources' single-tensor Adam.",
    ]
    return lines
